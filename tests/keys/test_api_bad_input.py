"""Bad input on the project and key endpoints: the documented error shape, never a 500, nothing changed."""

from __future__ import annotations

import base64
import json

import pytest

from .helpers import assert_error
from .snapshots import unchanged

OPENAI = "sk-proj-" + "Rr7Ss8Tt" * 8 + "U5v6"


def _cursor(created: str, row_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([created, row_id]).encode()).rstrip(b"=").decode()


@pytest.fixture(scope="module")
def victim(keys_server):
    """An account every test here aims at; it must never change."""
    return keys_server.create_tenants(1)[0]


def _name_bodies(path_kind: str) -> list:
    return [{"name": "ok", field: value} for field, value in (
        ("plan", "pro"), ("balance", 10**9), ("balance_micros", 10**9), ("credit_balance_micros", 10**9),
        ("account_id", "acc_" + "Z" * 20), ("hmac_ciphertext", "v1.k1.AAAA"), ("hmac_prefix", "hk_live_AAAA"),
        ("previous_hmac_ciphertext", "v1.k1.AAAA"), ("id", f"{path_kind}_mine"), ("deleted_at", None),
        ("created_at", "2020-01-01T00:00:00Z"), ("status", "active"), ("key_hash", "0" * 64),
        ("revoked_at", None), ("scopes", "*"), ("secret", "ak_live_x"), ("provider_keys", []))]


def _targets(victim) -> list[tuple[str, str]]:
    return [("POST", "/api/v1/projects"), ("PATCH", f"/api/v1/projects/{victim.project_id}"),
            ("POST", "/api/v1/keys")]


def test_extra_fields_in_a_body_are_refused_with_422_naming_them_and_nothing_changes(client, victim):
    with unchanged(client, victim):
        for method, path in _targets(victim):
            for body in _name_bodies("prj"):
                field = next(k for k in body if k != "name")
                error = assert_error(client.request(method, path, json=body, headers=victim.auth), 422,
                                     "invalid_request")
                assert error["message"].startswith(f"{field}:"), (method, path, error)
        for body in ({"key": OPENAI, "account_id": "acc_x"}, {"key": OPENAI, "ciphertext": "v1.k1.AAAA"},
                     {"key": OPENAI, "masked": "sk-...0000"}, {"key": OPENAI, "project_id": "prj_x"}):
            assert_error(client.put(f"/api/v1/projects/{victim.project_id}/provider-keys/openai", json=body,
                                    headers=victim.auth), 422, "invalid_request")


BAD_BODIES = {
    "malformed JSON": (b'{"name": ', 400),
    "JSON null": (b"null", 422),
    "a JSON array": (b'["name"]', 422),
    "a JSON string": (b'"name"', 422),
    "an empty object": (b"{}", 422),
    "an empty body": (b"", 422),
    "a number for the name": (b'{"name": 5}', 422),
    "null for the name": (b'{"name": null}', 422),
    "a list for the name": (b'{"name": ["a"]}', 422),
    "an object for the name": (b'{"name": {"a": 1}}', 422),
    "true for the name": (b'{"name": true}', 422),
    "an empty name": (b'{"name": ""}', 422),
    "a blank name": (b'{"name": "   "}', 422),
    "a 101-character name": (json.dumps({"name": "x" * 101}).encode(), 422),
    "a NUL in the name": (b'{"name": "a\\u0000b"}', {400, 422}),  # 400 when refused at the door
    "a newline in the name": (b'{"name": "a\\nb"}', 422),
    "a lone surrogate in the name": (b'{"name": "\\ud800"}', 422),
    "bytes that are not UTF-8": (b'{"name": "\xff\xfe"}', 400),
    "NaN for the name": (b'{"name": NaN}', 422),
    "a duplicated key with a bad value": (b'{"name": "ok", "name": 7}', 422),
    "deep nesting": (b"[" * 50_000 + b"]" * 50_000, {400, 413, 422}),
    "a 70 KB body": (json.dumps({"name": "x" * 70_000}).encode(), 413),
}


