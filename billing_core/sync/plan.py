"""The pure heart of the edge sync: item names, value encoding, what to write and delete, and backoff.

Everything here is plain data in, plain data out (standard library only), so the rules are tested with
dicts; billing_core/sync/deliver.py is the shell that reads both sides and applies a plan.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Mapping, Sequence, TypeVar

# The kinds of item the edge is told about; an item name is "<kind>:<id>".
KEY, ACCOUNT, PROJECT = "key", "account", "project"
KINDS = (KEY, ACCOUNT, PROJECT)

# Fields that change every time a value is read (not when the thing changes): a reconciliation does not
# rewrite an item only because of them.
VOLATILE_FIELDS = frozenset({"as_of"})

T = TypeVar("T")


def key_item(key_hash: str) -> str:
    return f"{KEY}:{key_hash}"


def account_item(account_id: str) -> str:
    return f"{ACCOUNT}:{account_id}"


def project_item(project_id: str) -> str:
    return f"{PROJECT}:{project_id}"


def split_item(item: str) -> tuple[str, str]:
    """("key", "<hash>") for "key:<hash>"; ("", item) for a name that is not one of ours."""
    kind, sep, ident = item.partition(":")
    if not sep or kind not in KINDS or not ident:
        return "", item
    return kind, ident


def is_item(name: str) -> bool:
    return split_item(name)[0] != ""


def encode_value(value: Mapping) -> str:
    """The one text form of a value at every target: compact JSON with sorted keys."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def decode_value(text: str | bytes) -> dict | None:
    """A value read back from a target; None when it is not a JSON object (a corrupted entry)."""
    try:
        value = json.loads(text)
    except (ValueError, TypeError):
        return None
    return value if isinstance(value, dict) else None


UNREADABLE = "cannot open"  # how the reason of an Unreadable item begins (counted by the health report)


@dataclass(frozen=True)
class Unreadable:
    """A desired value that cannot be made here: a sealed secret no key of this keyring opens. The target
    keeps what it holds, and the item counts as refused (retried, then parked) until a keyring opens it."""

    reason: str


@dataclass(frozen=True)
class SyncPlan:
    """What to write (item -> value) and what to delete at one target, and what cannot be read now (item ->
    reason). No item is in two of them."""

    upserts: Mapping[str, dict] = field(default_factory=dict)
    deletes: tuple[str, ...] = ()
    unreadable: Mapping[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.upserts) + len(self.deletes) + len(self.unreadable)

    @property
    def items(self) -> tuple[str, ...]:
        return (*self.upserts, *self.deletes, *self.unreadable)

    @property
    def writes(self) -> bool:
        return bool(self.upserts or self.deletes)


def same_value(a: Mapping | None, b: Mapping | None, ignore: frozenset[str] = VOLATILE_FIELDS) -> bool:
    if a is None or b is None:
        return a is b
    return {k: v for k, v in a.items() if k not in ignore} == {k: v for k, v in b.items() if k not in ignore}


def plan_sync(desired: Mapping[str, dict | Unreadable], current: Mapping[str, dict | None], *,
              ignore: frozenset[str] = VOLATILE_FIELDS) -> SyncPlan:
    """Reconciliation: write every desired item the target lacks or holds differently (a corrupted value
    reads as None), delete every item of ours the target holds but should not. Names that are not
    Tollgate items are left alone, and so are unreadable items (reported instead)."""
    unreadable = {item: value.reason for item, value in desired.items() if isinstance(value, Unreadable)}
    upserts = {item: value for item, value in desired.items()
               if item not in unreadable and not same_value(value, current.get(item), ignore)}
    deletes = tuple(sorted(item for item in current if item not in desired and is_item(item)))
    return SyncPlan(upserts, deletes, unreadable)


def plan_batch(items: Iterable[str], desired: Mapping[str, dict | Unreadable | None]) -> SyncPlan:
    """Delivery of a batch of outbox items: each distinct item once, with its current desired value, or
    deleted when it has none (revoked key, deleted project, unknown id); an unreadable one is reported."""
    upserts: dict[str, dict] = {}
    deletes: dict[str, None] = {}
    unreadable: dict[str, str] = {}
    for item in items:
        if item in upserts or item in deletes or item in unreadable:
            continue  # later rows of the same item coalesce: the value is read once, as it is now
        value = desired.get(item)
        if value is None:
            deletes[item] = None
        elif isinstance(value, Unreadable):
            unreadable[item] = value.reason
        else:
            upserts[item] = value
    return SyncPlan(upserts, tuple(deletes), unreadable)


def contiguous_end(cursor: int, rows: Sequence[tuple[int, float]], *, gap_grace_s: float) -> int:
    """How far a cursor may move over `rows` ((id, age in seconds), in id order, all above `cursor`).

    On PostgreSQL a sequence hands out ids before commit, so an id missing below a visible one may belong
    to a transaction still running: moving past it would lose that row. The cursor stops before such a
    hole unless the row right after it is older than `gap_grace_s` (the hole is then a rollback). Returns
    the id of the last row that may be delivered now (== cursor when none)."""
    end = cursor
    for row_id, age_s in rows:
        if row_id != end + 1 and age_s < gap_grace_s:
            break
        end = row_id
    return end


def backoff_s(attempt: int, *, base: float, cap: float, rand: Callable[[], float]) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(cap, base * 2^(attempt-1))]."""
    if attempt < 1:
        return 0.0
    ceiling = min(cap, base * (2 ** min(attempt - 1, 62)))
    return ceiling * rand()


def chunks(seq: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for i in range(0, len(seq), size):
        yield seq[i:i + size]
