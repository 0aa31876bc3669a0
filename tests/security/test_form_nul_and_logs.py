"""Issue 12 #6: a NUL percent-encoded in a form (`email=%00`) is refused at the door like a raw one (400, not a
500 that leaves a row behind), and no log shows a key, secret, password, Argon2 hash or session cookie, even
when a route crashes holding them (every live server's log is also checked when it stops:
tests/live_server.py `assert_log_clean`)."""

from __future__ import annotations

import re
import subprocess
import uuid
from contextlib import ExitStack, contextmanager

import httpx
import pytest
from sqlalchemy import select

from billing_core.db.engine import make_engine
from billing_core.db.models import Account
from billing_core.keys import ACCOUNT_KEY_PREFIX, generate

from ..live_server import (PYTHON, ROOT, LiveServer, _stop, _wait_until_healthy, assert_log_clean,
                           copy_sqlite_template, free_port, migrated_database, run_api_server, server_env)
from .crashing_api import PASSWORD

JSON = {"Accept": "application/json"}
LEAKED = [re.compile(p) for p in (r"ak_live_[A-Za-z0-9]{38}", r"hk_live_[A-Za-z0-9]{38}", r"\$argon2id\$v=",
                                  r"whsec_[A-Za-z0-9]{8}", r"tollgate_session=(?!\[REDACTED\])\S{8}",
                                  r"correct(\s|\+|%20)horse")]


def leaks(log: str) -> list[str]:
    return [m[0] for pattern in LEAKED for m in pattern.finditer(log)]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def live(request, tmp_path_factory, sqlite_template):
    with ExitStack() as stack:
        url = migrated_database(stack, request.param, tmp_path_factory.mktemp("form-nul"), sqlite_template, "tg_form_nul")
        server = stack.enter_context(run_api_server(url))
        yield server, stack.enter_context(httpx.Client(base_url=server.base_url, timeout=30))


def _account_with_email(database_url: str, email: str):
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            return conn.execute(select(Account.__table__.c.id).where(Account.__table__.c.email == email)).first()
    finally:
        engine.dispose()


def test_sign_in_with_a_percent_encoded_nul_is_a_400(live):
    server, client = live
    for form in ({"email": "\x00", "password": "x"}, {"email": "a@example.com", "password": "pass\x00word"}):
        response = client.post("/auth/sign-in", data=form, headers=JSON)  # httpx sends the NUL as %00
        assert response.status_code == 400, response.text
        assert response.json()["error"]["code"] == "invalid_characters"
    raw = client.post("/auth/sign-in", content=b"email=a%40example.com&password=x%00y",
                      headers={**JSON, "Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    assert raw.status_code == 400, raw.text


def test_a_multipart_form_field_or_file_name_with_a_nul_is_a_400(live):
    server, client = live
    as_field = client.post("/auth/sign-in", files={"email": (None, "a\x00@example.com"), "password": (None, "x")},
                           headers=JSON)
    assert as_field.status_code == 400, as_field.text
    body = (b'--b\r\nContent-Disposition: form-data; name="email"; filename*=utf-8\'\'x%00.txt\r\n\r\nx\r\n'
            b"--b--\r\n")
    encoded = client.post("/auth/sign-in", content=body,
                          headers={**JSON, "Content-Type": "multipart/form-data; boundary=b"})
    assert encoded.status_code in (400, 401, 422), encoded.text


def test_sign_up_with_a_nul_in_the_name_is_a_400_and_leaves_nothing(live):
    server, client = live
    email = f"nul-{uuid.uuid4().hex[:10]}@example.com"
    response = client.post("/auth/sign-up", data={"email": email, "password": PASSWORD, "name": "Ada\x00Lovelace"},
                           headers=JSON)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_characters"
    assert _account_with_email(server.database_url, email) is None
    signed_in = client.post("/auth/sign-in", data={"email": email, "password": PASSWORD}, headers=JSON)
    assert signed_in.status_code == 401, signed_in.text
    assert leaks(server.log()) == []


# -- a route that crashes holding secrets -------------------------------------------------------------------
@contextmanager
def crashing_server(workdir, sqlite_template):
    """`uvicorn tests.security.crashing_api:app`, configured like run_api_server's, its log checked at stop."""
    url = copy_sqlite_template(sqlite_template, workdir)
    env, port, log_path = server_env(url), free_port(), workdir / "server.log"
    cmd = [str(PYTHON), "-m", "uvicorn", "tests.security.crashing_api:app", "--host", "127.0.0.1",
           "--port", str(port), "--no-access-log"]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            server = LiveServer(f"http://127.0.0.1:{port}", env, url, log_path, process)
            _wait_until_healthy(server, 20)
            yield server
        finally:
            _stop(process)
    assert_log_clean(log_path)


def test_a_route_that_crashes_or_logs_holding_secrets_leaves_none_in_the_log(tmp_path, sqlite_template):
    key = generate(ACCOUNT_KEY_PREFIX)
    cookie = "eyJ0b2tlbiI6InNlY3JldCJ9.Z1a2b3.c4d5e6f7g8h9i0j1k2l3m4n5o6p"
    headers = {"Authorization": f"Bearer {key}", "Cookie": f"tollgate_session={cookie}"}
    with crashing_server(tmp_path, sqlite_template) as server:
        for path in ("/test/crash/message", "/test/crash/sql"):
            # A connection each: uvicorn closes the one on which the app raised.
            response = httpx.get(server.base_url + path, headers=headers, timeout=30)
            assert response.status_code == 500, response.text
            assert response.json()["error"]["code"] == "internal_error"
        assert httpx.get(server.base_url + "/test/log/request", headers=headers, timeout=30).status_code == 200
        _stop(server.process)  # every line written
        log = server.log()
    # The failures are logged, with what a person needs to find them...
    for line in ("unexpected error on GET /test/crash/message", "unexpected error on GET /test/crash/sql",
                 "no_such_table", "request headers:", "form: email=someone%40example.com&password=[REDACTED]"):
        assert line in log, log
    # ...and no secret.
    assert leaks(log) == [], log
    assert key not in log and cookie not in log
    assert "$argon2id$[REDACTED]" in log and "ak_live_[REDACTED]" in log and "Bearer [REDACTED]" in log
