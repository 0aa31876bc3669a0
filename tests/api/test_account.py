"""GET /api/v1/account: every field API.md names, with its type, for the key's own account."""

from __future__ import annotations

import calendar
from datetime import datetime, timedelta

from .helpers import ACCOUNT, ACCOUNT_KEYS, assert_error, get_account, parse_rfc3339, utcnow


def one_month_after(start: datetime) -> datetime:
    """DESIGN.md "Periods": day D of the next month, clamped to that month's last day."""
    year, month = (start.year + 1, 1) if start.month == 12 else (start.year, start.month + 1)
    return start.replace(year=year, month=month, day=min(start.day, calendar.monthrange(year, month)[1]))


def test_a_pro_account_shows_every_documented_field_with_its_type(client, named_account, admin_cli):
    account = named_account("fields")  # pro, $5 credit
    admin_cli("add-pool", account.account_id, "--hours", "10", "--days", "30")

    body = get_account(client, account.auth)

    assert set(body) == ACCOUNT_KEYS
    assert body["id"] == account.account_id
    assert body["email"] == account.email
    assert body["plan"] == "pro"
    assert body["status"] == "active"
    assert set(body["period"]) == {"start", "end"}
    assert body["allowance"] == {"included_ms": 720_000_000, "used_ms": 0, "remaining_ms": 720_000_000}
    assert all(type(v) is int for v in body["allowance"].values())
    assert body["credit"] == {"balance_micros": 5_000_000}
    assert body["overage"] == {"amount_micros": 0, "cap_micros": 500_000_000}
    assert type(body["credit"]["balance_micros"]) is int and type(body["overage"]["amount_micros"]) is int

    [pool] = body["pools"]
    assert set(pool) == {"id", "remaining_ms", "expires_at"}
    assert isinstance(pool["id"], str) and pool["id"]
    assert pool["remaining_ms"] == 10 * 3_600_000 and type(pool["remaining_ms"]) is int
    expires = parse_rfc3339(pool["expires_at"])
    assert abs(expires - (utcnow() + timedelta(days=30))) < timedelta(minutes=5)


def test_the_period_is_one_month_from_its_start_in_utc(client, named_account):
    body = get_account(client, named_account("victim").auth)
    start, end = parse_rfc3339(body["period"]["start"]), parse_rfc3339(body["period"]["end"])
    assert utcnow() - timedelta(hours=1) < start <= utcnow()  # the account was created by this session
    assert end == one_month_after(start)


def test_a_hobby_account_has_no_spend_cap_and_no_pools(client, named_account):
    body = get_account(client, named_account("victim").auth)  # hobby, $1, never changed by any test
    assert body["plan"] == "hobby"
    assert body["status"] == "active"
    assert body["overage"] == {"amount_micros": 0, "cap_micros": None}
    assert body["pools"] == []
    assert body["credit"] == {"balance_micros": 1_000_000}
    assert body["allowance"] == {"included_ms": 3_600_000, "used_ms": 0, "remaining_ms": 3_600_000}


def test_a_fresh_account_from_the_cli_shows_the_plan_and_credit_it_was_given(client, create_account):
    account = create_account(plan="starter", credit_usd="2.5")
    body = get_account(client, account.auth)
    assert (body["id"], body["email"], body["plan"]) == (account.account_id, account.email, "starter")
    assert body["credit"]["balance_micros"] == 2_500_000
    assert body["allowance"]["included_ms"] == 72_000_000


def test_a_key_may_name_its_own_account_in_the_query(client, named_account):
    account = named_account("victim")
    assert get_account(client, account.auth, account_id=account.account_id)["id"] == account.account_id


def test_reading_the_account_needs_a_key(client):
    assert_error(client.get(ACCOUNT), 401)