@pytest.mark.parametrize("case", list(BAD_BODIES))
def test_a_bad_body_is_a_clear_4xx_and_changes_nothing(client, victim, case):
    content, status = BAD_BODIES[case]
    statuses = status if isinstance(status, set) else {status}
    headers = {**victim.auth, "Content-Type": "application/json"}
    with unchanged(client, victim):
        for method, path in _targets(victim):
            response = client.request(method, path, content=content, headers=headers)
            assert response.status_code in statuses, (case, method, path, response.status_code, response.text)
            assert_error(response, response.status_code)


def test_a_body_that_is_not_json_is_refused_and_changes_nothing(client, victim):
    with unchanged(client, victim):
        for method, path in _targets(victim):
            for headers, kwargs in (({"Content-Type": "text/plain"}, {"content": b'{"name": "x"}'}),
                                    ({}, {"data": {"name": "x"}})):
                response = client.request(method, path, headers={**victim.auth, **headers}, **kwargs)
                assert_error(response, 422)


UNKNOWN_IDS = ["prj_" + "Z" * 20, "key_" + "Z" * 20, "x" * 1000, "%00", "prj_%0A", "%ED%A0%80", "проект",
               "' OR 1=1 --", "..", "%2e%2e"]


@pytest.mark.parametrize("unknown", UNKNOWN_IDS)
def test_an_unknown_id_anywhere_is_404_and_never_500(client, victim, unknown):
    with unchanged(client, victim):
        for method, path, body in (
                ("GET", f"/api/v1/projects/{unknown}", None),
                ("PATCH", f"/api/v1/projects/{unknown}", {"name": "x"}),
                ("DELETE", f"/api/v1/projects/{unknown}", None),
                ("GET", f"/api/v1/projects/{unknown}/hmac-key", None),
                ("POST", f"/api/v1/projects/{unknown}/hmac-key/rotate", None),
                ("PUT", f"/api/v1/projects/{unknown}/provider-keys/openai", {"key": OPENAI}),
                ("DELETE", f"/api/v1/projects/{unknown}/provider-keys/openai", None),
                ("DELETE", f"/api/v1/keys/{unknown}", None)):
            response = client.request(method, path, json=body, headers=victim.auth)
            # A NUL in the path is refused at the door (400) before routing; every other id is unknown.
            assert_error(response, 400 if unknown == "%00" else 404)


BAD_LISTS = {
    "limit 0": {"limit": 0}, "limit 501": {"limit": 501}, "limit -1": {"limit": -1},
    "limit abc": {"limit": "abc"}, "limit 1.5": {"limit": "1.5"}, "limit huge": {"limit": "9" * 40},
    "a garbage cursor": {"cursor": "garbage"}, "a base64 non-list cursor": {"cursor": "bnVsbA"},
    "a cursor with a naive time": {"cursor": _cursor("2026-01-01T00:00:00", "prj_x")},
    "a cursor with a NUL id": {"cursor": _cursor("2026-01-01T00:00:00+00:00", "prj\x00")},
    "a cursor with a year 9999 time": {"cursor": _cursor("9999-12-31T23:59:59+00:00", "prj_x" + "\n")},
    "a 501-character cursor": {"cursor": "A" * 501},
}


@pytest.mark.parametrize("case", list(BAD_LISTS))
def test_a_bad_limit_or_cursor_on_a_list_is_422(client, victim, case):
    for path in ("/api/v1/projects", "/api/v1/keys"):
        assert_error(client.get(path, params=BAD_LISTS[case], headers=victim.auth), 422)


def test_an_unsupported_method_is_405_in_the_error_shape(client, victim):
    assert_error(client.put("/api/v1/projects", json={"name": "x"}, headers=victim.auth), 405)
    assert_error(client.put("/api/v1/keys/key_x", json={"name": "x"}, headers=victim.auth), 405)
