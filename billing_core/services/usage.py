"""Recording usage: one transaction per account per batch, idempotent per (account, event id).

The batch runs on one Core connection with statements built once (see docs/benchmarks.md for why):
lock the account row (BEGIN IMMEDIATE on SQLite, SELECT ... FOR UPDATE on PostgreSQL), read its pools,
the ids already recorded and its projects, walk the batch in order over the balances, then write the
events, pools, rollups, account, ledger and activity with one statement each. Due period work (a period
to close, a pool to expire) is done first, through the ORM, by bring_up_to_date in the same transaction.
"""

from __future__ import annotations

import json
from operator import itemgetter
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace

from sqlalchemy import (String, bindparam, func, insert, literal, literal_column, null, select, true, union_all,
                        update)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlmodel import Session

from .. import notify
from ..db.engine import write_connection
from ..db.models import Account, Activity, LedgerEntry, Pool, Project, UsageEvent
from ..db.operations import OutboxRow
from ..drawdown import Balances, Charge, draw_compute, draw_money
from ..errors import NotFound
from ..periods import classify_timestamp
from ..pricing import UnknownModel, compute_cost_micros, token_cost
from ..sync.outbox import account_item
from .context import Billing
from .journal import Journal
from .periods import bring_up_to_date
from .rollups import RollupBatch
from .state import balances_of, refresh_status
from .views import account_view

# The event types and the checks that need no database live in usage_events; importers keep using this module.
from .usage_events import (MAX_BATCH, MAX_DURATION_MS, MAX_TOKENS, BatchResult, Charged,  # noqa: F401
                           EventResult, UsageEventIn, _reject, invalid_reason)


@notify.after_commit
def record_usage(billing: Billing, account_id: str, events: list[UsageEventIn], *, now: datetime) -> BatchResult:
    """Apply a batch for one account; a unique-constraint race is retried once and then reads as duplicates."""
    try:
        return _record_once(billing, account_id, events, now)
    except IntegrityError:
        return _record_once(billing, account_id, events, now)


_accounts, _pools, _projects = Account.__table__, Pool.__table__, Project.__table__
_events, _ledger = UsageEvent.__table__, LedgerEntry.__table__

_SELECT_ACCOUNT = select(_accounts).where(_accounts.c.id == bindparam("account_id"))
_LOCK_ACCOUNT = _SELECT_ACCOUNT.with_for_update()
# Every pool the expiry job has not closed: the live ones (time left) and any that are due to expire.
_OPEN_POOLS = (select(_pools.c.id, _pools.c.remaining_ms, _pools.c.expires_at, _pools.c.purchased_at)
               .where(_pools.c.account_id == bindparam("account_id"), _pools.c.expired_at.is_(None))
               .order_by(_pools.c.expires_at, _pools.c.purchased_at))
_LIVE_PROJECTS = select(_projects.c.id).where(_projects.c.account_id == bindparam("account_id"),
                                               _projects.c.deleted_at.is_(None))
# Both in one round trip: the open pools (in _OPEN_POOLS order), then the live projects' ids.
_POOLS_AND_PROJECTS = union_all(
    select(literal(0).label("part"), *_OPEN_POOLS.selected_columns).where(*_OPEN_POOLS.whereclause.clauses),
    select(literal(1), _projects.c.id, null(), null(), null()).where(*_LIVE_PROJECTS.whereclause.clauses),
).order_by("part", "expires_at", "purchased_at")
_EXISTING_COLUMNS = (_events.c.event_id, _events.c.body_hash, _events.c.allowance_ms, _events.c.pool_ms,
                     _events.c.credit_micros, _events.c.overage_micros, _events.c.debt_micros, _events.c.late)
_EXISTING_IN = select(*_EXISTING_COLUMNS).where(_events.c.account_id == bindparam("account_id"),
                                                _events.c.event_id.in_(bindparam("ids", expanding=True)))
