"""A dump of the database holds no account key, no HMAC key and no provider key in clear: only hashes,
ciphertexts and masked forms. It checks every secret this server's client has seen in this session."""

from __future__ import annotations

from billing_core.keys import hash_key

ANTHROPIC = "sk-ant-api03-" + "Dd9Ee8Ff" * 10 + "-M3n4"
OPENAI = "sk-proj-" + "Bb2Cc3Dd" * 8 + "P5q6"


def _exercise_every_secret(client, tenant) -> None:
    """Create, reveal, rotate, replace and revoke each kind of secret once, so the dump has them all."""
    project = client.post("/api/v1/projects", json={"name": "dumped"}, headers=tenant.auth).json()
    path = f"/api/v1/projects/{project['id']}"
    client.get(f"{path}/hmac-key", headers=tenant.auth)
    client.post(f"{path}/hmac-key/rotate", headers=tenant.auth)
    client.put(f"{path}/provider-keys/anthropic", json={"key": ANTHROPIC}, headers=tenant.auth)
    client.put(f"{path}/provider-keys/openai", json={"key": OPENAI}, headers=tenant.auth)
    client.put(f"{path}/provider-keys/openai", json={"key": OPENAI[:-4] + "r7s8"}, headers=tenant.auth)
    kept = client.post("/api/v1/keys", json={"name": "kept"}, headers=tenant.auth).json()
    revoked = client.post("/api/v1/keys", json={"name": "revoked"}, headers=tenant.auth).json()
    assert kept["secret"] and client.delete(f"/api/v1/keys/{revoked['id']}", headers=tenant.auth).status_code == 200


def test_a_database_dump_contains_no_secret_in_clear(client, keys_server, tenant):
    _exercise_every_secret(client, tenant)
    dump = keys_server.dump()
    seen = set(keys_server.seen_secrets)
    assert {s[:3] for s in seen} >= {"ak_", "hk_", "sk-"} and len(seen) >= 8
    for secret in seen:
        hidden = secret[12:-4]  # what no masked form shows
        assert secret not in dump and hidden not in dump, secret[:12]
    account_keys = [s for s in seen if s.startswith("ak_live_")]
    assert all(hash_key(s) in dump for s in account_keys)  # the dump is real: it holds what is kept
    assert "sk-ant-...M3n4" in dump and "v1.k1." in dump
