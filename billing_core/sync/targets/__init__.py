"""Edge targets, built from a SyncConfig."""

from __future__ import annotations

import httpx

from ..config import TARGET_KINDS, SyncConfig
from .base import Target, TargetError

__all__ = ["Target", "TargetError", "build_targets"]


def _require(value: str | None, setting: str, target: str) -> str:
    if not value:
        raise ValueError(f"{setting} must be set for the {target} sync target")
    return value


def build_targets(config: SyncConfig, *, http: httpx.Client | None = None) -> list[Target]:
    """One target per configured name, in order. Unknown names and missing settings are ValueErrors that
    name the setting. The Cloudflare targets share one httpx.Client (given, or made here)."""
    targets: list[Target] = []
    seen: set[str] = set()
    owned = http is None  # a client made here is closed with the targets; a given one is the caller's
    for name in config.targets:
        if name not in TARGET_KINDS:
            raise ValueError(f"TOLLGATE_SYNC_TARGETS: unknown sync target {name!r}; "
                             f"choose among {', '.join(TARGET_KINDS)}")
        if name in seen:
            raise ValueError(f"TOLLGATE_SYNC_TARGETS: {name!r} is named twice")
        seen.add(name)
        if name == "file":
            from .file import FileTarget

            targets.append(FileTarget(config.file_path))
        elif name == "redis":
            from .redis_target import RedisTarget

            targets.append(RedisTarget(_require(config.redis_url, "TOLLGATE_SYNC_REDIS_URL (or TOLLGATE_REDIS_URL)",
                                                "redis")))
        else:
            common = dict(base=config.cloudflare_api_base,
                          account_id=_require(config.cloudflare_account_id, "TOLLGATE_CLOUDFLARE_ACCOUNT_ID", name),
                          api_token=_require(config.cloudflare_api_token, "TOLLGATE_CLOUDFLARE_API_TOKEN", name))
            if name == "cloudflare_kv":
                from .cloudflare_kv import CloudflareKVTarget

                namespace = _require(config.kv_namespace_id, "TOLLGATE_CLOUDFLARE_KV_NAMESPACE_ID", name)
                targets.append(CloudflareKVTarget(http := _client(http), namespace_id=namespace, owns_http=owned,
                                                  **common))
            else:
                from .cloudflare_d1 import CloudflareD1Target

                database = _require(config.d1_database_id, "TOLLGATE_CLOUDFLARE_D1_DATABASE_ID", name)
                targets.append(CloudflareD1Target(http := _client(http), database_id=database, owns_http=owned,
                                                  **common))
    return targets


def _client(http: httpx.Client | None) -> httpx.Client:
    if http is not None:
        return http
    from .cloudflare import new_http_client

    return new_http_client()