# SQLite: the ids as one JSON array parameter (json_each), not 1000 bound parameters to expand each time.
_ids_json = func.json_each(bindparam("ids_json")).table_valued("value")
_EXISTING_JSON = select(*_EXISTING_COLUMNS).where(_events.c.account_id == bindparam("account_id"),
                                                  _events.c.event_id.in_(select(_ids_json.c.value)))
# PostgreSQL: the ids as one array parameter, each looked up on its own through the unique index
# (account_id, event_id): a LATERAL probe with LIMIT 1 is planned as a nested loop of point lookups.
# (`event_id = ANY(:ids)` lets the planner pick a scan of every event of the account instead when its
# statistics are stale, as for an account that grew since the last ANALYZE: measured 280 us of
# PostgreSQL CPU per event on a fresh table, against about 2 us for the probes.)
_ids_array = func.unnest(bindparam("ids", type_=ARRAY(String))).table_valued("id").render_derived(name="i")
_id_probe = (select(*_EXISTING_COLUMNS)
             .where(_events.c.account_id == bindparam("account_id"), _events.c.event_id == _ids_array.c.id)
             .limit(literal_column("1")).lateral("e"))
_EXISTING_ANY = select(*_id_probe.c).select_from(_ids_array.join(_id_probe, true()))
_UPDATE_POOL = update(_pools).where(_pools.c.id == bindparam("pid")).values(remaining_ms=bindparam("rem"))
_UPDATE_ACCOUNT = (update(_accounts).where(_accounts.c.id == bindparam("account_id"))
                   .values(used_ms=bindparam("v_used"), credit_balance_micros=bindparam("v_credit"),
                           overage_micros=bindparam("v_overage"), status=bindparam("v_status")))
# The batch's outbox row for the edge sync (docs/edge-sync.md), written late in the transaction. On
# PostgreSQL it rides on the account UPDATE as a data-modifying CTE: one round trip less per batch.
_UPDATE_ACCOUNT_NOTED = _UPDATE_ACCOUNT.add_cte(
    insert(OutboxRow.__table__).values(item=bindparam("o_item"), created_at=bindparam("o_at")).cte("noted"))
_BALANCE_FIELDS = ("used_ms", "credit_balance_micros", "overage_micros", "status")

EVENT_COLUMNS = ("account_id", "event_id", "body_hash", "project_id", "kind", "occurred_at", "recorded_at",
                 "period_start", "duration_ms", "model", "provider", "input_tokens", "output_tokens", "key_source",
                 "agent", "run_id", "allowance_ms", "pool_ms", "credit_micros", "overage_micros", "debt_micros",
                 "list_cost_micros", "late")


class _BulkInsert:
    """INSERT of many rows with one driver executemany (or COPY on PostgreSQL).

    Values go through each column's own SQLAlchemy bind processor (so what is stored is exactly what a
    Core or ORM insert stores), once per distinct value of a column: a batch repeats the same few
    timestamps. Driver errors come back as SQLAlchemy's (IntegrityError...).
    """

    def __init__(self, table, columns: tuple[str, ...]) -> None:
        self.table, self.columns = table, columns
        self._by_dialect: dict[str, tuple[str, list]] = {}

    def _compiled(self, dialect) -> tuple[str, list]:
        found = self._by_dialect.get(dialect.name)
        if found is None:
            quote = dialect.identifier_preparer.quote
            mark = "?" if dialect.paramstyle == "qmark" else "%s"
            sql = (f"INSERT INTO {quote(self.table.name)} ({', '.join(quote(c) for c in self.columns)}) "
                   f"VALUES ({', '.join(mark for _ in self.columns)})")
            processors = [self.table.c[c].type._cached_bind_processor(dialect) for c in self.columns]
            found = self._by_dialect[dialect.name] = (sql, processors)
        return found

    def execute(self, conn: Connection, rows: list[tuple]) -> None:
        if not rows:
            return
        sql, processors = self._compiled(conn.dialect)
        if any(processors):
            columns = list(zip(*rows))
            for i, process in enumerate(processors):
                if process is not None:
                    converted = {value: process(value) for value in set(columns[i])}
                    columns[i] = map(converted.__getitem__, columns[i])
            rows = list(zip(*columns))
        if conn.dialect.name == "postgresql" and len(rows) >= _COPY_FROM_ROWS:
            self._copy(conn, rows)
        else:  # one row: a plain execute (psycopg sets up a pipeline for any executemany)
            conn.exec_driver_sql(sql, rows[0] if len(rows) == 1 else rows)

    def _copy(self, conn: Connection, rows: list[tuple]) -> None:
        """PostgreSQL: COPY ... FROM STDIN in the same transaction (a third of executemany's CPU for a
        1000-event batch); a driver error comes back as SQLAlchemy's, as from exec_driver_sql."""
        quote = conn.dialect.identifier_preparer.quote
        sql = f"COPY {quote(self.table.name)} ({', '.join(quote(c) for c in self.columns)}) FROM STDIN"
        driver = conn.connection.driver_connection
        try:
            with driver.cursor() as cursor, cursor.copy(sql) as copy:
                for row in rows:
                    copy.write_row(row)
        except conn.dialect.loaded_dbapi.Error as exc:
            raise DBAPIError.instance(sql, None, exc, conn.dialect.loaded_dbapi.Error) from exc


