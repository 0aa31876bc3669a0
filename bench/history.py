"""Usage history for the summary benchmark: three accounts with 100k, 1M and 5M events over the 89 days
before today.

    .venv/bin/python bench/history.py [sqlite] [postgresql] [--rebuild]

Kept in bench/out/ (SQLite file bench_history_sqlite.db, PostgreSQL schema bench_history_postgresql,
description in history-<db>.json) and reused while it matches HISTORY_VERSION; --rebuild starts over.

How it is made
  100k  through record_usage itself (in-process, 1000-event batches, timestamps spread over the last
        89 days), exactly as the API would record them. Then the method used for the bigger accounts is
        checked against it: the daily rollups that record_usage kept must equal the rollups computed by
        ROLLUP_SQL (one GROUP BY over usage_events). The benchmark stops if they differ.
  1M, 5M usage_events rows inserted with one INSERT ... SELECT (a recursive CTE on SQLite,
        generate_series on PostgreSQL) with the same shape (3 projects, 4 agents, 70% compute, 30% tokens
        over 3 models, 89 days), each paid from credit (credit_micros = list price, which is exact in
        integer micros for these durations and models), then their daily rollups by ROLLUP_SQL.
        body_hash of these rows is a fixed placeholder: they are history, never replayed.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime, timedelta, timezone

from sqlalchemy import text

from common import OUT, BenchAccount, Database, billing_for, create_account, database, parse_dbs

HISTORY_VERSION = 3
DAYS = 89
SIZES = {"100k": 100_000, "1M": 1_000_000, "5M": 5_000_000}
AGENTS = ("planner", "coder", "reviewer", "tester")
# (model, provider, input price, output price) in micros per token: exact integers, so no rounding.
MODELS = (("claude-sonnet-4", "anthropic", 3, 15), ("claude-haiku-4", "anthropic", 1, 5),
          ("claude-opus-4", "anthropic", 15, 75))
PLACEHOLDER_HASH = "0" * 64

# What record_usage adds to daily_rollups for each accepted event, as one GROUP BY (RollupBatch.add):
# UTC day, project, meter = kind, agent or '', model for tokens else ''; money = credit + overage + debt.
ROLLUP_SELECT = """
SELECT account_id, {day} AS day, project_id, kind AS meter, COALESCE(agent, '') AS agent,
       CASE WHEN kind = 'tokens' THEN COALESCE(model, '') ELSE '' END AS model,
       COUNT(*) AS events,
       SUM(CASE WHEN kind = 'compute' THEN duration_ms ELSE 0 END) AS compute_ms,
       SUM(CASE WHEN kind = 'tokens' THEN input_tokens ELSE 0 END) AS input_tokens,
       SUM(CASE WHEN kind = 'tokens' THEN output_tokens ELSE 0 END) AS output_tokens,
       SUM(credit_micros + overage_micros + debt_micros) AS cost_micros,
       SUM(list_cost_micros) AS list_cost_micros
FROM usage_events WHERE account_id = :account_id AND id > :after_id
GROUP BY account_id, {day}, project_id, kind, COALESCE(agent, ''),
         CASE WHEN kind = 'tokens' THEN COALESCE(model, '') ELSE '' END
