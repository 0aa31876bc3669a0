"""The live API server of the key tests (tests.live_server over a migrated SQLite file), with a keyring.

Every secret that crosses its client (a `secret` in an answer, a provider key in a PUT body, an account key
printed by the CLI) is recorded, so a test can show that none of them is in a dump of the database.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx

from billing_core.crypto import Keyring
from billing_core.db.engine import make_engine
from billing_core.plans import load_catalog
from billing_core.services.context import Billing

from ..live_server import (BIN, LiveServer, LiveServerClient, Tenant, copy_sqlite_template, create_account_cli,
                           run_api_server, run_cli)

__all__ = ["BIN", "KeysServer", "Tenant", "serving"]
STARTUP_TIMEOUT_S = 20.0


class KeysServer(LiveServerClient):
    """The live server, the file behind it (`db_path`) and its keyring (`keyring_spec`)."""

    def __init__(self, live: LiveServer, db_path: Path) -> None:
        self.seen_secrets: list[str] = []
        super().__init__(live, event_hooks={"request": [self._record_sent], "response": [self._record_received]})
        self.db_path = db_path
        self.keyring_spec = live.encryption_keys

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

    # -- the operator CLI and direct access ---------------------------------------------------------
    def cli(self, *args: str, extra_env: dict | None = None) -> subprocess.CompletedProcess:
        return run_cli({**self.env, **(extra_env or {})}, *args)

    def create_tenants(self, count: int, plan: str = "hobby") -> list[Tenant]:
        """`count` fresh accounts, one `tollgate admin create-account --json` each, run side by side."""
        emails = [f"keys-{uuid.uuid4().hex[:16]}@example.com" for _ in range(count)]
        with ThreadPoolExecutor(max_workers=max(count, 1)) as pool:
            made = list(pool.map(lambda email: create_account_cli(self.env, email, plan=plan), emails))
        self.seen_secrets.extend(created["api_key"] for created in made)
        return [Tenant(**created) for created in made]

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


@contextmanager
def serving(workdir: Path, sqlite_template: Path) -> Iterator[KeysServer]:
    """A live server on a migrated copy of `sqlite_template` in `workdir`, its data directory."""
    database_url = copy_sqlite_template(sqlite_template, workdir, "keys.db")
    with run_api_server(database_url, extra_env={"TOLLGATE_DATA_DIR": str(workdir)}, timeout_s=STARTUP_TIMEOUT_S,
                        log_path=workdir / "server.log") as live:
        server = KeysServer(live, workdir / "keys.db")
        try:
            yield server
        finally:
            server.close()
