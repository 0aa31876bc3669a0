"""One way to run the API for tests: `uvicorn portal.api.asgi:app` in a subprocess on a free port.

The server is configured only through TOLLGATE_* variables (a migrated database, TOLLGATE_ENV=test, a
random secret key, edge token and keyring); accounts are made the way an operator makes them, with the
real CLI (`tollgate admin create-account ... --json`) given the same environment, so the same database.

    with run_api_server(copy_sqlite_template(sqlite_template, workdir)) as live:
        created = create_account_cli(live.env, "someone@example.com", plan="pro", credit_usd="5")
        httpx.get(f"{live.base_url}/api/health")
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from billing_core.crypto import new_key_spec
from billing_core.db.migrate import upgrade_to_head

from .conftest import PG_BASE_URL, pg_schema_url, require_postgres

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = ROOT / ".venv" / "bin"
BIN = VENV_BIN if (VENV_BIN / "python").exists() else Path(sys.executable).parent
PYTHON = BIN / "python"
TOLLGATE = BIN / "tollgate"
CLI_TIMEOUT_S = 120


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (now)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class LiveServer:
    """A running API server: where it answers, the environment it (and its operator CLI) runs with."""

    base_url: str
    env: dict[str, str] = field(repr=False)
    database_url: str
    log_path: Path
    process: subprocess.Popen = field(repr=False, compare=False)

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1])

    @property
    def edge_token(self) -> str:
        return self.env["TOLLGATE_EDGE_TOKEN"]

    @property
    def encryption_keys(self) -> str:
        """The TOLLGATE_ENCRYPTION_KEYS spec the server seals secrets with."""
        return self.env["TOLLGATE_ENCRYPTION_KEYS"]

    def log(self) -> str:
        """Everything the server has written so far (stdout and stderr)."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return "(no server log)"

    def log_tail(self, chars: int = 4000) -> str:
        return self.log()[-chars:]


class LiveServerClient:
    """A test folder's handle on a live server: an httpx client on it (`client_options` added to a 30 s
    timeout), `url` for its base URL, and every LiveServer attribute (base_url, env, database_url,
    log_path, port, edge_token, encryption_keys, log(), log_tail()) read through to `live`."""

    def __init__(self, live: LiveServer, **client_options) -> None:
        self.live = live
        self.client = httpx.Client(base_url=live.base_url, **{"timeout": 30, **client_options})

    def __getattr__(self, name: str):
        if name == "live":  # not set yet: no recursion
            raise AttributeError(name)
        return getattr(self.live, name)

    @property
    def url(self) -> str:
        return self.live.base_url

    def close(self) -> None:
        self.client.close()


@dataclass(frozen=True)
class Tenant:
    """An account as `tollgate admin create-account --json` prints it (`Tenant(**created)`)."""

    account_id: str
    project_id: str  # the `default` project made with the account
    api_key: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


def server_env(database_url: str, extra_env: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without any TOLLGATE_* variable, plus a fresh test configuration."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOLLGATE_")}
    env.update(TOLLGATE_DATABASE_URL=database_url, TOLLGATE_ENV="test",
               TOLLGATE_SECRET_KEY=secrets.token_urlsafe(36),  # 48 characters
               TOLLGATE_EDGE_TOKEN=secrets.token_urlsafe(24),  # 32 characters
               TOLLGATE_ENCRYPTION_KEYS=new_key_spec("k1"),
               # The sandbox provider's signing secret, here rather than generated into the checkout's data/.
               TOLLGATE_SANDBOX_WEBHOOK_SECRET=SANDBOX_SECRET)
    env.update(extra_env or {})
    return env


SANDBOX_SECRET = "whsec_" + base64.b64encode(b"tollgate live-server sandbox key!").decode()

# What must never be in a server's log (DESIGN.md, "Secure by default"): each secret's own shape, so a
# redacted one (`ak_live_[REDACTED]`) passes.
LEAKS = {
    "an account key": re.compile(r"ak_live_[A-Za-z0-9]{38}"),
    "a project HMAC key": re.compile(r"hk_live_[A-Za-z0-9]{38}"),
    "a webhook signing secret": re.compile(r"whsec_[A-Za-z0-9+/=_-]{8,}"),
    "an Argon2 password hash": re.compile(r"\$argon2(?:id|i|d)\$v="),
    "a session cookie": re.compile(r"tollgate_session=(?!\[REDACTED\])[^;\s'\"]{8,}"),
}