"""
SUMS = ("events", "compute_ms", "input_tokens", "output_tokens", "cost_micros", "list_cost_micros")


def rollup_select(db: Database) -> str:
    return ROLLUP_SELECT.format(day="date(occurred_at)" if db.kind == "sqlite" else "CAST(occurred_at AS date)")


def shape(n: int) -> dict:
    """Event n of a history (the bulk SQL below computes the same)."""
    project = n % 3
    agent = AGENTS[(n // 3) % 4]
    day = 1 + n % DAYS  # days before today: all of it in the past
    second = (n * 7919) % 86_400
    if (n // 12) % 10 < 7:
        duration = 1000 + 10 * ((n * 7919) % 6000)  # a multiple of 10 ms: an exact number of micros
        return dict(project=project, agent=agent, day=day, second=second, kind="compute", duration_ms=duration)
    model, provider, _, _ = MODELS[(n // 120) % 3]
    return dict(project=project, agent=agent, day=day, second=second, kind="tokens", model=model,
                provider=provider, input_tokens=100 + (n * 31) % 5000, output_tokens=10 + (n * 17) % 800)


def through_record_usage(db: Database, acc: BenchAccount, projects: list[str], count: int, today) -> None:
    from billing_core.services.usage import UsageEventIn, record_usage

    billing = billing_for(db)
    now = datetime.now(timezone.utc)
    midnight = datetime(today.year, today.month, today.day, tzinfo=timezone.utc)
    for start in range(0, count, 1000):
        events = []
        for n in range(start, min(count, start + 1000)):
            s = shape(n)
            ts = midnight - timedelta(days=s["day"]) + timedelta(seconds=s["second"])
            common = dict(id=f"r-{n:010d}", project_id=projects[s["project"]], kind=s["kind"], timestamp=ts,
                          agent=s["agent"], run_id=f"run-{n // 50}")
            if s["kind"] == "compute":
                events.append(UsageEventIn(duration_ms=s["duration_ms"], **common))
            else:
                events.append(UsageEventIn(model=s["model"], provider=s["provider"], input_tokens=s["input_tokens"],
                                           output_tokens=s["output_tokens"], **common))
        result = record_usage(billing, acc.account_id, events, now=now)
        bad = [r for r in result.results if r.status != "accepted"]
        if bad:
            raise SystemExit(f"history: record_usage did not accept {bad[0]}")
    billing.engine.dispose()


def verify_rollup_method(db: Database, account_id: str) -> int:
    """record_usage's rollups == ROLLUP_SQL over the same events; returns the number of rollup rows."""
    billing = billing_for(db)
    with billing.engine.connect() as conn:
        kept = conn.execute(text(f"SELECT account_id, day, project_id, meter, agent, model, {', '.join(SUMS)} "
                                 "FROM daily_rollups WHERE account_id = :a"), {"a": account_id}).all()
        computed = conn.execute(text(rollup_select(db)), {"account_id": account_id, "after_id": 0}).all()
    billing.engine.dispose()

    def norm(rows):
        return sorted((str(r[0]), str(r[1]), *r[2:6], *(int(v) for v in r[6:])) for r in rows)

    if norm(kept) != norm(computed):
        raise SystemExit("history: rollups computed by SQL differ from the ones record_usage kept; "
                         "the bulk history would not be what record_usage produces")
    return len(kept)


def bulk(db: Database, acc: BenchAccount, projects: list[str], count: int, today) -> None:
    """Insert `count` events for the account with one INSERT ... SELECT, then upsert their rollups."""
    midnight = datetime(today.year, today.month, today.day)
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    p0, p1, p2 = projects
    m = MODELS
    if db.kind == "sqlite":
        fmt = "'%Y-%m-%d %H:%M:%f000'"  # SQLAlchemy's SQLite DATETIME text: microseconds, 6 digits
        seq = "WITH RECURSIVE seq(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM seq WHERE n + 1 < :count) "
        src = "seq"
        occurred = (f"strftime({fmt}, :midnight, '-' || (1 + n % {DAYS}) || ' days', "
                    f"'+' || ((n * 7919) % 86400) || ' seconds')")
        recorded = ":now_text"
        event_id = "printf('b-%010d', n)"
        run_id = "'run-' || (n / 50)"
        int_div = "/"
    else:
        seq = ""
        src = "generate_series(CAST(0 AS bigint), CAST(:count AS bigint) - 1) AS seq(n)"
        occurred = (f"(CAST(:midnight AS timestamp) - (1 + n % {DAYS}) * interval '1 day' "
                    f"+ ((n * 7919) % 86400) * interval '1 second')")
        recorded = "CAST(:now_text AS timestamp)"
        event_id = "'b-' || lpad(n::text, 10, '0')"
        run_id = "'run-' || (n / 50)"
        int_div = "/"
    compute = f"(((n {int_div} 12) % 10) < 7)"
    model_i = f"((n {int_div} 120) % 3)"
    duration = "(1000 + 10 * ((n * 7919) % 6000))"
    tin, tout = "(100 + (n * 31) % 5000)", "(10 + (n * 17) % 800)"
    token_cost = (f"(CASE {model_i} WHEN 0 THEN {tin} * {m[0][2]} + {tout} * {m[0][3]} "
                  f"WHEN 1 THEN {tin} * {m[1][2]} + {tout} * {m[1][3]} ELSE {tin} * {m[2][2]} + {tout} * {m[2][3]} END)")
    cost = f"(CASE WHEN {compute} THEN {duration} / 10 ELSE {token_cost} END)"
    sql = f"""
{seq}INSERT INTO usage_events (account_id, event_id, body_hash, project_id, kind, occurred_at, recorded_at,
    period_start, duration_ms, model, provider, input_tokens, output_tokens, key_source, agent, run_id,
    allowance_ms, pool_ms, credit_micros, overage_micros, debt_micros, list_cost_micros, late)
SELECT :account_id, {event_id}, :hash,
    CASE n % 3 WHEN 0 THEN :p0 WHEN 1 THEN :p1 ELSE :p2 END,
    CASE WHEN {compute} THEN 'compute' ELSE 'tokens' END,
    {occurred}, {recorded}, {recorded},
    CASE WHEN {compute} THEN {duration} ELSE 0 END,
    CASE WHEN {compute} THEN NULL WHEN {model_i} = 0 THEN '{m[0][0]}' WHEN {model_i} = 1 THEN '{m[1][0]}'
         ELSE '{m[2][0]}' END,
    CASE WHEN {compute} THEN NULL ELSE 'anthropic' END,
    CASE WHEN {compute} THEN 0 ELSE {tin} END,
    CASE WHEN {compute} THEN 0 ELSE {tout} END,
    CASE WHEN {compute} THEN NULL ELSE 'platform' END,
    CASE (n {int_div} 3) % 4 WHEN 0 THEN 'planner' WHEN 1 THEN 'coder' WHEN 2 THEN 'reviewer' ELSE 'tester' END,
    {run_id},
    0, 0, {cost}, 0, 0, {cost}, {'1' if db.kind == 'sqlite' else 'true'}
FROM {src}
"""
    # shape() in Python and this SQL must agree on agent and project; assert on a sample
    assert AGENTS == ("planner", "coder", "reviewer", "tester")
    billing = billing_for(db)
    with billing.engine.begin() as conn:
        after_id = conn.execute(text("SELECT COALESCE(MAX(id), 0) FROM usage_events")).scalar()
        if db.kind == "postgresql":
            conn.execute(text("SET LOCAL synchronous_commit = off"))
        else:
            conn.execute(text("PRAGMA cache_size = -262144"))  # 256 MB for this build: index pages stay cached
        conn.execute(text(sql), {"count": count, "account_id": acc.account_id, "hash": PLACEHOLDER_HASH,
                                 "p0": p0, "p1": p1, "p2": p2, "midnight": midnight.strftime("%Y-%m-%d %H:%M:%S"),
                                 "now_text": now.strftime("%Y-%m-%d %H:%M:%S.%f")})
        conn.execute(text(f"""
            INSERT INTO daily_rollups (account_id, day, project_id, meter, agent, model, {', '.join(SUMS)})
            SELECT * FROM ({rollup_select(db)}) AS r WHERE true
            ON CONFLICT (account_id, day, project_id, meter, agent, model) DO UPDATE SET
            {', '.join(f'{c} = daily_rollups.{c} + excluded.{c}' for c in SUMS)}"""),
                     {"account_id": acc.account_id, "after_id": after_id})
    if db.kind == "postgresql":
        with billing.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE usage_events"))
            conn.execute(text("ANALYZE daily_rollups"))
    billing.engine.dispose()


