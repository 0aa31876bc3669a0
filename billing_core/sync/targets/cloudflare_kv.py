"""Cloudflare Workers KV through the v4 REST API: one KV pair per item, the item name as the KV key and
its JSON as the value (docs/edge-sync.md). A Worker reads them with `env.NAMESPACE.get(name, "json")`.

Endpoints (under /accounts/{account_id}/storage/kv/namespaces/{namespace_id}):
  PUT  /bulk          JSON array of {"key", "value"}, at most 10,000 per call  -> write
  POST /bulk/delete   JSON array of key names, at most 10,000 per call         -> delete
  GET  /keys          ?limit=1000&cursor=...                                    -> list (dump)
  POST /bulk/get      {"keys": [...at most 100], "type": "text"}               -> read (dump)
Both bulk calls answer `unsuccessful_keys` for pairs that should be retried: those are refused items.
"""

from __future__ import annotations

import httpx

from ..plan import chunks, decode_value, encode_value, is_item
from .cloudflare import CloudflareApi

BULK_MAX = 10_000
LIST_MAX = 1_000
GET_MAX = 100


class CloudflareKVTarget:
    def __init__(self, http: httpx.Client, *, base: str, account_id: str, api_token: str, namespace_id: str,
                 owns_http: bool = False, name: str = "cloudflare_kv") -> None:
        self.name, self.owns_http = name, owns_http
        self.api = CloudflareApi(http, base=base, account_id=account_id, api_token=api_token,
                                 what="cloudflare kv")
        self.ns = f"/storage/kv/namespaces/{namespace_id}"

    def apply(self, upserts: dict[str, dict], deletes: list[str]) -> dict[str, str]:
        refused: dict[str, str] = {}
        pairs = [{"key": k, "value": encode_value(v)} for k, v in upserts.items()]
        for part in chunks(pairs, BULK_MAX):
            result = self.api.result("PUT", self.ns + "/bulk", json=list(part))
            for key in _unsuccessful(result):
                refused[key] = "cloudflare kv: write not completed (unsuccessful_keys)"
        for part in chunks(list(deletes), BULK_MAX):
            result = self.api.result("POST", self.ns + "/bulk/delete", json=list(part))
            for key in _unsuccessful(result):
                refused[key] = "cloudflare kv: delete not completed (unsuccessful_keys)"
        return refused

    def dump(self) -> dict[str, dict | None]:
        names: list[str] = []
        cursor = None
        while True:
            params = {"limit": LIST_MAX}
            if cursor:
                params["cursor"] = cursor
            body = self.api.call("GET", self.ns + "/keys", params=params).json()
            names.extend(k["name"] for k in body.get("result") or [] if is_item(k.get("name", "")))
            cursor = (body.get("result_info") or {}).get("cursor")
            if not cursor:
                break
        out: dict[str, dict | None] = {}
        for part in chunks(names, GET_MAX):
            result = self.api.result("POST", self.ns + "/bulk/get", json={"keys": list(part), "type": "text"})
            for key, value in ((result or {}).get("values") or {}).items():
                if value is not None:
                    out[key] = decode_value(value) if isinstance(value, str) else None
        return out

    def close(self) -> None:
        if self.owns_http:
            self.api.http.close()


def _unsuccessful(result) -> list[str]:
    if isinstance(result, dict):
        return [k for k in result.get("unsuccessful_keys") or [] if isinstance(k, str)]
    return []
