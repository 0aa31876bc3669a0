"""Issue 12, finding 2: one origin. CORS and the live updates' WebSocket accept only the app's own origin,
and a request that changes something with the session cookie must say it comes from that origin."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from portal.security.origin import allowed_origins
from portal.settings import Settings
from tests.live_server import PYTHON, ROOT, copy_sqlite_template, create_account_cli, run_api_server

from .reflex_demo import demo_reflex_server, websocket_handshake

EVIL = "https://evil.example"
PASSWORD = "correct horse 1843"
JSON = {"Accept": "application/json"}


def _allow_headers(response: httpx.Response) -> list[str]:
    return [name for name in response.headers if name.lower().startswith("access-control-allow-")]


def test_the_allowed_origins_are_the_public_urls_plus_its_loopback_aliases(tmp_path):
    def origins(url: str) -> tuple[str, ...]:
        return allowed_origins(Settings(_env_file=None, public_url=url, data_dir=tmp_path))

    assert origins("http://localhost:3000") == ("http://localhost:3000", "http://127.0.0.1:3000",
                                                "http://[::1]:3000")
    assert origins("http://127.0.0.1:3100/") == ("http://127.0.0.1:3100", "http://localhost:3100",
                                                 "http://[::1]:3100")
    assert origins("https://Billing.Example.com:443/portal") == ("https://billing.example.com",)
    with pytest.raises(ValueError, match="TOLLGATE_PUBLIC_URL"):
        origins("billing.example.com")


def test_rxconfig_gives_reflex_cors_and_socketio_the_public_urls_origin(tmp_path):
    # Reflex hands cors_allowed_origins to its CORS layers and, with the websocket transport, to socket.io.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TOLLGATE_", "REFLEX_"))}
    env.update(TOLLGATE_PUBLIC_URL="https://billing.example.com", TOLLGATE_DATA_DIR=str(tmp_path))
    done = subprocess.run([str(PYTHON), "-c", "import json, rxconfig; c = rxconfig.config; "
                           "print(json.dumps([list(c.cors_allowed_origins), c.transport]))"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [["https://billing.example.com"], "websocket"]


# -- the API alone (uvicorn), public URL http://127.0.0.1:<port> -----------------------------------------
@pytest.fixture(scope="module")
def api(tmp_path_factory, sqlite_template):
    with run_api_server(copy_sqlite_template(sqlite_template, tmp_path_factory.mktemp("origin"))) as live:
        yield live


@contextmanager
def _signed_in(api) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api.base_url, timeout=30) as client:
        response = client.post("/auth/sign-up", data={"email": f"origin-{uuid.uuid4().hex[:12]}@example.com",
                                                      "password": PASSWORD}, headers={**JSON, "Origin": api.base_url})
        assert response.status_code == 200, response.text
        yield client


@pytest.mark.parametrize("sender", [{}, {"Origin": EVIL}, {"Origin": "null"}, {"Referer": f"{EVIL}/page"},
                                    {"Origin": "http://127.0.0.1:1"}],
                         ids=["no-origin", "foreign", "null", "foreign-referer", "same-host-other-port"])
def test_a_cookie_request_that_changes_something_from_elsewhere_is_refused_and_changes_nothing(api, sender):
    with _signed_in(api) as client:
        refused = client.post("/auth/sign-out", headers={**JSON, **sender})
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden_origin"
        assert client.get("/auth/session").status_code == 200  # still signed in


@pytest.mark.parametrize("sender", ["origin", "referer"])
def test_the_same_request_from_our_own_pages_goes_through(api, sender):
    with _signed_in(api) as client:
        headers = {"Origin": api.base_url} if sender == "origin" else {"Referer": f"{api.base_url}/settings"}
        assert client.post("/auth/sign-out", headers={**JSON, **headers}).status_code == 200
        assert client.get("/auth/session").status_code == 401


def test_bearer_and_cookieless_requests_need_no_origin(api):
    tenant = create_account_cli(api.env, f"bearer-{uuid.uuid4().hex[:10]}@example.com")
    with _signed_in(api) as client:  # a session cookie too: the Bearer key is what authenticates
        renamed = client.patch(f"/api/v1/projects/{tenant['project_id']}", json={"name": "renamed"},
                               headers={"Authorization": f"Bearer {tenant['api_key']}", "Origin": EVIL})
        assert renamed.status_code == 200 and renamed.json()["name"] == "renamed"
    email = f"curl-{uuid.uuid4().hex[:10]}@example.com"
    assert httpx.post(f"{api.base_url}/auth/sign-up", data={"email": email, "password": PASSWORD},
                      headers=JSON).status_code == 200  # no cookie, no Origin: curl


# -- the production server (Reflex: pages, API and socket.io on one port) --------------------------------
@pytest.fixture(scope="module")
def demo(tmp_path_factory, request):
    return demo_reflex_server(tmp_path_factory, request.config)


@pytest.mark.slow
def test_the_live_updates_websocket_opens_only_for_our_origin(demo):
    assert websocket_handshake(demo.base_url, EVIL).startswith("HTTP/1.1 403")
    assert websocket_handshake(demo.base_url, "http://127.0.0.1:1").startswith("HTTP/1.1 403")
    assert websocket_handshake(demo.base_url, demo.base_url).startswith("HTTP/1.1 101")


@pytest.mark.slow
def test_no_access_control_allow_header_answers_a_foreign_origin(demo):
    for path in ("/api/health", "/auth/session", "/", "/sign-in/", "/_event/?EIO=4&transport=polling"):
        response = httpx.get(f"{demo.base_url}{path}", headers={"Origin": EVIL})
        assert _allow_headers(response) == [], (path, response.headers)
    preflight = {"Origin": EVIL, "Access-Control-Request-Method": "POST"}
    refused = httpx.options(f"{demo.base_url}/auth/sign-out", headers=preflight)
    assert refused.status_code == 403 and _allow_headers(refused) == []
    ours = httpx.options(f"{demo.base_url}/auth/sign-out", headers={**preflight, "Origin": demo.base_url})
    assert ours.status_code == 200 and ours.headers["access-control-allow-origin"] == demo.base_url
