"""What a request could have changed in a tenant, read through the API, to compare before and after."""

from __future__ import annotations

from contextlib import contextmanager

import httpx


def _all_pages(client: httpx.Client, path: str, auth: dict) -> list[dict]:
    items, cursor = [], None
    while True:
        response = client.get(path, params={"limit": 500, **({"cursor": cursor} if cursor else {})}, headers=auth)
        assert response.status_code == 200, response.text
        body = response.json()
        items += body["data"]
        if not (cursor := body["next_cursor"]):
            return items


def snapshot(client: httpx.Client, tenant) -> dict:
    projects = _all_pages(client, "/api/v1/projects", tenant.auth)
    keys = [{k: v for k, v in key.items() if k != "last_used_at"}  # moves as the key is used; not a change
            for key in _all_pages(client, "/api/v1/keys", tenant.auth)]
    hmac_keys = {p["id"]: client.get(f"/api/v1/projects/{p['id']}/hmac-key", headers=tenant.auth).json()
                 for p in projects}
    account = client.get("/api/v1/account", headers=tenant.auth).json()
    return {"projects": projects, "keys": keys, "hmac": hmac_keys, "account": account}


@contextmanager
def unchanged(client: httpx.Client, *tenants):
    before = [snapshot(client, t) for t in tenants]
    yield
    assert [snapshot(client, t) for t in tenants] == before
