"""A live API server for the key tests: uvicorn on a free port over a migrated SQLite file, with a keyring.

Every secret that crosses its client (a `secret` in an answer, a provider key in a PUT body, an account key
printed by the CLI) is recorded, so a test can show that none of them is in a dump of the database.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx

from billing_core.crypto import Keyring, new_key_spec
from billing_core.db.engine import make_engine
from billing_core.db.migrate import upgrade_to_head
from billing_core.plans import load_catalog
from billing_core.services.context import Billing

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / ".venv" / "bin" if (ROOT / ".venv" / "bin" / "python").exists() else Path(sys.executable).parent
STARTUP_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class Tenant:
    account_id: str
    project_id: str  # the `default` project made with the account
    api_key: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class KeysServer:
    def __init__(self, workdir: Path) -> None:
        self.db_path = workdir / "keys.db"
        self.database_url = f"sqlite:///{self.db_path}"
        upgrade_to_head(self.database_url)
        self.keyring_spec = new_key_spec("k1")
        self.edge_token = secrets.token_hex(16)
        self.port = _free_port()
        self.log_path = workdir / "server.log"
        self.seen_secrets: list[str] = []
        self.env = {**{k: v for k, v in os.environ.items() if not k.startswith("TOLLGATE_")},
                    "TOLLGATE_DATABASE_URL": self.database_url, "TOLLGATE_ENV": "test",
                    "TOLLGATE_SECRET_KEY": secrets.token_urlsafe(36), "TOLLGATE_EDGE_TOKEN": self.edge_token,
                    "TOLLGATE_ENCRYPTION_KEYS": self.keyring_spec, "TOLLGATE_DATA_DIR": str(workdir)}
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=30,
                                   event_hooks={"request": [self._record_sent], "response": [self._record_received]})

    # -- recording secrets -------------------------------------------------------------------------
    def _record_sent(self, request: httpx.Request) -> None:
        if request.method == "PUT" and "/provider-keys/" in request.url.path:
            try:
                self.seen_secrets.append(json.loads(request.content)["key"])
            except (ValueError, KeyError, TypeError):
                pass  # a malformed body carries no key

    def _record_received(self, response: httpx.Response) -> None:
        response.read()
        try:
            body = response.json()
        except ValueError:
            return
        if isinstance(body, dict) and isinstance(body.get("secret"), str):
            self.seen_secrets.append(body["secret"])

    # -- the process -------------------------------------------------------------------------------
    def start(self) -> None:
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [str(BIN / "python"), "-m", "uvicorn", "portal.api.asgi:app", "--host", "127.0.0.1",
             "--port", str(self.port), "--no-access-log"],
            cwd=ROOT, env=self.env, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                if self.client.get("/api/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the API server did not start:\n{self.log_path.read_text(errors='replace')[-4000:]}")

    def stop(self) -> None:
        self.client.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._log.close()

    # -- the operator CLI and direct access ---------------------------------------------------------
    def cli(self, *args: str, extra_env: dict | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([str(BIN / "tollgate"), *args], cwd=ROOT, env={**self.env, **(extra_env or {})},
                              capture_output=True, text=True, timeout=120)

    def create_tenants(self, count: int, plan: str = "hobby") -> list[Tenant]:
        """`count` fresh accounts, one `tollgate admin create-account --json` each, run side by side."""
        procs = [subprocess.Popen([str(BIN / "tollgate"), "admin", "create-account", "--email",
                                   f"keys-{uuid.uuid4().hex[:16]}@example.com", "--plan", plan, "--json"],
                                  cwd=ROOT, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(count)]
        tenants = []
        for proc in procs:
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
            created = json.loads(out)
            self.seen_secrets.append(created["api_key"])
            tenants.append(Tenant(created["account_id"], created["project_id"], created["api_key"]))
        return tenants

    def billing(self) -> Billing:
        """The server's database and keyring, for looking behind the API."""
        return Billing(make_engine(self.database_url), load_catalog(), Keyring.parse(self.keyring_spec))

    def dump(self) -> str:
        """The whole database as SQL text, the way a backup or a leaked copy would hold it."""
        conn = sqlite3.connect(self.db_path)
        try:
            return "\n".join(conn.iterdump())
        finally:
            conn.close()
