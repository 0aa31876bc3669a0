"""What the sync needs to know about its targets, as plain values (billing_core never reads settings)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

TARGET_KINDS = ("file", "redis", "cloudflare_kv", "cloudflare_d1")


@dataclass(frozen=True)
class SyncConfig:
    targets: tuple[str, ...]
    file_path: Path
    redis_url: str | None = None
    cloudflare_api_base: str = "https://api.cloudflare.com/client/v4"
    cloudflare_account_id: str | None = None
    cloudflare_api_token: str | None = None
    kv_namespace_id: str | None = None
    d1_database_id: str | None = None


def parse_target_names(text: str) -> tuple[str, ...]:
    """`"file, redis"` -> ("file", "redis"); an unknown or repeated name is a ValueError naming the setting."""
    names = tuple(n.strip() for n in (text or "").split(",") if n.strip())
    for name in names:
        if name not in TARGET_KINDS:
            raise ValueError(f"TOLLGATE_SYNC_TARGETS: unknown sync target {name!r}; "
                             f"choose among {', '.join(TARGET_KINDS)}")
    if len(set(names)) != len(names):
        raise ValueError(f"TOLLGATE_SYNC_TARGETS: a target is named twice in {text!r}")
    return names