def assert_log_clean(log_path: Path) -> None:
    """Fail the test unless the server's log shows no key, secret, password hash or session cookie."""
    try:
        text = log_path.read_text(errors="replace")
    except OSError:
        return
    found = [(what, m) for what, pattern in LEAKS.items() if (m := pattern.search(text))]
    if found:
        what, match = found[0]
        end = text.find("\n", match.end())
        line = text[text.rfind("\n", 0, match.start()) + 1:end if end >= 0 else None]
        pytest.fail(f"the server logged {', '.join(w for w, _ in found)}; the first, in {log_path}:\n"
                    f"{line.replace(match[0], f'<{what}>')[:500]}")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _wait_until_healthy(server: LiveServer, timeout_s: float) -> None:
    """Return once GET /api/health answers 200; else stop the server and fail with its log."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"the API server exited with {server.process.returncode} at start-up:\n{server.log_tail()}")
        try:
            if httpx.get(f"{server.base_url}/api/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    _stop(server.process)
    pytest.fail(f"the API server did not answer GET /api/health within {timeout_s:g} s:\n{server.log_tail()}")


@contextmanager
def run_api_server(database_url: str, *, extra_env: Mapping[str, str] | None = None, timeout_s: float = 20,
                   log_path: Path | None = None) -> Iterator[LiveServer]:
    """Start the API on `database_url` (already migrated), wait for /api/health, stop it at exit.

    `extra_env` is added to (and may override) the TOLLGATE_* configuration; the server's output goes
    to `log_path` (by default a temporary file removed at exit)."""
    own_dir = None
    if log_path is None:
        own_dir = Path(tempfile.mkdtemp(prefix="tollgate-api-"))
        log_path = own_dir / "server.log"
    port = free_port()
    # The server's own address is its public URL: the Host and Origin checks accept what the tests send.
    env = server_env(database_url, {"TOLLGATE_PUBLIC_URL": f"http://127.0.0.1:{port}", **(extra_env or {})})
    cmd = [str(PYTHON), "-m", "uvicorn", "portal.api.asgi:app", "--host", "127.0.0.1",
           "--port", str(port), "--no-access-log"]
    try:
        with open(log_path, "wb") as log:
            process = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
            try:
                server = LiveServer(f"http://127.0.0.1:{port}", env, database_url, log_path, process)
                _wait_until_healthy(server, timeout_s)
                yield server
            finally:
                _stop(process)
        assert_log_clean(log_path)  # after a clean exit only: a failure in the test is not hidden behind it
    finally:
        if own_dir is not None:
            shutil.rmtree(own_dir, ignore_errors=True)


# -- the operator CLI -----------------------------------------------------------------------------
def run_cli(env: Mapping[str, str], *args: str, timeout: float = CLI_TIMEOUT_S) -> subprocess.CompletedProcess:
    """`tollgate ARGS...` with this environment (a LiveServer's env: the server's database)."""
    return subprocess.run([str(TOLLGATE), *args], cwd=ROOT, env=dict(env), capture_output=True, text=True,
                          timeout=timeout)


def run_cli_ok(env: Mapping[str, str], *args: str) -> str:
    """`tollgate ARGS...`, failing the test unless it exits with 0; its stdout."""
    done = run_cli(env, *args)
    if done.returncode != 0:
        pytest.fail(f"`tollgate {' '.join(args)}` exited with {done.returncode}: {done.stderr.strip()}")
    return done.stdout


def create_account_cli(env: Mapping[str, str], email: str, plan: str = "hobby", credit_usd: str = "0") -> dict:
    """A new account made by `tollgate admin create-account --json`: {account_id, project_id, api_key}."""
    return json.loads(run_cli_ok(env, "admin", "create-account", "--email", email, "--plan", plan,
                                 "--credit-usd", str(credit_usd), "--json"))


# -- migrated databases ---------------------------------------------------------------------------
def copy_sqlite_template(template: Path, directory: Path, name: str = "tollgate.db") -> str:
    """The URL of a migrated SQLite file: a copy of the session's `sqlite_template` in `directory`."""
    path = directory / name
    shutil.copy(template, path)
    return f"sqlite:///{path}"


@contextmanager
def migrated_pg_schema(prefix: str = "tg_live") -> Iterator[str]:
    """The URL of a fresh PostgreSQL schema migrated to head, dropped at exit (skips without PostgreSQL)."""
    require_postgres()
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_BASE_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        try:
            url = pg_schema_url(schema)
            upgrade_to_head(url)
            yield url
        finally:
            with admin.connect() as conn:
                conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
    finally:
        admin.dispose()


def migrated_database(stack: ExitStack, kind: str, directory: Path, template: Path, prefix: str) -> str:
    """A migrated database of `kind` ("sqlite": a copy of the template in `directory`; "postgresql": a
    fresh schema, dropped when `stack` closes), for module fixtures parametrized over both."""
    if kind == "sqlite":
        return copy_sqlite_template(template, directory)
    return stack.enter_context(migrated_pg_schema(prefix))
