"""The statements of the ingest transaction (services/usage.py), built once with Core and run raw.

A batch reads in one round trip after its lock (on PostgreSQL both go out together in pipeline mode):
the account (by id, or by one of its keys, checked in the same statement), then its open pools, live
projects and the batch's events already recorded, as one UNION. Why each shape: docs/benchmarks.md.
"""

from __future__ import annotations

import json
from operator import itemgetter
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace

from sqlalchemy import (BigInteger, Boolean, String, bindparam, cast, func, insert, literal, literal_column, null,
                        select, true, union_all, update)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection

from ..db.models import Account, AccountKey, LedgerEntry, Pool, Project, UsageEvent
from ..db.operations import OutboxRow
from ..db.raw import BulkInsert, RawStatement, Sent
from ..errors import InvalidKey, NotFound
from ..key_limits import refuse_if_expired
from ..key_limits import require as require_scope
from .journal import LEDGER_COLUMNS
from .auth import TOUCH_KEY, KeyRef, key_accepted, touch_due
from .usage_events import Charged, EventResult

_accounts, _pools, _projects = Account.__table__, Pool.__table__, Project.__table__
_events, _ledger, _keys = UsageEvent.__table__, LedgerEntry.__table__, AccountKey.__table__

_by_id = select(_accounts).where(_accounts.c.id == bindparam("account_id"))
_SELECT_ACCOUNT, _LOCK_ACCOUNT = RawStatement(_by_id), RawStatement(_by_id.with_for_update())
# The key and its account in one statement (and, on PostgreSQL, the account's row lock).
_by_key = (select(_keys.c.id.label("key_id"), _keys.c.key_hash, _keys.c.revoked_at.label("key_revoked_at"),
                  _keys.c.last_used_at.label("key_last_used_at"), _keys.c.scopes.label("key_scopes"),
                  _keys.c.expires_at.label("key_expires_at"), *_accounts.c)
           .join_from(_keys, _accounts, _keys.c.account_id == _accounts.c.id)
           .where(_keys.c.key_hash == bindparam("digest")))
_SELECT_BY_KEY, _LOCK_BY_KEY = RawStatement(_by_key), RawStatement(_by_key.with_for_update(of=_accounts))
# Where the reads name the account: by its id, or (sent with the lock, before the id is known) by the key.
_ACCOUNT_BY_ID = bindparam("account_id")
_ACCOUNT_BY_KEY = select(_keys.c.account_id).where(_keys.c.key_hash == bindparam("digest")).scalar_subquery()


def _open_pools(account):
    """Every pool the expiry job has not closed (the live ones and any due to expire), earliest expiry first."""
    return (select(_pools.c.id, _pools.c.remaining_ms, _pools.c.expires_at, _pools.c.purchased_at)
            .where(_pools.c.account_id == account, _pools.c.expired_at.is_(None))
            .order_by(_pools.c.expires_at, _pools.c.purchased_at))


_OPEN_POOLS = RawStatement(_open_pools(_ACCOUNT_BY_ID))
_EXISTING_COLUMNS = (_events.c.event_id, _events.c.body_hash, _events.c.allowance_ms, _events.c.pool_ms,
                     _events.c.credit_micros, _events.c.overage_micros, _events.c.debt_micros, _events.c.late)
_EXISTING_IN = select(*_EXISTING_COLUMNS).where(_events.c.account_id == bindparam("account_id"),
                                                _events.c.event_id.in_(bindparam("ids", expanding=True)))


def _existing_json(account):
    """SQLite: the ids as one JSON array parameter (json_each), not 1000 bound parameters to expand each time."""
    ids = func.json_each(bindparam("ids_json")).table_valued("value")
    return select(*_EXISTING_COLUMNS).where(_events.c.account_id == account, _events.c.event_id.in_(select(ids.c.value)))


