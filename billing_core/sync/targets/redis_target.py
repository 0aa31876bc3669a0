"""Redis: one string per item under a prefix (`tollgate:edge:key:<sha256>` -> JSON), written in a
MULTI/EXEC pipeline so a batch lands whole or not at all."""

from __future__ import annotations

import redis

from ..plan import chunks, decode_value, encode_value, is_item
from .base import TargetError

PREFIX = "tollgate:edge:"


class RedisTarget:
    def __init__(self, url: str, *, prefix: str = PREFIX, name: str = "redis",
                 client: "redis.Redis | None" = None) -> None:
        self.name, self.prefix = name, prefix
        self._redis = client or redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=3,
                                                     health_check_interval=30)

    def apply(self, upserts: dict[str, dict], deletes: list[str]) -> dict[str, str]:
        try:
            with self._redis.pipeline(transaction=True) as pipe:
                pairs = list(upserts.items())
                for part in chunks(pairs, 1000):
                    pipe.mset({self.prefix + k: encode_value(v) for k, v in part})
                for part in chunks(deletes, 1000):
                    pipe.delete(*(self.prefix + k for k in part))
                pipe.execute()
        except redis.RedisError as exc:
            raise TargetError(f"redis: {type(exc).__name__}: {exc}") from exc
        return {}

    def dump(self) -> dict[str, dict | None]:
        out: dict[str, dict | None] = {}
        try:
            names = [n.decode() for n in self._redis.scan_iter(match=self._escaped_prefix() + "*", count=1000)]
            for part in chunks(names, 1000):
                for name, value in zip(part, self._redis.mget(part)):
                    item = name[len(self.prefix):]
                    if value is not None and is_item(item):
                        out[item] = decode_value(value)
        except redis.RedisError as exc:
            raise TargetError(f"redis: {type(exc).__name__}: {exc}") from exc
        return out

    def read(self, items: list[str]) -> dict[str, dict | None]:
        values = self._redis.mget([self.prefix + i for i in items]) if items else []
        return {i: decode_value(v) for i, v in zip(items, values) if v is not None}

    def _escaped_prefix(self) -> str:
        return "".join("\\" + c if c in "*?[]\\" else c for c in self.prefix)

    def close(self) -> None:
        self._redis.close()
