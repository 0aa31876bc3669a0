"""/api/v1/keys and /api/v1/projects/{id}/provider-keys/{provider}, through a live server."""

from __future__ import annotations

from billing_core.keys import ACCOUNT_KEY_PREFIX, hash_key, is_well_formed
from billing_core.services.provider_keys import open_provider_key

from .helpers import assert_error

KEY_FIELDS = {"id", "name", "prefix", "last4", "created_at", "last_used_at", "revoked_at", "scopes", "budget_micros",
              "budget_reset", "models", "rpm", "tpm", "expires_at", "project_id", "spend_micros",
              "budget_remaining_micros"}
ANTHROPIC = "sk-ant-api03-" + "Kk3Ll4Mm" * 10 + "-Q1w2"
OPENAI = "sk-proj-" + "Nn5Oo6Pp" * 8 + "E3r4"


def test_a_new_account_key_is_returned_once_with_its_secret_and_works_at_once(client, tenant):
    response = client.post("/api/v1/keys", json={"name": "laptop"}, headers=tenant.auth)
    assert response.status_code == 201, response.text
    created = response.json()
    assert set(created) == KEY_FIELDS | {"secret"} and created["name"] == "laptop"
    secret = created["secret"]
    assert is_well_formed(secret, ACCOUNT_KEY_PREFIX)
    assert (created["prefix"], created["last4"]) == (secret[:12], secret[-4:])
    me = client.get("/api/v1/account", headers={"Authorization": f"Bearer {secret}"})
    assert me.status_code == 200 and me.json()["id"] == tenant.account_id


def test_the_key_list_never_shows_a_secret_or_a_hash(client, tenant):
    secret = client.post("/api/v1/keys", json={"name": "ci"}, headers=tenant.auth).json()["secret"]
    response = client.get("/api/v1/keys", headers=tenant.auth)
    assert response.status_code == 200
    body = response.json()
    assert [k["name"] for k in body["data"]] == ["ci", "default"] and body["next_cursor"] is None
    assert all(set(k) == KEY_FIELDS for k in body["data"])
    for leaked in (secret, tenant.api_key, hash_key(secret), hash_key(tenant.api_key)):
        assert leaked not in response.text
    default = body["data"][1]
    assert default["last_used_at"] is not None  # it is the key this very test authenticates with


def test_a_revoked_key_is_refused_by_the_very_next_request(client, tenant):
    created = client.post("/api/v1/keys", json={"name": "short-lived"}, headers=tenant.auth).json()
    own = {"Authorization": f"Bearer {created['secret']}"}
    assert client.get("/api/v1/account", headers=own).status_code == 200
    revoked = client.delete(f"/api/v1/keys/{created['id']}", headers=own)  # a key may revoke itself
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    assert_error(client.get("/api/v1/account", headers=own), 401, "invalid_key")
    assert_error(client.get("/api/v1/keys", headers=own), 401, "invalid_key")
    again = client.delete(f"/api/v1/keys/{created['id']}", headers=tenant.auth)
    assert again.status_code == 200 and again.json()["revoked_at"] == revoked.json()["revoked_at"]
    assert client.get("/api/v1/account", headers=tenant.auth).status_code == 200
    assert_error(client.delete("/api/v1/keys/key_" + "Z" * 20, headers=tenant.auth), 404, "not_found")