def _existing_probes(account):
    """PostgreSQL: the ids as one array parameter, each looked up on its own through the unique index
    (account_id, event_id): a LATERAL probe with LIMIT 1 is planned as a nested loop of point lookups.
    (`event_id = ANY(:ids)` lets the planner pick a scan of every event of the account instead when its
    statistics are stale, as for an account that grew since the last ANALYZE: measured 280 us of
    PostgreSQL CPU per event on a fresh table, against about 2 us for the probes.)"""
    ids = func.unnest(bindparam("ids", type_=ARRAY(String))).table_valued("id").render_derived(name="i")
    probe = (select(*_EXISTING_COLUMNS)
             .where(_events.c.account_id == account, _events.c.event_id == ids.c.id)
             .limit(literal_column("1")).lateral("e"))
    return select(*probe.c).select_from(ids.join(probe, true()))


def _nulls(*types):
    # Typed in SQL too: PostgreSQL types a union's column from its first two parts, and NULL with NULL is text.
    return [cast(null(), t) for t in types]


def _reads(account, existing) -> RawStatement:
    """The open pools (part 0, earliest expiry first), the live projects' ids (part 1) and the batch's events
    already recorded (part 2: id, allowance, -, -, body hash, pool, credit, overage, debt, late). The first
    part's columns give every column its type (the other parts' NULLs take it)."""
    pools, found = _open_pools(account), existing(account).subquery("found")
    return RawStatement(union_all(
        select(literal(0).label("part"), *pools.selected_columns,
               *_nulls(String, BigInteger, BigInteger, BigInteger, BigInteger, Boolean)).where(*pools.whereclause.clauses),
        select(literal(1), _projects.c.id, *[null()] * 9).where(_projects.c.account_id == account,
                                                                 _projects.c.deleted_at.is_(None)),
        select(literal(2), found.c.event_id, found.c.allowance_ms, null(), null(), found.c.body_hash,
               found.c.pool_ms, found.c.credit_micros, found.c.overage_micros, found.c.debt_micros, found.c.late),
    ).order_by("part", "expires_at", "purchased_at"))


_READS = {(dialect, by_key): _reads(_ACCOUNT_BY_KEY if by_key else _ACCOUNT_BY_ID, existing)
          for dialect, existing in (("sqlite", _existing_json), ("postgresql", _existing_probes))
          for by_key in (False, True)}

UPDATE_POOL = RawStatement(update(_pools).where(_pools.c.id == bindparam("pid")).values(remaining_ms=bindparam("rem")))
_update_account = (update(_accounts).where(_accounts.c.id == bindparam("account_id"))
                   .values(used_ms=bindparam("v_used"), credit_balance_micros=bindparam("v_credit"),
                           overage_micros=bindparam("v_overage"), status=bindparam("v_status")))
UPDATE_ACCOUNT = RawStatement(_update_account)
# The batch's outbox row for the edge sync (docs/edge-sync.md), written late in the transaction. On
# PostgreSQL it rides on the account UPDATE as a data-modifying CTE: one statement less per batch.
UPDATE_ACCOUNT_NOTED = RawStatement(_update_account.add_cte(
    insert(OutboxRow.__table__).values(item=bindparam("o_item"), created_at=bindparam("o_at")).cte("noted")))
BALANCE_FIELDS = ("used_ms", "credit_balance_micros", "overage_micros", "status")

EVENT_COLUMNS = ("account_id", "event_id", "body_hash", "project_id", "kind", "occurred_at", "recorded_at",
                 "period_start", "duration_ms", "model", "provider", "input_tokens", "output_tokens", "key_source",
                 "agent", "run_id", "allowance_ms", "pool_ms", "credit_micros", "overage_micros", "debt_micros",
                 "list_cost_micros", "late")
INSERT_EVENTS = BulkInsert(_events, EVENT_COLUMNS)
INSERT_LEDGER = BulkInsert(_ledger, LEDGER_COLUMNS)  # a Journal's entries
INSERT_OUTBOX = BulkInsert(OutboxRow.__table__, ("item", "created_at"))  # what sync.outbox.note_changed writes
_INSERTS: dict[tuple, BulkInsert] = {}


def insert_dicts(conn: Connection, table, rows: list[dict]) -> None:
    """Rows that share their keys (the journal's ledger entries, its activities), in one bulk insert."""
    if rows:
        columns = tuple(rows[0])
        bulk = _INSERTS.get((table.name, columns))
        if bulk is None:
            bulk = _INSERTS.setdefault((table.name, columns), BulkInsert(table, columns))
        bulk.execute(conn, list(map(itemgetter(*columns), rows)) if len(columns) > 1 else [(r[columns[0]],) for r in rows])