_COPY_FROM_ROWS = 20  # below this, one executemany costs less than setting up a COPY
_INSERT_EVENTS = _BulkInsert(_events, EVENT_COLUMNS)
_INSERT_OUTBOX = _BulkInsert(OutboxRow.__table__, ("item", "created_at"))  # what sync.outbox.note_changed writes
_INSERT_LEDGER: dict[tuple[str, ...], _BulkInsert] = {}  # by the journal's entry keys


@dataclass
class _LivePool:
    id: str
    remaining_ms: int
    expires_at: datetime
    purchased_at: datetime


def load_account(conn: Connection, account_id: str, *, lock: bool):
    """The account's columns as plain attributes (what balances_of, refresh_status and account_view read);
    with `lock`, its row is locked for the transaction on PostgreSQL (SQLite holds the database lock)."""
    stmt = _LOCK_ACCOUNT if lock and conn.dialect.name != "sqlite" else _SELECT_ACCOUNT
    row = conn.execute(stmt, {"account_id": account_id}).first()
    return None if row is None else SimpleNamespace(**row._mapping)


def open_pools(conn: Connection, account_id: str) -> list[_LivePool]:
    """Pools not yet closed by the expiry job, earliest expiry first (ties: oldest purchase)."""
    return [_LivePool(*row) for row in conn.execute(_OPEN_POOLS, {"account_id": account_id})]


def _record_once(billing: Billing, account_id: str, events: list[UsageEventIn], now: datetime) -> BatchResult:
    with write_connection(billing.engine) as conn:
        account = load_account(conn, account_id, lock=True)
        if account is None:
            raise NotFound("No such account.")
        journal = Journal(account_id, now)
        pools, projects = [], set()
        for part, pool_or_project_id, remaining_ms, expires_at, purchased_at in conn.execute(
                _POOLS_AND_PROJECTS, {"account_id": account_id}):
            if part == 0:
                pools.append(_LivePool(pool_or_project_id, remaining_ms, expires_at, purchased_at))
            else:
                projects.add(pool_or_project_id)
        brought_up = account.period_end <= now or any(p.expires_at <= now for p in pools)
        if brought_up:
            account, pools = _bring_up_to_date(billing, conn, account_id, now, journal)
        loaded = {f: getattr(account, f) for f in _BALANCE_FIELDS}
        live = [p for p in pools if p.remaining_ms > 0]
        applier = _BatchApplier(billing, conn, account, balances_of(account, live, now), journal, now)
        results = applier.apply(events, projects)
        applier.write()
        live = applier.pools_after(live)
        refresh_status(account, balances_of(account, live, now), journal)
        noted = bool(applier.rows) or brought_up  # the edge's copy of the balances changed: one outbox row
        if any(getattr(account, f) != loaded[f] for f in _BALANCE_FIELDS):
            params = {"account_id": account_id, "v_used": account.used_ms, "v_credit": account.credit_balance_micros,
                      "v_overage": account.overage_micros, "v_status": account.status}
            if noted and conn.dialect.name == "postgresql":
                conn.execute(_UPDATE_ACCOUNT_NOTED, {**params, "o_item": account_item(account_id), "o_at": now})
                noted = False
            else:
                conn.execute(_UPDATE_ACCOUNT, params)
        if noted:
            _INSERT_OUTBOX.execute(conn, [(account_item(account_id), now)])
        _flush_journal(conn, journal)
        return BatchResult(results, account_view(account, live))


