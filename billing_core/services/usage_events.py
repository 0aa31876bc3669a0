"""A usage event as reported, what became of it, and the checks that need no database: its validity and
the fingerprint of its body that tells a replay from a conflicting reuse of its id."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

import orjson

from ..drawdown import Charge
from ..plans import Catalog
from ..pricing import UnknownModel, compute_cost_micros, token_cost
from .views import AccountView

MAX_BATCH = 1000
MAX_DURATION_MS = 31 * 24 * 3_600_000  # one event reports at most a month of compute
MAX_TOKENS = 10**10


@dataclass(frozen=True)
class UsageEventIn:
    """One usage event as reported; already of the right types (the HTTP layer checks those)."""

    id: str
    project_id: str
    kind: str  # compute | tokens
    timestamp: datetime | None = None
    duration_ms: int = 0
    model: str | None = None
    provider: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    key_source: str = "platform"
    agent: str | None = None
    run_id: str | None = None

    def body_hash(self) -> str:
        """A fingerprint of the body as sent, so a replay can be told from a conflicting reuse of the id."""
        # The same JSON as json.dumps(asdict(self), sort_keys=True, separators=(",", ":")) with the
        # timestamp in ISO form (stored hashes depend on it), without asdict's deep copies.
        body = {"id": self.id, "project_id": self.project_id, "kind": self.kind,
                "timestamp": self.timestamp.isoformat() if self.timestamp else None,
                "duration_ms": self.duration_ms, "model": self.model, "provider": self.provider,
                "input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
                "key_source": self.key_source, "agent": self.agent, "run_id": self.run_id}
        return hashlib.sha256(_canonical_json(body)).hexdigest()


@dataclass(frozen=True)
class Charged:
    allowance_ms: int = 0
    pool_ms: int = 0
    credit_micros: int = 0
    overage_micros: int = 0
    debt_micros: int = 0

    @classmethod
    def of(cls, charge: Charge) -> "Charged":
        return cls(charge.allowance_ms, charge.pool_ms, charge.credit_micros, charge.overage_micros,
                   charge.debt_micros)


@dataclass(frozen=True)
class EventResult:
    id: str
    status: str  # accepted | duplicate | rejected
    charged: Charged = field(default_factory=Charged)
    late: bool = False
    error_code: str | None = None
    error_message: str | None = None


@dataclass(frozen=True)
class BatchResult:
    results: list[EventResult]
    account: AccountView


def _reject(event_id: str, code: str, message: str) -> EventResult:
    return EventResult(id=event_id, status="rejected", error_code=code, error_message=message)


def invalid_reason(event: UsageEventIn) -> str | None:
    """Why an event of the right types is still not a usage fact, or None."""
    if not 1 <= len(event.id) <= 128:
        return "id must be 1 to 128 characters"
    if event.kind == "compute":
        if not 0 <= event.duration_ms <= MAX_DURATION_MS:
            return f"duration_ms must be between 0 and {MAX_DURATION_MS}"
    elif event.kind == "tokens":
        if not event.model:
            return "a tokens event needs a model"
        if not (0 <= event.input_tokens <= MAX_TOKENS and 0 <= event.output_tokens <= MAX_TOKENS):
            return f"token counts must be between 0 and {MAX_TOKENS}"
        if event.key_source not in ("platform", "byok"):
            return "key_source must be platform or byok"
    else:
        return "kind must be compute or tokens"
    return None


class Prepared(NamedTuple):
    """What can be known of an event before its account's lock is taken (it depends on the event and the
    catalog only), so that one batch is prepared while another holds the lock."""

    body_hash: str
    invalid: str | None  # invalid_reason
    list_cost: int  # the price at list: compute time at the catalog rate, tokens at the price table
    charged: int | None  # tokens: what credit pays (0 on BYOK); None for compute (drawn as time) or unknown model
    unknown_model: bool


def prepare(catalog: Catalog, event: UsageEventIn) -> Prepared:
    body_hash, reason = event.body_hash(), invalid_reason(event)
    if reason:
        return Prepared(body_hash, reason, 0, None, False)
    if event.kind == "compute":
        return Prepared(body_hash, None, compute_cost_micros(event.duration_ms, catalog.compute_rate_micros_per_second),
                        None, False)
    try:
        cost = token_cost(catalog, model=event.model, input_tokens=event.input_tokens,
                          output_tokens=event.output_tokens, key_source=event.key_source)
    except UnknownModel:
        return Prepared(body_hash, None, 0, None, True)
    return Prepared(body_hash, None, cost.list_micros, cost.charged_micros, False)


_HASH_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"))


def _canonical_json(body: dict) -> bytes:
    """json.dumps(body, sort_keys=True, separators=(",", ":")).encode(), which stored hashes depend on.

    orjson writes exactly those bytes when what it wrote is ASCII without DEL (json escapes DEL and
    everything non-ASCII as \\uXXXX, orjson writes them as they are), at a tenth of the cost; anything
    else (and an integer past 64 bits, which orjson refuses) takes the json module.
    """
    try:
        out = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:
        return _HASH_JSON.encode(body).encode()
    if out.isascii() and b"\x7f" not in out:
        return out
    return _HASH_JSON.encode(body).encode()