@dataclass
class LivePool:
    id: str
    remaining_ms: int
    expires_at: datetime
    purchased_at: datetime


def load_account(conn: Connection, account_id: str, *, lock: bool):
    """The account's columns as plain attributes (what balances_of, refresh_status and account_view read);
    with `lock`, its row is locked for the transaction on PostgreSQL (SQLite holds the database lock)."""
    stmt = _LOCK_ACCOUNT if lock and conn.dialect.name != "sqlite" else _SELECT_ACCOUNT
    row = stmt.first(conn, {"account_id": account_id})
    return None if row is None else SimpleNamespace(**row)


def open_pools(conn: Connection, account_id: str) -> list[LivePool]:
    """Pools not yet closed by the expiry job, earliest expiry first (ties: oldest purchase)."""
    return [LivePool(*row) for row in _OPEN_POOLS.rows(conn, {"account_id": account_id})]


@dataclass
class BatchStart:
    account: SimpleNamespace
    pools: list[LivePool]
    projects: set[str]
    existing: dict[str, tuple[str, EventResult]]  # event id -> (body hash, its result as a duplicate)


def lock_and_read(conn: Connection, target: str | KeyRef, ids: list[str], now: datetime) -> BatchStart:
    """Lock the account (by id, or by a key checked here: InvalidKey when unknown, revoked or expired,
    ScopeMissing without the KeyRef's scope, its last use noted at most once a minute as
    authenticate_account_key does) and read what the batch needs."""
    dialect, by_key = conn.dialect.name, not isinstance(target, str)
    params = {"digest": target.digest} if by_key else {"account_id": target}
    lock = (_SELECT_BY_KEY if dialect == "sqlite" else _LOCK_BY_KEY) if by_key else (
        _SELECT_ACCOUNT if dialect == "sqlite" else _LOCK_ACCOUNT)
    locked = lock.send(conn, params)
    late_lookup: list[str] = []
    if dialect == "postgresql":
        read_params = {**params, "ids": ids}
    elif not any("\x00" in i for i in ids):  # (SQLite's JSON text stops at a NUL)
        read_params = {**params, "ids_json": json.dumps(ids)}
    else:
        read_params, late_lookup = {**params, "ids_json": "[]"}, ids
    reads: Sent = _READS[dialect, by_key].send(conn, read_params)
    # Both answers are read before anything is checked, so no statement is left unfinished (Sent.rows).
    try:
        row, read_rows = locked.first(), reads.rows()
    finally:
        reads.cursor.close()
    if row is None:
        if by_key:
            raise InvalidKey("The key is malformed, unknown or revoked.")
        raise NotFound("No such account.")
    if by_key:
        if not key_accepted(row.pop("key_hash"), row.pop("key_revoked_at"), target.digest):
            raise InvalidKey("The key is malformed, unknown or revoked.")
        key_id, last_used_at = row.pop("key_id"), row.pop("key_last_used_at")
        refuse_if_expired(row.pop("key_expires_at"), now)  # KeyExpired is an InvalidKey: nothing recorded
        require_scope(row.pop("key_scopes"), target.scope)
        if touch_due(last_used_at, now):
            TOUCH_KEY.execute(conn, {"key_id": key_id, "at": now})
    start = BatchStart(SimpleNamespace(**row), [], set(), {})
    for part, pid, n1, expires_at, purchased_at, body_hash, p, c, o, d, late in read_rows:
        if part == 0:
            start.pools.append(LivePool(pid, n1, expires_at, purchased_at))
        elif part == 1:
            start.projects.add(pid)
        else:
            start.existing[pid] = (body_hash, EventResult(pid, "duplicate", Charged(n1, p, c, o, d), late))
    for i in range(0, len(late_lookup), 500):
        for eid, body_hash, a, p, c, o, d, late in conn.execute(
                _EXISTING_IN, {"account_id": start.account.id, "ids": late_lookup[i:i + 500]}):
            start.existing[eid] = (body_hash, EventResult(eid, "duplicate", Charged(a, p, c, o, d), late))
    return start
