"""A live API server (uvicorn subprocess on a migrated SQLite file) and the real `tollgate` CLI.

Accounts are made as an operator makes them (`tollgate admin create-account --json`); approvals go
straight through `approve_device` on the server's database until the /device page drives them.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from billing_core.db.engine import make_engine
from billing_core.db.migrate import upgrade_to_head
from billing_core.plans import load_catalog
from billing_core.services.context import Billing

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / ".venv" / "bin"
PYTHON = BIN / "python" if (BIN / "python").exists() else Path(sys.executable)
TOLLGATE = BIN / "tollgate" if (BIN / "tollgate").exists() else Path(sys.executable).parent / "tollgate"
USER_CODE = re.compile(r"\b([BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4})\b")


@dataclass(frozen=True)
class CreatedAccount:
    account_id: str
    api_key: str
    email: str


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    def __init__(self, workdir: Path) -> None:
        self.db_path = workdir / "tollgate.db"
        self.database_url = f"sqlite:///{self.db_path}"
        upgrade_to_head(self.database_url)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("TOLLGATE_", "XDG_"))}
        self.env.update(TOLLGATE_DATABASE_URL=self.database_url, TOLLGATE_ENV="test",
                        TOLLGATE_SECRET_KEY=secrets.token_urlsafe(36), TOLLGATE_DATA_DIR=str(workdir))
        self.log_path = workdir / "server.log"
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [str(PYTHON), "-m", "uvicorn", "portal.api.asgi:app", "--host", "127.0.0.1", "--port", str(self.port),
             "--no-access-log"], cwd=ROOT, env=self.env, stdout=self._log, stderr=subprocess.STDOUT)
        self.client = httpx.Client(base_url=self.url, timeout=30)
        self.billing = Billing(engine=make_engine(self.database_url), catalog=load_catalog())
        self._wait_until_healthy()

    def _wait_until_healthy(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"the API server exited at start-up:\n{self.log()}")
            try:
                if self.client.get("/api/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        pytest.fail(f"the API server did not become healthy:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def create_account(self) -> CreatedAccount:
        email = f"device-{uuid.uuid4().hex[:12]}@example.com"
        proc = subprocess.run([str(TOLLGATE), "admin", "create-account", "--email", email, "--json"], cwd=ROOT,
                              env=self.env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        created = json.loads(proc.stdout)
        return CreatedAccount(created["account_id"], created["api_key"], email)

    def stop(self) -> None:
        self.client.close()
        self.billing.engine.dispose()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._log.close()


@pytest.fixture(scope="session")
def server(tmp_path_factory) -> Server:
    live = Server(tmp_path_factory.mktemp("device-server"))
    yield live
    live.stop()


@pytest.fixture(scope="session")
def account(server) -> CreatedAccount:
    return server.create_account()


@pytest.fixture
def home(tmp_path) -> Path:
    """A private HOME and XDG_CONFIG_HOME for one CLI user."""
    (tmp_path / "home").mkdir()
    (tmp_path / "config").mkdir()
    return tmp_path


@pytest.fixture
def cli(server, home):
    """cli(*args) starts `tollgate ARGS` as this test's user; .run(*args) waits for it."""

    class Cli:
        env = {**{k: v for k, v in server.env.items() if not k.startswith("TOLLGATE_")},
               "HOME": str(home / "home"), "XDG_CONFIG_HOME": str(home / "config"), "COLUMNS": "200"}
        credentials = home / "config" / "tollgate" / "credentials.json"

        def start(self, *args: str, umask: int = -1) -> subprocess.Popen:
            return subprocess.Popen([str(TOLLGATE), *args], env=self.env, cwd=home, text=True, umask=umask,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)

        def run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
            return subprocess.run([str(TOLLGATE), *args], env=self.env, cwd=home, text=True, capture_output=True,
                                  timeout=timeout)

    return Cli()


def read_user_code(proc: subprocess.Popen, timeout: float = 30) -> tuple[str, str]:
    """The user code `tollgate login` prints, read line by line while it keeps running, and what
    it printed up to there."""
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        found = USER_CODE.search(line)
        if found:
            return found.group(1), "".join(seen)
    proc.kill()
    pytest.fail(f"`tollgate login` printed no user code: {''.join(seen)!r} / {proc.stderr.read()!r}")
