"""GET /api/v1/usage/summary: totals per day, project, agent and model equal what was charged."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, time, timedelta, timezone

import pytest

from .helpers import (SUMMARY, backdate_account, charge, compute_event, money_of, post_usage, rfc3339, tokens_event,
                      utcnow)

ROW_FIELDS = ("compute_ms", "input_tokens", "output_tokens", "cost_micros")


def summary(client, account, start, end, group_by=None) -> list[dict]:
    params = {"from": start.isoformat(), "to": end.isoformat()}
    if group_by:
        params["group_by"] = group_by
    response = client.get(SUMMARY, params=params, headers=account.auth)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"data"}, body
    for row in body["data"]:
        assert {"key", *ROW_FIELDS} <= set(row), row
        assert isinstance(row["key"], str), row
        assert all(type(row[f]) is int for f in ROW_FIELDS), row
    return body["data"]


def by_key(rows: list[dict]) -> dict[str, dict]:
    keyed = {row["key"]: {f: row[f] for f in ROW_FIELDS} for row in rows}
    assert len(keyed) == len(rows), rows  # one row per key
    return keyed


def total(rows) -> dict:
    rows = list(rows)
    return {f: sum(r[f] for r in rows) for f in ROW_FIELDS}


@pytest.fixture(scope="module")
def reported(live_server, client, named_account):
    """A day of usage yesterday and today on a fresh account, with what each accepted event was charged."""
    account = named_account("summary")  # hobby: 1 h allowance, $10 credit
    backdate_account(live_server.database_url, account.account_id, days=2)  # usage from before its creation is refused
    now = utcnow()
    yesterday = datetime.combine((now - timedelta(days=1)).date(), time(12), tzinfo=timezone.utc)
    recent = now - timedelta(seconds=2)
    p = account.project_id
    events = [
        compute_event(p, 60_000, agent="a1", timestamp=rfc3339(yesterday)),
        tokens_event(p, "claude-sonnet-4", 1000, 500, agent="a2", timestamp=rfc3339(recent)),
        tokens_event(p, "gpt-4o", 2000, 1000, agent="a1", timestamp=rfc3339(recent)),
        compute_event(p, 3_600_000, timestamp=rfc3339(recent)),
        tokens_event(p, "llama-9000", 100, 100, agent="a2", key_source="byok", timestamp=rfc3339(recent)),
        compute_event("prj_not_mine", 999_999, agent="a1", timestamp=rfc3339(recent)),  # rejected
    ]
    body = post_usage(client, account.auth, *events)
    statuses = [r["status"] for r in body["results"]]
    assert statuses == ["accepted"] * 5 + ["rejected"], body["results"]
    charged = [r["charged"] for r in body["results"]]
    assert charged[:5] == [charge(allowance_ms=60_000), charge(credit_micros=10_500), charge(credit_micros=15_000),
                           charge(allowance_ms=3_540_000, credit_micros=6000), charge()]
    accepted = list(zip(events[:5], charged[:5]))
    return account, accepted, yesterday, recent


def expected(accepted, key_of) -> dict[str, dict]:
    sums: dict[str, dict] = defaultdict(lambda: dict.fromkeys(ROW_FIELDS, 0))
    for event, charged in accepted:
        row = sums[key_of(event)]
        row["compute_ms"] += event.get("duration_ms", 0) if event["kind"] == "compute" else 0
        row["input_tokens"] += event.get("input_tokens", 0)
        row["output_tokens"] += event.get("output_tokens", 0)
        row["cost_micros"] += money_of(charged)
    return dict(sums)


def test_summary_by_day_keys_each_utc_day_with_what_was_charged_that_day(client, reported):
    account, accepted, yesterday, recent = reported
    rows = summary(client, account, yesterday.date(), recent.date(), "day")
    assert by_key(rows) == expected(accepted, lambda e: e["timestamp"][:10])
    assert [r["key"] for r in rows] == sorted(r["key"] for r in rows)


def test_summary_groups_by_day_when_group_by_is_left_out(client, reported):
    account, _, yesterday, recent = reported
    assert summary(client, account, yesterday.date(), recent.date()) == summary(
        client, account, yesterday.date(), recent.date(), "day")


def test_summary_by_project_totals_equal_the_money_charged(client, reported):
    account, accepted, yesterday, recent = reported
    rows = summary(client, account, yesterday.date(), recent.date(), "project")
    assert by_key(rows) == expected(accepted, lambda e: e["project_id"])
    assert by_key(rows)[account.project_id]["cost_micros"] == 10_500 + 15_000 + 6000


def test_summary_by_agent_has_one_row_per_agent_and_the_rest_adds_up(client, reported):
    account, accepted, yesterday, recent = reported
    rows = by_key(summary(client, account, yesterday.date(), recent.date(), "agent"))
    want = expected(accepted, lambda e: e.get("agent") or None)
    assert rows["a1"] == want["a1"] and rows["a2"] == want["a2"]
    assert total(r for k, r in rows.items() if k not in ("a1", "a2")) == want[None], (rows, want)


def test_summary_by_model_has_one_row_per_model_and_compute_adds_up(client, reported):
    account, accepted, yesterday, recent = reported
    rows = by_key(summary(client, account, yesterday.date(), recent.date(), "model"))
    want = expected(accepted, lambda e: e.get("model"))
    for model in ("claude-sonnet-4", "gpt-4o", "llama-9000"):
        assert rows[model] == want[model]
    assert total(r for k, r in rows.items() if k not in want) == want[None]
    assert want[None]["compute_ms"] == 3_660_000


def test_summary_includes_only_days_in_the_range(client, reported):
    account, accepted, yesterday, recent = reported
    if yesterday.date() == recent.date():
        pytest.skip("both events fell on one UTC day")
    only_yesterday = summary(client, account, yesterday.date(), yesterday.date(), "project")
    assert total(only_yesterday) == {"compute_ms": 60_000, "input_tokens": 0, "output_tokens": 0, "cost_micros": 0}
    future = recent.date() + timedelta(days=1)
    assert summary(client, account, future, future + timedelta(days=30)) == []


def test_summary_by_day_uses_the_utc_day_of_a_timestamp_sent_with_an_offset(live_server, client, named_account):
    shared = named_account("shared")
    backdate_account(live_server.database_url, shared.account_id, days=11)
    instant = datetime.combine((utcnow() - timedelta(days=10)).date(), time(2), tzinfo=timezone.utc)
    written = instant.astimezone(timezone(timedelta(hours=-5))).isoformat()  # 21:00 the day before
    body = post_usage(client, shared.auth, compute_event(shared.project_id, 7777, timestamp=written))
    assert body["results"][0]["status"] == "accepted"
    rows = by_key(summary(client, shared, instant.date() - timedelta(days=1), instant.date(), "day"))
    assert rows.get(instant.isoformat()[:10], {}).get("compute_ms", 0) >= 7777, rows