def _bring_up_to_date(billing: Billing, conn: Connection, account_id: str, now: datetime, journal: Journal):
    """Close due periods and expire due pools (the ORM services), in this transaction; then re-read."""
    with Session(bind=conn, expire_on_commit=False, join_transaction_mode="rollback_only") as session:
        orm_account = session.get(Account, account_id)
        bring_up_to_date(session, billing.catalog, orm_account, now, journal)
        session.flush()
    return load_account(conn, account_id, lock=False), open_pools(conn, account_id)


def _flush_journal(conn: Connection, journal: Journal) -> None:
    """What Journal.flush does, with the ledger rows in one executemany."""
    if journal.entries:
        columns = tuple(journal.entries[0])
        insert = _INSERT_LEDGER.get(columns) or _INSERT_LEDGER.setdefault(columns, _BulkInsert(_ledger, columns))
        insert.execute(conn, list(map(itemgetter(*columns), journal.entries)))
    if journal.activities:
        conn.execute(Activity.__table__.insert(), journal.activities)
    journal.entries, journal.activities = [], []


class _BatchApplier:
    """Walks one batch in order over the account's balances, then writes everything in bulk."""

    def __init__(self, billing: Billing, conn: Connection, account, balances: Balances,
                 journal: Journal, now: datetime) -> None:
        self.catalog, self.conn, self.account, self.journal, self.now = (
            billing.catalog, conn, account, journal, now)
        self.balances = balances
        self.start_balances = balances
        self.rows: list[tuple] = []
        self.rollups = RollupBatch(account.id)
        self.seen: dict[str, tuple[str, EventResult]] = {}

    def _existing(self, events: list[UsageEventIn]) -> dict[str, tuple[str, EventResult]]:
        ids = list({e.id for e in events})
        found: dict[str, tuple[str, EventResult]] = {}
        account_id = self.account.id
        if self.conn.dialect.name == "postgresql":
            queries = [(_EXISTING_ANY, {"account_id": account_id, "ids": ids})]
        elif not any("\x00" in i for i in ids):  # (SQLite's JSON text stops at a NUL)
            queries = [(_EXISTING_JSON, {"account_id": account_id, "ids_json": json.dumps(ids)})]
        else:
            queries = [(_EXISTING_IN, {"account_id": account_id, "ids": ids[i:i + 500]})
                       for i in range(0, len(ids), 500)]
        for stmt, params in queries:
            for eid, body_hash, a, p, c, o, d, late in self.conn.execute(stmt, params):
                found[eid] = (body_hash, EventResult(eid, "duplicate", Charged(a, p, c, o, d), late))
        return found

    def apply(self, events: list[UsageEventIn], projects: set[str]) -> list[EventResult]:
        self.seen = self._existing(events)
        return [self._one(event, projects) for event in events]

    def _one(self, event: UsageEventIn, projects: set[str]) -> EventResult:
        body_hash = event.body_hash()
        if event.id in self.seen:
            original_hash, original = self.seen[event.id]
            if original_hash != body_hash:
                return _reject(event.id, "idempotency_conflict",
                               "This event id was already used with a different body.")
            return EventResult(event.id, "duplicate", original.charged, original.late)
        reason = invalid_reason(event)
        if reason:
            return _reject(event.id, "invalid_event", reason + ".")
        if event.project_id not in projects:
            return _reject(event.id, "unknown_project", "No such project in this account.")
        occurred = event.timestamp or self.now
        when = classify_timestamp(occurred, now=self.now, period_start=self.account.period_start)
        if when == "future":
            return _reject(event.id, "timestamp_in_future", "The timestamp is more than 5 minutes ahead.")
        if event.kind == "compute":
            list_cost = compute_cost_micros(event.duration_ms, self.catalog.compute_rate_micros_per_second)
            charge, self.balances = draw_compute(self.balances, event.duration_ms,
                                                 self.catalog.compute_rate_micros_per_second)
        else:
            try:
                cost = token_cost(self.catalog, model=event.model, input_tokens=event.input_tokens,
                                  output_tokens=event.output_tokens, key_source=event.key_source)
            except UnknownModel:
                return _reject(event.id, "unknown_model", f"Model {event.model!r} is not in the price table.")
            list_cost = cost.list_micros
            charge, self.balances = draw_money(self.balances, cost.charged_micros)
        result = EventResult(event.id, "accepted", Charged.of(charge), when == "late")
        self.seen[event.id] = (body_hash, result)
        self._journal(event, charge)
        self.rows.append(self._row(event, body_hash, occurred, charge, list_cost, result.late))
        self.rollups.add(event, occurred, charge.money_micros, list_cost)
        return result

    def _journal(self, event: UsageEventIn, charge: Charge) -> None:
        # Zero amounts are no entry (Journal.entry skips them too); testing here first saves the calls,
        # which add up at a thousand events a batch.
        b, period, ref, entry = self.balances, self.account.period_start, event.id, self.journal.entry
        if charge.allowance_ms:
            entry(book="allowance", kind="usage", amount=-charge.allowance_ms,
                  balance_after=b.allowance_remaining_ms, period_start=period, ref_type="event", ref_id=ref)
        if charge.pool_draws:
            remaining = {p.id: p.remaining_ms for p in b.pools}
            for pool_id, ms in charge.pool_draws:
                entry(book="pool", kind="usage", amount=-ms, balance_after=remaining[pool_id],
                      period_start=period, ref_type="event", ref_id=ref, pool_id=pool_id)
        if charge.credit_micros or charge.debt_micros:
            entry(book="credit", kind="usage", amount=-(charge.credit_micros + charge.debt_micros),
                  balance_after=b.credit_micros, period_start=period, ref_type="event", ref_id=ref)
        if charge.overage_micros:
            entry(book="overage", kind="usage", amount=charge.overage_micros,
                  balance_after=b.overage_micros, period_start=period, ref_type="event", ref_id=ref)

    def _row(self, event: UsageEventIn, body_hash: str, occurred: datetime, charge: Charge, list_cost: int,
             late: bool) -> tuple:
        """One usage_events row, in EVENT_COLUMNS order."""
        return (self.account.id, event.id, body_hash, event.project_id, event.kind, occurred, self.now,
                self.account.period_start, event.duration_ms, event.model, event.provider, event.input_tokens,
                event.output_tokens, event.key_source if event.kind == "tokens" else None, event.agent,
                event.run_id, charge.allowance_ms, charge.pool_ms, charge.credit_micros, charge.overage_micros,
                charge.debt_micros, list_cost, late)

    def write(self) -> None:
        if not self.rows:
            return
        _INSERT_EVENTS.execute(self.conn, self.rows)
        before = {p.id: p.remaining_ms for p in self.start_balances.pools}
        changed = [{"pid": p.id, "rem": p.remaining_ms} for p in self.balances.pools
                   if p.remaining_ms != before[p.id]]
        if changed:
            self.conn.execute(_UPDATE_POOL, changed)
        acc, b = self.account, self.balances
        acc.used_ms = acc.included_ms - b.allowance_remaining_ms
        acc.credit_balance_micros = b.credit_micros
        acc.overage_micros = b.overage_micros
        self.rollups.write(self.conn)

    def pools_after(self, live: list[_LivePool]) -> list[_LivePool]:
        """The live pools once the batch is written: those with time left, in the same order."""
        remaining = {p.id: p.remaining_ms for p in self.balances.pools}
        after = [_LivePool(p.id, remaining.get(p.id, p.remaining_ms), p.expires_at, p.purchased_at) for p in live]
        return [p for p in after if p.remaining_ms > 0]
