"""A live API server (uvicorn subprocess on a migrated SQLite file) and the real `tollgate` CLI.

Accounts are made as an operator makes them (`tollgate admin create-account --json`); approvals go
straight through `approve_device` on the server's database until the /device page drives them.
"""

from __future__ import annotations

import re
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from billing_core.db.engine import make_engine
from billing_core.plans import load_catalog
from billing_core.services.context import Billing

from ..live_server import (TOLLGATE, LiveServer, LiveServerClient, copy_sqlite_template, create_account_cli,
                           free_port, run_api_server)

__all__ = ["free_port", "read_user_code"]  # the CLI tests import these from here
STARTUP_TIMEOUT_S = 30.0
USER_CODE = re.compile(r"\b([BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4})\b")


@dataclass(frozen=True)
class CreatedAccount:
    account_id: str
    api_key: str
    email: str


class Server(LiveServerClient):
    """A live server (tests.live_server: `url`, `client`, `env`...) with a billing context on its database."""

    def __init__(self, live: LiveServer) -> None:
        super().__init__(live)
        self.billing = Billing(engine=make_engine(live.database_url), catalog=load_catalog())

    def create_account(self) -> CreatedAccount:
        email = f"device-{uuid.uuid4().hex[:12]}@example.com"
        created = create_account_cli(self.env, email)
        return CreatedAccount(created["account_id"], created["api_key"], email)

    def close(self) -> None:
        super().close()
        self.billing.engine.dispose()


@pytest.fixture(scope="session")
def server(tmp_path_factory, sqlite_template) -> Server:
    workdir = tmp_path_factory.mktemp("device-server")
    with run_api_server(copy_sqlite_template(sqlite_template, workdir), timeout_s=STARTUP_TIMEOUT_S,
                        extra_env={"TOLLGATE_DATA_DIR": str(workdir)}, log_path=workdir / "server.log") as live:
        server = Server(live)
        try:
            yield server
        finally:
            server.close()


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
        env = {**{k: v for k, v in server.env.items() if not k.startswith(("TOLLGATE_", "XDG_"))},
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
