"""/api/v1/projects and the HMAC key, through a live server."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta, timezone

from billing_core.keys import HMAC_KEY_PREFIX, is_well_formed
from billing_core.services.projects import verify_hmac_signature

from .helpers import assert_error

PROJECT_FIELDS = {"id", "name", "created_at", "hmac_key", "provider_keys"}
HMAC_FIELDS = {"prefix", "last4", "rotated_at", "previous_valid_until"}


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_a_new_account_lists_its_default_project_with_a_masked_hmac_key(client, tenant):
    response = client.get("/api/v1/projects", headers=tenant.auth)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"data", "next_cursor"} and body["next_cursor"] is None
    [project] = body["data"]
    assert set(project) == PROJECT_FIELDS and set(project["hmac_key"]) == HMAC_FIELDS
    assert project["id"] == tenant.project_id and project["name"] == "default"
    assert project["hmac_key"]["prefix"].startswith(HMAC_KEY_PREFIX) and project["provider_keys"] == []


def test_a_project_is_created_read_renamed_and_deleted_after_which_its_usage_is_unknown(client, tenant):
    created = client.post("/api/v1/projects", json={"name": "staging"}, headers=tenant.auth)
    assert created.status_code == 201, created.text
    project = created.json()
    assert set(project) == PROJECT_FIELDS and project["name"] == "staging"
    path = f"/api/v1/projects/{project['id']}"
    assert client.get(path, headers=tenant.auth).json() == project
    renamed = client.patch(path, json={"name": "production"}, headers=tenant.auth)
    assert renamed.status_code == 200 and renamed.json() == {**project, "name": "production"}
    deleted = client.delete(path, headers=tenant.auth)
    assert deleted.status_code == 204 and deleted.content == b""
    assert_error(client.get(path, headers=tenant.auth), 404, "not_found")
    assert_error(client.delete(path, headers=tenant.auth), 404, "not_found")
    listed = client.get("/api/v1/projects", headers=tenant.auth).json()["data"]
    assert project["id"] not in [p["id"] for p in listed]
    usage = client.post("/api/v1/usage", headers=tenant.auth, json={"events": [
        {"id": "after-delete", "project_id": project["id"], "kind": "compute", "duration_ms": 1000}]})
    assert usage.status_code == 200 and usage.json()["results"][0]["error"]["code"] == "unknown_project"


def test_a_hobby_account_gets_409_project_limit_reached_at_its_fourth_project(client, tenant):
    for name in ("two", "three"):
        assert client.post("/api/v1/projects", json={"name": name}, headers=tenant.auth).status_code == 201
    error = assert_error(client.post("/api/v1/projects", json={"name": "four"}, headers=tenant.auth),
                         409, "project_limit_reached")
    assert "hobby plan allows 3 projects" in error["message"]
    assert len(client.get("/api/v1/projects", headers=tenant.auth).json()["data"]) == 3


def test_projects_page_through_an_opaque_cursor(client, keys_server):
    [tenant] = keys_server.create_tenants(1, plan="starter")
    made = {client.post("/api/v1/projects", json={"name": f"p{i}"}, headers=tenant.auth).json()["id"]
            for i in range(4)}
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        body = client.get("/api/v1/projects", params=params, headers=tenant.auth).json()
        assert len(body["data"]) <= 2
        seen += [p["id"] for p in body["data"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(made | {tenant.project_id})


def test_the_owner_reveals_the_hmac_key_matching_its_masked_prefix_and_last4(client, tenant):
    project = client.get(f"/api/v1/projects/{tenant.project_id}", headers=tenant.auth).json()
    response = client.get(f"/api/v1/projects/{tenant.project_id}/hmac-key", headers=tenant.auth)
    assert response.status_code == 200 and set(response.json()) == {"secret"}
    secret = response.json()["secret"]
    assert is_well_formed(secret, HMAC_KEY_PREFIX)
    assert secret.startswith(project["hmac_key"]["prefix"]) and secret.endswith(project["hmac_key"]["last4"])


def test_rotating_returns_the_new_key_once_and_the_old_one_verifies_for_24_hours(client, tenant, keys_server):
    path = f"/api/v1/projects/{tenant.project_id}/hmac-key"
    old = client.get(path, headers=tenant.auth).json()["secret"]
    before = datetime.now(timezone.utc)
    response = client.post(f"{path}/rotate", headers=tenant.auth)
    assert response.status_code == 200, response.text
    body = response.json()
    new = body["secret"]
    assert set(body) == {"secret", "hmac_key"} and new != old and is_well_formed(new, HMAC_KEY_PREFIX)
    valid_until = _parse(body["hmac_key"]["previous_valid_until"])
    assert before + timedelta(hours=24) - timedelta(seconds=1) <= valid_until <= before + timedelta(hours=24, seconds=5)
    assert client.get(path, headers=tenant.auth).json() == {"secret": new}
    shown = client.get(f"/api/v1/projects/{tenant.project_id}", headers=tenant.auth).json()
    assert shown["hmac_key"] == body["hmac_key"] and new not in str(shown)

    billing = keys_server.billing()
    try:
        message = b"payload"
        sig = {k: hmac.new(k.encode(), message, hashlib.sha256).hexdigest() for k in (old, new)}
        for moment, old_ok in ((before + timedelta(hours=1), True), (valid_until, False)):
            assert verify_hmac_signature(billing, tenant.project_id, message, sig[old], moment) is old_ok
            assert verify_hmac_signature(billing, tenant.project_id, message, sig[new], moment)
    finally:
        billing.engine.dispose()


def test_the_edge_token_cannot_manage_projects_or_keys(client, keys_server, tenant):
    edge = {"Authorization": f"Bearer {keys_server.edge_token}"}
    for method, path in (("GET", "/api/v1/projects"), ("POST", "/api/v1/projects"), ("GET", "/api/v1/keys"),
                         ("GET", f"/api/v1/projects/{tenant.project_id}/hmac-key")):
        assert_error(client.request(method, path, json={"name": "x"}, headers=edge), 403, "forbidden")


def test_projects_without_credentials_are_refused_with_401(client):
    assert_error(client.get("/api/v1/projects"), 401)
    assert_error(client.post("/api/v1/projects", json={"name": "x"}), 401)
