"""POST /oauth/device/code and POST /oauth/token against a live server: RFC shapes, never a 500."""

from __future__ import annotations

import itertools
import json
import re
from datetime import datetime, timezone

import pytest

from billing_core.keys import ACCOUNT_KEY_PREFIX, is_well_formed
from billing_core.services.device import approve_device, deny_device

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:device_code"
_addresses = itertools.count(1)
RFC6749_TEXT = re.compile(r"^[\x20-\x21\x23-\x5b\x5d-\x7e]+$")  # section 5.2: error_description's charset


@pytest.fixture
def ip() -> dict[str, str]:
    """A fresh client address per test (uvicorn trusts X-Forwarded-For from 127.0.0.1), so the
    per-address rate limit of one test does not leak into the next."""
    n = next(_addresses)
    return {"X-Forwarded-For": f"198.51.{n // 250}.{n % 250 + 1}"}


def now() -> datetime:
    return datetime.now(timezone.utc)


def start(server, ip, **form):
    response = server.client.post("/oauth/device/code", data={"client_id": "tollgate-cli", **form}, headers=ip)
    assert response.status_code == 200, response.text
    return response.json()


def token(server, ip, device_code, **form):
    return server.client.post("/oauth/token", headers=ip, data={
        "grant_type": GRANT_TYPE, "device_code": device_code, "client_id": "tollgate-cli", **form})


def assert_oauth_error(response, error: str, status: int = 400) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == error, body
    assert isinstance(body["error_description"], str) and RFC6749_TEXT.match(body["error_description"])
    assert response.headers["cache-control"] == "no-store"


def test_device_code_answers_every_rfc_field(server, ip):
    body = start(server, ip, device_name="laptop")
    assert set(body) == {"device_code", "user_code", "verification_uri", "verification_uri_complete",
                         "expires_in", "interval"}
    assert body["verification_uri"] == f"{server.url}/device"  # the public URL: the server's own here
    assert body["verification_uri_complete"] == f"{server.url}/device?user_code={body['user_code']}"
    assert (body["expires_in"], body["interval"]) == (600, 5)


def test_the_whole_flow_pending_then_a_key_that_works_then_invalid_grant(server, ip, account):
    body = start(server, ip, device_name="ci runner")
    assert_oauth_error(token(server, ip, body["device_code"]), "authorization_pending")
    approve_device(server.billing, body["user_code"], user_id="usr_test", account_id=account.account_id, now=now())
    response = token(server, ip, body["device_code"])
    assert response.status_code == 200, response.text
    issued = response.json()
    assert issued["token_type"] == "Bearer" and is_well_formed(issued["access_token"], ACCOUNT_KEY_PREFIX)
    assert response.headers["cache-control"] == "no-store"
    me = server.client.get("/api/v1/account", headers={"Authorization": f"Bearer {issued['access_token']}"})
    assert me.status_code == 200 and me.json()["email"] == account.email
    assert_oauth_error(token(server, ip, body["device_code"]), "invalid_grant")


def test_polling_again_at_once_is_slow_down(server, ip):
    body = start(server, ip)
    assert_oauth_error(token(server, ip, body["device_code"]), "authorization_pending")
    assert_oauth_error(token(server, ip, body["device_code"]), "slow_down")


def test_a_denied_request_answers_access_denied(server, ip):
    body = start(server, ip)
    deny_device(server.billing, body["user_code"], now=now())
    assert_oauth_error(token(server, ip, body["device_code"]), "access_denied")


def test_an_unknown_client_is_invalid_client(server, ip):
    response = server.client.post("/oauth/device/code", data={"client_id": "evil-cli"}, headers=ip)
    assert_oauth_error(response, "invalid_client")
    body = start(server, ip)
    assert_oauth_error(token(server, ip, body["device_code"], client_id="evil-cli"), "invalid_client")


def test_another_grant_type_is_unsupported(server, ip):
    response = server.client.post("/oauth/token", headers=ip, data={
        "grant_type": "client_credentials", "device_code": "x", "client_id": "tollgate-cli"})
    assert_oauth_error(response, "unsupported_grant_type")


