"""Runs on SQLite and PostgreSQL: lifecycle, idempotent reports, derived cost, listing, activity."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import event, select

from billing_core.db.engine import read_session
from billing_core.db.models import Activity
from billing_core.db.workloads import Run
from billing_core.errors import Conflict, Invalid, NotFound
from billing_core.services.paging import encode_cursor
from billing_core.services.runs import NewRun, create_run, get_run, list_runs, update_run
from billing_core.services.schedules import create_schedule

from ..conftest import T0
from ..factories import make_account
from .helpers import add_project, charge, compute, summed, tokens


def new_run(billing, account, agent="builder", **kw):
    return create_run(billing, account.account_id, NewRun(account.project_id, agent, **kw), now=T0)[0]


def activity_kinds(billing, account_id):
    with read_session(billing.engine) as session:
        return [(a.kind, a.subject, a.actor) for a in session.execute(
            select(Activity).where(Activity.account_id == account_id, Activity.kind.like("run_%"))).scalars()]


def test_a_run_created_with_an_account_key_gets_a_generated_id_and_starts_queued(billing):
    account = make_account(billing)
    run = new_run(billing, account, trigger="manual")
    assert run.id.startswith("run_") and run.status == "queued" and run.trigger == "manual"
    assert (run.started_at, run.finished_at, run.duration_ms, run.cost_micros) == (None, None, 0, 0)
    assert run.drawdown == {"allowance_ms": 0, "pool_ms": 0, "credit_micros": 0, "overage_micros": 0,
                            "debt_micros": 0}


def test_the_edge_may_bring_its_own_run_id_and_a_replay_returns_the_same_run(billing):
    account = make_account(billing)
    first, created = create_run(billing, account.account_id,
                                NewRun(account.project_id, "builder", id="edge-7f3a:1"), now=T0)
    again, created_again = create_run(billing, account.account_id,
                                      NewRun(account.project_id, "builder", id="edge-7f3a:1"), now=T0 + timedelta(1))
    assert (created, created_again) == (True, False)
    assert again == first


def test_the_same_run_id_with_other_details_is_a_conflict(billing):
    account = make_account(billing)
    create_run(billing, account.account_id, NewRun(account.project_id, "builder", id="r-1"), now=T0)
    with pytest.raises(Conflict) as caught:
        create_run(billing, account.account_id, NewRun(account.project_id, "tester", id="r-1"), now=T0)
    assert caught.value.code == "run_exists"


def test_a_run_id_another_account_uses_is_free_and_each_account_sees_its_own(billing):
    a, b = make_account(billing), make_account(billing)
    create_run(billing, a.account_id, NewRun(a.project_id, "builder", id="shared-id"), now=T0)
    _, created = create_run(billing, b.account_id, NewRun(b.project_id, "tester", id="shared-id"), now=T0)
    assert created
    assert (get_run(billing, a.account_id, "shared-id").agent, get_run(billing, b.account_id, "shared-id").agent) \
        == ("builder", "tester")


@pytest.mark.parametrize("project", ["other-account", "deleted", "prj_doesnotexist", "bad\x00id"])
def test_a_run_for_a_project_outside_the_account_is_not_found(billing, project):
    a, b = make_account(billing), make_account(billing)
    project_id = {"other-account": b.project_id,
                  "deleted": add_project(billing, a.account_id, now=T0, deleted=True)}.get(project, project)
    with pytest.raises(NotFound):
        create_run(billing, a.account_id, NewRun(project_id, "builder"), now=T0)


@pytest.mark.parametrize("run_id", ["", "a" * 129, "has space", "a/b", "nul\x00", "é"])
def test_an_edge_run_id_outside_the_allowed_characters_is_invalid(billing, run_id):
    account = make_account(billing)
    with pytest.raises(Invalid) as caught:
        create_run(billing, account.account_id, NewRun(account.project_id, "builder", id=run_id), now=T0)
    assert caught.value.code == "invalid_id"


def test_a_run_moves_from_queued_to_running_to_succeeded_and_is_stamped_at_each_step(billing):
    account = make_account(billing)
    run = new_run(billing, account)
    running = update_run(billing, account.account_id, run.id, status="running", now=T0 + timedelta(seconds=5))
    done = update_run(billing, account.account_id, run.id, status="succeeded", now=T0 + timedelta(seconds=65))
    assert running.started_at == "2026-01-15T12:00:05Z" and running.finished_at is None
    assert (done.status, done.started_at, done.finished_at) == ("succeeded", "2026-01-15T12:00:05Z",
                                                                "2026-01-15T12:01:05Z")


def test_a_queued_run_can_be_cancelled_without_ever_starting(billing):
    account = make_account(billing)
    run = new_run(billing, account)
    cancelled = update_run(billing, account.account_id, run.id, status="cancelled", now=T0)
    assert (cancelled.status, cancelled.started_at, cancelled.finished_at) == ("cancelled", None,
                                                                               "2026-01-15T12:00:00Z")


@pytest.mark.parametrize("final", ["succeeded", "failed", "cancelled"])
@pytest.mark.parametrize("then", ["queued", "running", "succeeded", "failed", "cancelled"])
def test_a_finished_run_cannot_change(billing, final, then):
    account = make_account(billing)
    run = new_run(billing, account)
    update_run(billing, account.account_id, run.id, status="running", now=T0)
    update_run(billing, account.account_id, run.id, status=final, now=T0)
    if then == final:
        assert update_run(billing, account.account_id, run.id, status=then, now=T0).status == final  # a retry
        return
    with pytest.raises(Conflict) as caught:
        update_run(billing, account.account_id, run.id, status=then, now=T0 + timedelta(1))
    assert caught.value.code == "run_finished"
    assert get_run(billing, account.account_id, run.id).status == final


@pytest.mark.parametrize("status", ["succeeded", "failed"])
def test_a_queued_run_cannot_end_without_running(billing, status):
    account = make_account(billing)
    run = new_run(billing, account)
    with pytest.raises(Conflict) as caught:
        update_run(billing, account.account_id, run.id, status=status, now=T0)
    assert caught.value.code == "invalid_transition"


def test_only_a_failed_run_carries_an_error(billing):
    account = make_account(billing)
    run = new_run(billing, account)
    update_run(billing, account.account_id, run.id, status="running", now=T0)
    with pytest.raises(Invalid):
        update_run(billing, account.account_id, run.id, status="succeeded", error="nope", now=T0)
    failed = update_run(billing, account.account_id, run.id, status="failed", error="exit 137\nOOM", now=T0)
    assert failed.error == "exit 137\nOOM"


def test_finishing_or_failing_a_run_writes_an_activity_row_and_cancelling_does_not(billing):
    account = make_account(billing)
    runs = [new_run(billing, account) for _ in range(3)]
    for run, final in zip(runs, ["succeeded", "failed", "cancelled"]):
        update_run(billing, account.account_id, run.id, status="running", now=T0)
        update_run(billing, account.account_id, run.id, status=final, now=T0, actor="edge")
    assert sorted(activity_kinds(billing, account.account_id)) == sorted(
        [("run_finished", runs[0].id, "edge"), ("run_failed", runs[1].id, "edge")])


def test_cost_duration_and_drawdown_are_the_sums_of_what_the_runs_usage_was_charged(billing):
    account = make_account(billing, credit_micros=5_000_000)  # hobby: 1 h allowance, then credit
    run, other = new_run(billing, account), new_run(billing, account)
    p = account.project_id
    charges = charge(billing, account.account_id, [
        compute(p, 1_800_000, run_id=run.id),              # 30 min from the allowance
        compute(p, 2_700_000, run_id=run.id),              # 30 min allowance, 15 min credit
        tokens(p, "claude-sonnet-4", 10_000, 2_000, run_id=run.id),
        compute(p, 60_000, run_id=other.id),               # another run's
        compute(p, 60_000),                                # no run at all
    ], now=T0)
    view = get_run(billing, account.account_id, run.id)
    expected = summed(charges[:3])
    assert view.drawdown == expected
    assert view.duration_ms == 4_500_000
    assert view.cost_micros == expected["credit_micros"] + expected["overage_micros"] + expected["debt_micros"]
    assert view.cost_micros == 15 * 60 * 100 + 60_000  # 900 s at 100 micros/s; 10k in at $3/M + 2k out at $15/M
    assert get_run(billing, account.account_id, other.id).duration_ms == 60_000


def test_a_run_costs_its_debt_too_when_nothing_covered_its_usage(billing):
    account = make_account(billing)  # no credit: past the allowance, usage becomes debt
    run = new_run(billing, account)
    charges = charge(billing, account.account_id, [compute(account.project_id, 3_600_000 + 10_000, run_id=run.id)],
                     now=T0)
    view = get_run(billing, account.account_id, run.id)
    assert charges[0].debt_micros == 1_000 and view.cost_micros == 1_000 and view.drawdown["debt_micros"] == 1_000


def test_usage_carrying_the_same_run_id_in_another_account_does_not_count(billing):
    a, b = make_account(billing, credit_micros=1_000_000), make_account(billing, credit_micros=1_000_000)
    run = new_run(billing, a, id="edge-run-1")
    charge(billing, b.account_id, [compute(b.project_id, 3_700_000, run_id="edge-run-1")], now=T0)
    view = get_run(billing, a.account_id, run.id)
    assert (view.duration_ms, view.cost_micros) == (0, 0)


def test_runs_are_listed_newest_first_filtered_and_paged_with_a_cursor(billing):
    account = make_account(billing)
    second = add_project(billing, account.account_id, now=T0)
    made = []
    for i in range(7):
        project = second if i % 2 else account.project_id
        made.append(create_run(billing, account.account_id, NewRun(project, f"agent-{i % 3}"),
                               now=T0 + timedelta(seconds=i))[0])
    update_run(billing, account.account_id, made[6].id, status="running", now=T0)
    pages, cursor = [], None
    while True:
        page = list_runs(billing, account.account_id, limit=3, cursor=cursor)
        pages.append([r.id for r in page.items])
        if not (cursor := page.next_cursor):
            break
    assert pages == [[r.id for r in made[6:3:-1]], [r.id for r in made[3:0:-1]], [made[0].id]]

    def by(**filters) -> list[str]:
        return [r.id for r in list_runs(billing, account.account_id, limit=50, **filters).items]

    assert by(project_id=second) == [made[5].id, made[3].id, made[1].id]
    assert by(status="running") == [made[6].id]
    assert by(agent="agent-1") == [made[4].id, made[1].id]
    assert by(project_id="prj_of_nobody") == []


def test_a_page_of_runs_derives_its_usage_with_one_grouped_query(billing):
    account = make_account(billing)
    runs = [new_run(billing, account) for _ in range(12)]
    charge(billing, account.account_id, [compute(account.project_id, 1_000, run_id=r.id) for r in runs], now=T0)
    statements = []

    def listener(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(billing.engine, "before_cursor_execute", listener)
    try:
        page = list_runs(billing, account.account_id, limit=50)
    finally:
        event.remove(billing.engine, "before_cursor_execute", listener)
    assert [r.duration_ms for r in page.items] == [1_000] * 12
    assert sum("usage_events" in s for s in statements) == 1


@pytest.mark.parametrize("cursor", ["garbage", encode_cursor(T0.replace(tzinfo=None), "run_x"),
                                    encode_cursor(T0, "bad\x00id"), "W10", "bnVsbA",
                                    encode_cursor(datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14))), "r")])
def test_a_cursor_this_api_did_not_give_out_is_invalid(billing, cursor):
    account = make_account(billing)
    with pytest.raises(Invalid) as caught:
        list_runs(billing, account.account_id, limit=10, cursor=cursor)
    assert caught.value.code == "invalid_cursor"


def test_a_run_is_stored_only_under_the_account_that_made_it(billing):
    a = make_account(billing)
    run = new_run(billing, a)
    with read_session(billing.engine) as session:
        assert session.get(Run, (a.account_id, run.id)).id == run.id


def test_usage_reported_before_the_run_counts_once_the_run_is_reported(billing):
    account = make_account(billing, credit_micros=1_000_000)
    charges = charge(billing, account.account_id, [compute(account.project_id, 3_650_000, run_id="early-1")], now=T0)
    view, created = create_run(billing, account.account_id, NewRun(account.project_id, "x", id="early-1"), now=T0)
    assert created and view.duration_ms == 3_650_000 and view.cost_micros == charges[0].credit_micros == 5_000


def test_a_scheduled_run_names_a_schedule_of_its_own_account(billing):
    a, b = make_account(billing), make_account(billing)
    theirs = create_schedule(billing, b.account_id, project_id=b.project_id, agent="x", cron="* * * * *", now=T0)
    mine = create_schedule(billing, a.account_id, project_id=a.project_id, agent="x", cron="* * * * *", now=T0)
    for schedule_id in (theirs.id, "sch_none", "bad\x00"):
        with pytest.raises(NotFound):
            create_run(billing, a.account_id, NewRun(a.project_id, "x", trigger="schedule", schedule_id=schedule_id),
                       now=T0)
    run, _ = create_run(billing, a.account_id, NewRun(a.project_id, "x", trigger="schedule", schedule_id=mine.id),
                        now=T0)
    assert (run.trigger, run.schedule_id) == ("schedule", mine.id)
    with pytest.raises(Invalid):
        create_run(billing, a.account_id, NewRun(a.project_id, "x", trigger="api", schedule_id=mine.id), now=T0)
