"""The production Reflex server mounts the API (api_transformer): one process answers pages' backend and API."""

import json
import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def reflex_backend(tmp_path_factory):
    db = tmp_path_factory.mktemp("reflex") / "tollgate.db"
    port = _free_port()
    env = {**os.environ, "TOLLGATE_DATABASE_URL": f"sqlite:///{db}", "TOLLGATE_ENV": "test",
           "TOLLGATE_DATA_DIR": str(db.parent),
           "TOLLGATE_SECRET_KEY": secrets.token_urlsafe(48), "REFLEX_TELEMETRY_ENABLED": "false",
           "REFLEX_USE_SYSTEM_BUN": "1", "PATH": f"{ROOT / '.tools/node_modules/.bin'}:{os.environ['PATH']}"}
    created = json.loads(subprocess.run(
        [BIN / "tollgate", "admin", "create-account", "--email", "reflex@example.com", "--json"],
        env=env, check=True, capture_output=True, text=True).stdout)
    log = open(db.with_suffix(".log"), "w")
    proc = subprocess.Popen([BIN / "reflex", "run", "--env", "prod", "--backend-only", "--backend-port", str(port)],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/api/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail("the Reflex server did not answer /api/health in 60 s: " + db.with_suffix(".log").read_text()[-2000:])
    yield base, created
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def test_the_reflex_server_answers_health_and_its_own_ping(reflex_backend):
    base, _ = reflex_backend
    health = httpx.get(f"{base}/api/health").json()
    assert health["status"] == "ok" and health["database"] == "ok"
    assert httpx.get(f"{base}/ping").json() == "pong"


def test_the_reflex_server_serves_the_account_api_and_its_docs(reflex_backend):
    base, created = reflex_backend
    key = {"Authorization": f"Bearer {created['api_key']}"}
    account = httpx.get(f"{base}/api/v1/account", headers=key).json()
    assert account["id"] == created["account_id"] and account["plan"] == "hobby"
    usage = httpx.post(f"{base}/api/v1/usage", headers=key, json={"events": [
        {"id": "r1", "project_id": created["project_id"], "kind": "compute", "duration_ms": 1500}]}).json()
    assert usage["results"][0]["charged"]["allowance_ms"] == 1500
    assert usage["account"]["allowance"]["used_ms"] == 1500
    assert "/api/v1/usage" in httpx.get(f"{base}/api/openapi.json").json()["paths"]
    assert httpx.get(f"{base}/api/docs").status_code == 200
    assert httpx.get(f"{base}/api/v1/account").json()["error"]["code"] == "unauthorized"