@pytest.mark.parametrize("path", ["/oauth/device/code", "/oauth/token"])
@pytest.mark.parametrize("kwargs", [
    {},
    {"data": {}},
    {"json": {"client_id": "tollgate-cli", "grant_type": GRANT_TYPE, "device_code": "x"}},
    {"content": b"client_id=tollgate-cli&client_id=tollgate-cli",
     "headers": {"content-type": "application/x-www-form-urlencoded"}},
    {"content": "%22q%5C=1&%22q%5C=2".encode(), "headers": {"content-type": "application/x-www-form-urlencoded"}},
    {"content": b"client_id=%ff%fe&device_code=%c3", "headers": {"content-type": "application/x-www-form-urlencoded"}},
    {"content": b"\xff\xfegarbage", "headers": {"content-type": "application/x-www-form-urlencoded"}},
    {"content": "&".join(f"f{i}=1" for i in range(100)).encode(),
     "headers": {"content-type": "application/x-www-form-urlencoded"}},
    {"files": {"client_id": ("a", b"tollgate-cli")}},
    {"data": {"grant_type": GRANT_TYPE, "client_id": "", "device_code": ""}},
], ids=["no-body", "empty-form", "json", "repeated", "repeated-odd-name", "bad-utf8", "binary", "many-fields", "multipart", "blank"])
def test_malformed_requests_are_invalid_request(server, ip, path, kwargs):
    headers = {**ip, **kwargs.pop("headers", {})}
    assert_oauth_error(server.client.post(path, headers=headers, **kwargs), "invalid_request")


@pytest.mark.parametrize("path", ["/oauth/device/code", "/oauth/token"])
@pytest.mark.parametrize("body", [b"client_id=tollgate-cli\x00&device_code=x",
                                  b"client_id=tollgate-cli&device_code=%00"])
def test_a_nul_in_the_body_raw_or_percent_encoded_is_a_400_not_a_500(server, ip, path, body):
    # The app-wide NUL guard answers before the route, in the /api/v1 error shape.
    response = server.client.post(path, headers={**ip, "content-type": "application/x-www-form-urlencoded"},
                                  content=body)
    assert response.status_code == 400 and "error" in response.json()


@pytest.mark.parametrize("path", ["/oauth/device/code", "/oauth/token"])
def test_a_huge_body_is_refused_without_reading_it_all(server, ip, path):
    response = server.client.post(path, headers=ip, data={"client_id": "tollgate-cli", "device_code": "x" * 100_000,
                                                          "grant_type": GRANT_TYPE})
    assert_oauth_error(response, "invalid_request", 413)


@pytest.mark.parametrize("form", [
    {"device_code": "x" * 5000},
    {"device_code": "\ud7ff\U0001f600"},
    {"device_code": "' OR 1=1 --"},
])
def test_odd_device_codes_are_invalid_grant(server, ip, form):
    assert_oauth_error(token(server, ip, **form), "invalid_grant")


@pytest.mark.parametrize("name", ["x" * 101, "tab\there\x07bell"])
def test_a_bad_device_name_is_invalid_request(server, ip, name):
    response = server.client.post("/oauth/device/code", headers=ip, data={"client_id": "tollgate-cli",
                                                                          "device_name": name})
    assert_oauth_error(response, "invalid_request")


def test_too_many_requests_from_one_address_are_429_with_retry_after(server, ip):
    answers = [server.client.post("/oauth/device/code", data={"client_id": "tollgate-cli"}, headers=ip)
               for _ in range(12)]
    assert [a.status_code for a in answers[:10]] == [200] * 10
    limited = answers[-1]
    assert_oauth_error(limited, "slow_down", 429)
    assert int(limited.headers["retry-after"]) >= 1
    # Another address is not affected.
    other = {"X-Forwarded-For": "192.0.2.200"}
    assert server.client.post("/oauth/device/code", data={"client_id": "tollgate-cli"}, headers=other).status_code == 200


def test_wrong_methods_are_not_500(server):
    for path in ("/oauth/device/code", "/oauth/token"):
        response = server.client.get(path)
        assert response.status_code == 405
        json.loads(response.text)


def test_the_endpoints_are_in_the_openapi_document(server):
    paths = server.client.get("/api/openapi.json").json()["paths"]
    assert "post" in paths["/oauth/device/code"] and "post" in paths["/oauth/token"]
    form = paths["/oauth/token"]["post"]["requestBody"]["content"]["application/x-www-form-urlencoded"]
    assert form["schema"]["properties"]["grant_type"]["enum"] == [GRANT_TYPE]
