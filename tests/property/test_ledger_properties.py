"""Property-based tests of the ledger, drawdown and idempotency, driving the real services on a real database.

Each example creates a fresh account (on a random plan with random credit) and runs a random sequence of
operations with time moving forward: usage batches (compute and token events, some late, some repeated or
conflicting inside the batch), credit grants, pool purchases (some expire during the run), plan changes
(upgrades at once, downgrades at the period close), the scheduled tick, and replays of events already sent.

The test keeps a shadow model of the account written from DESIGN.md alone (its own period arithmetic,
drawdown, proration and rounding; it shares only the catalog's numbers with the code) and, after every step,
reads everything back from the database and checks:

1. credit balance = sum of the credit-book entries (and every entry's balance_after is the running sum);
2. every pool: remaining >= 0 and = size - usage draws - expiry = sum of its pool-book entries;
3. the drawdown order of every accepted event, read from its own ledger entries: allowance first, pools only
   once the allowance is exhausted, earliest expiry first, money only once allowance and pools are exhausted;
   token events never touch allowance or pools;
4. replaying a prefix of the events already sent answers `duplicate` with the original charge and changes
   nothing (account row, pools, ledger, usage events, rollups, activity, invoices);
5. used_ms = -(sum of this period's allowance usage entries); included_ms - used_ms = sum of this period's
   allowance entries;
6. money is never float: every amount is an int, and on SQLite every stored value has integer storage class;

plus: the account row (plan, pending plan, period, allowance, credit, overage, cap, proration, status), pools,
charges, late flags, invoices and closed periods equal the shadow model's; every entry has a cause; the usage
events' charged columns equal their ledger entries; the daily rollups equal a regrouping of the events.
A separate property sends a known event id with another body and expects `idempotency_conflict`, no change.
The reduced variant runs on SQLite and PostgreSQL (`billing` fixture); another anchors accounts at month ends.
Runs: `.venv/bin/pytest -q tests/property --hypothesis-show-statistics` shows which paths were exercised.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from billing_core.services import periods, usage
from billing_core.services.usage import Charged, UsageEventIn
from tests.conftest import T0

from .ledger_model import (SETTINGS, Ev, Usage, advances, operations, pool_heavy_operations, start_credits,
                           start_plans)
from .ledger_scenario import run_scenario, snapshot


# --------------------------------------------------------------------------------------------------------
# The properties.

@settings(max_examples=30, **SETTINGS)
@given(plan=start_plans, credit=start_credits, ops=st.lists(operations, min_size=6, max_size=30))
def test_ledger_balances_drawdown_and_replays_hold_over_random_histories(sqlite_billing, plan, credit, ops):
    """Properties 1-6 after every step of a random history on SQLite."""
    run_scenario(sqlite_billing, plan, credit, ops)


@settings(max_examples=8, **SETTINGS)
@given(plan=start_plans, credit=start_credits, ops=st.lists(operations, min_size=3, max_size=12))
def test_ledger_properties_hold_on_sqlite_and_postgresql(billing, plan, credit, ops):
    """A reduced run of the same properties on each database of the `billing` fixture."""
    run_scenario(billing, plan, credit, ops)


@settings(max_examples=20, **SETTINGS)
@given(credit=start_credits, ops=st.lists(pool_heavy_operations, min_size=6, max_size=24))
def test_pools_drain_in_expiry_order_over_pool_heavy_histories(sqlite_billing, credit, ops):
    """The same properties on a hobby account that buys many small pools, so events span several pools."""
    run_scenario(sqlite_billing, "hobby", credit, ops)


MONTH_END_STARTS = [datetime(2026, 1, 31, 23, 30, tzinfo=timezone.utc),  # Jan 31 -> Feb 28 -> Mar 31
                    datetime(2028, 1, 30, 6, 0, tzinfo=timezone.utc),  # leap year: Feb 29
                    datetime(2026, 3, 31, 0, 0, tzinfo=timezone.utc),  # Apr 30, May 31
                    datetime(2026, 12, 31, 12, 0, tzinfo=timezone.utc)]  # across the new year


@settings(max_examples=10, **SETTINGS)
@given(start=st.sampled_from(MONTH_END_STARTS), plan=start_plans, credit=start_credits,
       ops=st.lists(operations, min_size=6, max_size=20))
def test_ledger_properties_hold_for_accounts_anchored_at_a_month_end(sqlite_billing, start, plan, credit, ops):
    """The same properties with period ends clamped to short months (DESIGN.md: Periods)."""
    run_scenario(sqlite_billing, plan, credit, ops, start)


def conflicting_bodies(event: UsageEventIn) -> st.SearchStrategy[UsageEventIn]:
    """Bodies with the event's id that differ from it in at least one field (all still valid events)."""
    changes: list[dict] = [dict(agent="another-agent"), dict(run_id="run-x"),
                           dict(timestamp=(event.timestamp or T0) - timedelta(seconds=1)),
                           dict(project_id="prj_someone_else")]
    if event.kind == "compute":
        changes += [dict(duration_ms=event.duration_ms + 1),
                    dict(duration_ms=max(0, event.duration_ms - 1) if event.duration_ms else 7),
                    dict(kind="tokens", model="claude-haiku-4", input_tokens=event.duration_ms, duration_ms=0)]
    else:
        changes += [dict(input_tokens=event.input_tokens + 1), dict(output_tokens=event.output_tokens + 1),
                    dict(key_source="byok" if event.key_source == "platform" else "platform"),
                    dict(model="gpt-4o" if event.model != "gpt-4o" else "gpt-4o-mini"),
                    dict(provider="someone-else")]
    return st.sampled_from(changes).map(lambda change: dataclasses.replace(event, **change)).filter(
        lambda other: other != event)


@settings(max_examples=30, **SETTINGS)
@given(plan=start_plans, credit=start_credits, ops=st.lists(operations, max_size=8), advance=advances,
       with_duplicate=st.booleans(), data=st.data())
def test_same_event_id_with_another_body_is_rejected_and_changes_nothing(sqlite_billing, plan, credit, ops,
                                                                        advance, with_duplicate, data):
    """A known id with another body (alone, or beside a true duplicate) is rejected and changes nothing."""
    scenario = run_scenario(sqlite_billing, plan, credit, ops)
    if not scenario.accepted:
        scenario.run(Usage(0, (Ev("compute", duration_ms=1_234_567),)))
    original = data.draw(st.sampled_from(scenario.accepted), label="original")
    other = data.draw(conflicting_bodies(original), label="other body")
    scenario.now += timedelta(seconds=advance)
    periods.run_due_work(sqlite_billing, scenario.now)
    scenario.shadow.bring_up_to_date(scenario.now)
    scenario.check()

    before = snapshot(sqlite_billing.engine, scenario.account_id)
    batch = [other, original] if with_duplicate else [other]
    result = usage.record_usage(sqlite_billing, scenario.account_id, batch, now=scenario.now)
    assert (result.results[0].status, result.results[0].error_code) == ("rejected", "idempotency_conflict")
    assert result.results[0].charged == Charged()
    if with_duplicate:
        first = scenario.shadow.events[original.id]
        assert (result.results[1].status, result.results[1].charged, result.results[1].late) == (
            "duplicate", first.charged, first.late)
    assert snapshot(sqlite_billing.engine, scenario.account_id) == before
    scenario.check()