def described(kind: str) -> dict | None:
    path = OUT / f"history-{kind}.json"
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    return data if data.get("version") == HISTORY_VERSION else None


def build(kind: str, rebuild: bool = False) -> dict:
    """The history database for `kind`, built if missing; returns its description."""
    found = None if rebuild else described(kind)
    if found:
        db = database(kind, f"bench_history_{kind}", fresh=False)
        if db.kind == "sqlite" and not (OUT / f"{db.name}.db").exists():
            found = None
    if found:
        return found
    from billing_core.services.projects import create_project

    db = database(kind, f"bench_history_{kind}")
    today = datetime.now(timezone.utc).date()
    info = {"version": HISTORY_VERSION, "db": kind, "url": db.url, "name": db.name, "built": str(today),
            "days": DAYS, "accounts": {}}
    billing = billing_for(db)
    for label, count in SIZES.items():
        t0 = time.perf_counter()
        acc = create_account(db, email=f"history-{label.lower()}@example.com")
        now = datetime.now(timezone.utc)
        projects = [acc.project_id] + [create_project(billing, acc.account_id, name=f"p{i}", now=now).id
                                       for i in (2, 3)]
        if label == "100k":
            through_record_usage(db, acc, projects, count, today)
            rollups = verify_rollup_method(db, acc.account_id)
            how = "record_usage; rollup SQL verified equal"
        else:
            bulk(db, acc, projects, count, today)
            how = "bulk INSERT ... SELECT + rollup SQL"
        with billing.engine.connect() as conn:
            events = conn.execute(text("SELECT count(*) FROM usage_events WHERE account_id = :a"),
                                  {"a": acc.account_id}).scalar()
            rollups = conn.execute(text("SELECT count(*) FROM daily_rollups WHERE account_id = :a"),
                                   {"a": acc.account_id}).scalar()
        seconds = time.perf_counter() - t0
        print(f"  [{kind}] history {label}: {events:,} events, {rollups:,} rollup rows, {how}, {seconds:.0f} s",
              flush=True)
        info["accounts"][label] = {"account_id": acc.account_id, "api_key": acc.api_key, "events": int(events),
                                   "rollups": int(rollups), "how": how, "build_seconds": round(seconds, 1)}
    billing.engine.dispose()
    (OUT / f"history-{kind}.json").write_text(json.dumps(info, indent=2))
    return info


def main(argv: list[str]) -> None:
    for kind in parse_dbs(argv):
        build(kind, rebuild="--rebuild" in argv)


if __name__ == "__main__":
    main(sys.argv[1:])