def test_usage_sent_with_a_revoked_key_is_refused_and_records_nothing(client, tenant):
    """POST /usage looks the key up inside its own write transaction: a revoked key must still get 401
    whichever way the request is shaped, and leave the account as it was."""
    created = client.post("/api/v1/keys", json={"name": "to revoke"}, headers=tenant.auth).json()
    own = {"Authorization": f"Bearer {created['secret']}"}
    event = {"id": "rk-1", "project_id": tenant.project_id, "kind": "compute", "duration_ms": 5_000}
    ok = client.post("/api/v1/usage", json={"events": [event]}, headers=own)
    assert ok.status_code == 200 and ok.json()["results"][0]["status"] == "accepted"
    used = ok.json()["account"]["allowance"]["used_ms"]
    client.delete(f"/api/v1/keys/{created['id']}", headers=tenant.auth)

    fresh = {**event, "id": "rk-2"}
    for body in ({"events": [fresh]},                                               # looked up in the transaction
                 {"events": [{**fresh, "account_id": tenant.account_id}]},          # looked up first
                 {"events": []}, {"nope": 1}):                                      # a bad body: the key still wins
        assert_error(client.post("/api/v1/usage", json=body, headers=own), 401, "invalid_key")
    assert_error(client.post("/api/v1/usage", content=b"{not json", headers=own), 401, "invalid_key")
    account = client.get("/api/v1/account", headers=tenant.auth).json()
    assert account["allowance"]["used_ms"] == used
    replay = client.post("/api/v1/usage", json={"events": [fresh]}, headers=tenant.auth).json()
    assert replay["results"][0]["status"] == "accepted"  # rk-2 was never recorded


def test_a_provider_key_is_stored_shown_masked_replaced_and_removed(client, tenant, keys_server):
    path = f"/api/v1/projects/{tenant.project_id}/provider-keys"
    put = client.put(f"{path}/anthropic", json={"key": ANTHROPIC}, headers=tenant.auth)
    assert put.status_code == 200, put.text
    assert set(put.json()) == {"provider", "masked", "updated_at"}
    assert put.json()["masked"] == "sk-ant-...Q1w2" and ANTHROPIC not in put.text
    client.put(f"{path}/openai", json={"key": OPENAI}, headers=tenant.auth)
    project = client.get(f"/api/v1/projects/{tenant.project_id}", headers=tenant.auth)
    assert [(k["provider"], k["masked"]) for k in project.json()["provider_keys"]] == [
        ("anthropic", "sk-ant-...Q1w2"), ("openai", "sk-...E3r4")]
    assert ANTHROPIC not in project.text and OPENAI not in project.text

    replaced = client.put(f"{path}/openai", json={"key": OPENAI[:-4] + "Zz99"}, headers=tenant.auth)
    assert replaced.json()["masked"] == "sk-...Zz99"
    billing = keys_server.billing()
    try:
        assert open_provider_key(billing, tenant.account_id, tenant.project_id, "openai") == OPENAI[:-4] + "Zz99"
    finally:
        billing.engine.dispose()

    removed = client.delete(f"{path}/anthropic", headers=tenant.auth)
    assert removed.status_code == 204
    assert_error(client.delete(f"{path}/anthropic", headers=tenant.auth), 404, "not_found")
    remaining = client.get(f"/api/v1/projects/{tenant.project_id}", headers=tenant.auth).json()["provider_keys"]
    assert [k["provider"] for k in remaining] == ["openai"]


def test_an_unknown_provider_or_a_foreign_looking_key_is_422_naming_the_field(client, tenant):
    path = f"/api/v1/projects/{tenant.project_id}/provider-keys"
    error = assert_error(client.put(f"{path}/mistral", json={"key": OPENAI}, headers=tenant.auth),
                         422, "unknown_provider")
    assert error["message"].startswith("provider:")
    assert_error(client.delete(f"{path}/mistral", headers=tenant.auth), 422, "unknown_provider")
    error = assert_error(client.put(f"{path}/openai", json={"key": ANTHROPIC}, headers=tenant.auth),
                         422, "invalid_provider_key")
    assert error["message"].startswith("key:") and ANTHROPIC not in error["message"]
    error = assert_error(client.put(f"{path}/openai", json={"secret": OPENAI}, headers=tenant.auth), 422)
    assert error["message"].startswith(("key:", "secret:")) and OPENAI not in error["message"]
    assert client.get(f"/api/v1/projects/{tenant.project_id}", headers=tenant.auth).json()["provider_keys"] == []
