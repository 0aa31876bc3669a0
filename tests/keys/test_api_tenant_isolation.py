"""Account B aims every read and write at account A's projects, HMAC keys, account keys and provider keys:
every answer is the 404 an unknown id gets, and A is unchanged."""

from __future__ import annotations

import pytest

from billing_core.services.provider_keys import open_provider_key

from .helpers import assert_error
from .snapshots import unchanged

ANTHROPIC = "sk-ant-api03-" + "Vv1Ww2Xx" * 10 + "-Y7z8"
OPENAI = "sk-proj-" + "Gg3Hh4Ii" * 8 + "J5k6"


@pytest.fixture(scope="module")
def a_and_b(keys_server):
    """A with a second project holding a provider key and a second account key; B with nothing but its own."""
    client = keys_server.client
    a, b = keys_server.create_tenants(2)
    second = client.post("/api/v1/projects", json={"name": "a-secret-project"}, headers=a.auth).json()
    assert client.put(f"/api/v1/projects/{second['id']}/provider-keys/anthropic", json={"key": ANTHROPIC},
                      headers=a.auth).status_code == 200
    extra = client.post("/api/v1/keys", json={"name": "a-extra"}, headers=a.auth).json()
    return a, b, {"projects": [a.project_id, second["id"]], "key": extra}


def _requests(project_id: str, key_id: str) -> list[tuple[str, str, dict | None]]:
    p = f"/api/v1/projects/{project_id}"
    return [("GET", p, None), ("PATCH", p, {"name": "taken over"}), ("DELETE", p, None),
            ("GET", f"{p}/hmac-key", None), ("POST", f"{p}/hmac-key/rotate", None),
            ("PUT", f"{p}/provider-keys/anthropic", {"key": ANTHROPIC[:-4] + "0000"}),
            ("PUT", f"{p}/provider-keys/openai", {"key": OPENAI}),
            ("DELETE", f"{p}/provider-keys/anthropic", None),
            ("DELETE", f"/api/v1/keys/{key_id}", None)]


def test_every_request_on_another_accounts_ids_is_the_404_of_an_unknown_id_and_a_is_unchanged(
        client, keys_server, a_and_b):
    a, b, owned = a_and_b
    with unchanged(client, a, b):
        for project_id in owned["projects"]:
            foreign = _requests(project_id, owned["key"]["id"])
            unknown = _requests("prj_" + "Q" * 20, "key_" + "Q" * 20)
            for (method, path, body), (_, unknown_path, _) in zip(foreign, unknown):
                theirs = client.request(method, path, json=body, headers=b.auth)
                nobodys = client.request(method, unknown_path, json=body, headers=b.auth)
                assert assert_error(theirs, 404, "not_found") == assert_error(nobodys, 404, "not_found"), path
                assert project_id not in theirs.text and "a-secret-project" not in theirs.text
    assert client.get("/api/v1/account", headers={"Authorization": f"Bearer {owned['key']['secret']}"}) \
        .status_code == 200
    billing = keys_server.billing()
    try:
        assert open_provider_key(billing, a.account_id, owned["projects"][1], "anthropic") == ANTHROPIC
    finally:
        billing.engine.dispose()


def test_another_accounts_projects_and_keys_never_appear_in_ones_own_lists(client, a_and_b):
    a, b, owned = a_and_b
    projects = client.get("/api/v1/projects", headers=b.auth)
    keys = client.get("/api/v1/keys", headers=b.auth)
    assert [p["id"] for p in projects.json()["data"]] == [b.project_id]
    assert [k["name"] for k in keys.json()["data"]] == ["default"]
    for text in (projects.text, keys.text):
        assert a.account_id not in text and owned["key"]["id"] not in text
        assert all(pid not in text for pid in owned["projects"])


def test_a_cursor_from_another_account_reveals_nothing_of_it(client, keys_server, a_and_b):
    a, b, _ = a_and_b
    cursor = client.get("/api/v1/projects", params={"limit": 1}, headers=a.auth).json()["next_cursor"]
    assert cursor is not None
    page = client.get("/api/v1/projects", params={"cursor": cursor}, headers=b.auth)
    assert page.status_code == 200
    assert all(p["id"] not in a_and_b[2]["projects"] for p in page.json()["data"])
