"""POST /api/v1/usage: charges, idempotency, partial batches, late and future events, models.

Most tests share one pro account with a large allowance and credit and assert what a request
changed (the charge and the difference in balances), so they do not depend on each other.
"""

from __future__ import annotations

from datetime import timedelta, timezone

from .helpers import (USAGE, ZERO_CHARGE, assert_error, assert_rejection, backdate_account, both_databases, charge,
                      compute_event, get_account, new_id, parse_rfc3339, post_usage, rfc3339, tokens_event, unchanged,
                      utcnow)

SONNET_1000_IN_500_OUT = 1000 * 3 + 500 * 15  # micros: $3 / $15 per million tokens


def used_ms(account_view: dict) -> int:
    return account_view["allowance"]["used_ms"]


def credit(account_view: dict) -> int:
    return account_view["credit"]["balance_micros"]


# -- the happy path, on both databases -----------------------------------------------------------
@both_databases
def test_compute_and_token_events_are_charged_and_the_account_returned(server, shared):
    before = get_account(server.client, shared.auth)
    compute_id, tokens_id = new_id("c"), new_id("t")

    body = post_usage(server.client, shared.auth,
                      compute_event(shared.project_id, 1000, id=compute_id, agent="crawler", run_id="run-1"),
                      tokens_event(shared.project_id, "claude-sonnet-4", 1000, 500, id=tokens_id,
                                   provider="anthropic"))

    compute, tokens = body["results"]
    assert compute == {"id": compute_id, "status": "accepted", "charged": charge(allowance_ms=1000), "late": False}
    assert tokens == {"id": tokens_id, "status": "accepted",
                      "charged": charge(credit_micros=SONNET_1000_IN_500_OUT), "late": False}
    assert used_ms(body["account"]) - used_ms(before) == 1000
    assert body["account"]["allowance"]["remaining_ms"] == before["allowance"]["remaining_ms"] - 1000
    assert credit(before) - credit(body["account"]) == SONNET_1000_IN_500_OUT
    assert body["account"] == get_account(server.client, shared.auth)


def test_compute_draws_allowance_then_pools_then_credit_at_100_micros_a_second(client, named_account, admin_cli):
    account = named_account("drawdown")  # hobby, 1 h allowance, $1 credit
    admin_cli("add-pool", account.account_id, "--hours", "1")
    assert get_account(client, account.auth)["pools"][0]["remaining_ms"] == 3_600_000

    body = post_usage(client, account.auth, compute_event(account.project_id, 3_600_000 + 3_600_000 + 20_000))

    assert body["results"][0]["charged"] == charge(allowance_ms=3_600_000, pool_ms=3_600_000, credit_micros=2000)
    assert body["account"]["pools"] == []  # the only pool is used up
    assert body["account"]["allowance"]["remaining_ms"] == 0
    assert credit(body["account"]) == 998_000
    assert body["account"]["status"] == "active"


def test_uncovered_hobby_usage_is_recorded_as_debt_and_the_account_goes_over_limit(client, named_account):
    account = named_account("debt")  # hobby, no credit
    body = post_usage(client, account.auth, compute_event(account.project_id, 3_600_000 + 1000))
    assert body["results"][0]["status"] == "accepted"
    assert body["results"][0]["charged"] == charge(allowance_ms=3_600_000, debt_micros=100)
    assert credit(body["account"]) == -100
    assert body["account"]["status"] == "over_limit"

    # Usage reports are facts: more usage is still recorded, as more debt.
    more = post_usage(client, account.auth, tokens_event(account.project_id, "claude-haiku-4", 1000, 0))
    assert more["results"][0]["charged"] == charge(debt_micros=1000)
    assert credit(more["account"]) == -1100


def test_uncovered_pro_usage_accrues_overage(client, named_account):
    account = named_account("pro_no_credit")
    before = get_account(client, account.auth)
    body = post_usage(client, account.auth, tokens_event(account.project_id, "claude-opus-4", 1_000_000, 0))
    assert body["results"][0]["charged"] == charge(overage_micros=15_000_000)
    assert body["account"]["overage"]["amount_micros"] - before["overage"]["amount_micros"] == 15_000_000
    assert body["account"]["overage"]["cap_micros"] == 500_000_000
    assert credit(body["account"]) == 0
    assert body["account"]["status"] == "active"


def test_token_costs_are_rounded_once_per_event_half_to_even(client, named_account):
    shared = named_account("shared")
    before = get_account(client, shared.auth)
    # gpt-4o-mini input is $0.15 per million: 10 tokens = 1.5 micros -> 2, 30 tokens = 4.5 micros -> 4.
    body = post_usage(client, shared.auth, tokens_event(shared.project_id, "gpt-4o-mini", 10, 0),
                      tokens_event(shared.project_id, "gpt-4o-mini", 30, 0))
    assert [r["charged"]["credit_micros"] for r in body["results"]] == [2, 4]
    assert credit(before) - credit(body["account"]) == 6


def test_token_usage_is_never_paid_from_the_allowance(client, named_account):
    shared = named_account("shared")
    before = get_account(client, shared.auth)
    body = post_usage(client, shared.auth, tokens_event(shared.project_id, "gpt-4o", 1000, 1000))
    assert body["results"][0]["charged"] == charge(credit_micros=2500 + 10_000)
    assert used_ms(body["account"]) == used_ms(before)


def test_a_batch_of_exactly_1000_events_is_accepted(client, named_account):
    shared = named_account("shared")
    before = get_account(client, shared.auth)
    events = [compute_event(shared.project_id, 1) for _ in range(1000)]
    body = post_usage(client, shared.auth, *events)
    assert {r["status"] for r in body["results"]} == {"accepted"}
    assert [r["id"] for r in body["results"]] == [e["id"] for e in events]
    assert used_ms(body["account"]) - used_ms(before) == 1000


def test_a_batch_of_1001_events_is_too_large_and_records_nothing(client, named_account):
    shared = named_account("shared")
    events = [compute_event(shared.project_id, 1) for _ in range(1001)]
    with unchanged(client, shared):
        assert_error(client.post(USAGE, json={"events": events}, headers=shared.auth), 413)
    # None of them was recorded: all are new when sent again in a batch of the allowed size.
    body = post_usage(client, shared.auth, *events[:1000])
    assert {r["status"] for r in body["results"]} == {"accepted"}


# -- idempotency, on both databases --------------------------------------------------------------
@both_databases
def test_resending_an_event_is_a_duplicate_that_returns_the_original_charge(server, shared):
    client = server.client
    compute = compute_event(shared.project_id, 5000, agent="a")
    tokens = tokens_event(shared.project_id, "claude-sonnet-4", 1000, 500)
    first = post_usage(client, shared.auth, compute, tokens)
    assert [r["status"] for r in first["results"]] == ["accepted", "accepted"]

    again = post_usage(client, shared.auth, tokens, compute)

    assert [r["status"] for r in again["results"]] == ["duplicate", "duplicate"]
    assert again["results"][0]["charged"] == first["results"][1]["charged"] == charge(
        credit_micros=SONNET_1000_IN_500_OUT)
    assert again["results"][1]["charged"] == first["results"][0]["charged"] == charge(allowance_ms=5000)
    assert [r["id"] for r in again["results"]] == [tokens["id"], compute["id"]]
    assert all("error" not in r for r in again["results"])
    assert again["account"] == first["account"] == get_account(client, shared.auth)


@both_databases
def test_the_same_id_with_another_body_is_rejected_as_an_idempotency_conflict(server, shared):
    client = server.client
    original = compute_event(shared.project_id, 1000)
    first = post_usage(client, shared.auth, original)
    assert first["results"][0]["status"] == "accepted"

    for changed in ({**original, "duration_ms": 2000}, {**original, "agent": "someone-else"},
                    tokens_event(shared.project_id, "gpt-4o", 1, 1, id=original["id"])):
        body = post_usage(client, shared.auth, changed)
        assert_rejection(body["results"][0], "idempotency_conflict")
        assert body["results"][0]["id"] == original["id"]
        assert body["account"] == first["account"]

    # The original is still what the id means.
    assert post_usage(client, shared.auth, original)["results"][0] == {**first["results"][0], "status": "duplicate"}


@both_databases
def test_an_id_repeated_inside_one_batch_is_charged_once(server, shared):
    before = get_account(server.client, shared.auth)
    event = tokens_event(shared.project_id, "claude-haiku-4", 1000, 0)  # 1000 micros
    body = post_usage(server.client, shared.auth, event, event)
    assert [r["status"] for r in body["results"]] == ["accepted", "duplicate"]
    assert body["results"][0]["charged"] == body["results"][1]["charged"] == charge(credit_micros=1000)
    assert credit(before) - credit(body["account"]) == 1000


@both_databases
def test_the_edge_resending_an_event_the_account_reported_is_a_duplicate(server, shared):
    event = compute_event(shared.project_id, 1234)
    first = post_usage(server.client, shared.auth, event)
    edge = {"Authorization": f"Bearer {server.edge_token}"}
    body = post_usage(server.client, edge, {**event, "account_id": shared.account_id})
    assert body["results"][0] == {**first["results"][0], "status": "duplicate"}
    assert get_account(server.client, shared.auth) == first["account"]


def test_a_rejected_event_can_be_sent_again_once_fixed(client, named_account):
    shared = named_account("shared")
    event = compute_event("prj_does_not_exist", 1000)
    assert_rejection(post_usage(client, shared.auth, event)["results"][0], "unknown_project")
    fixed = post_usage(client, shared.auth, {**event, "project_id": shared.project_id})
    assert fixed["results"][0]["status"] == "accepted"


def test_event_ids_are_unique_per_account_not_across_accounts(client, named_account):
    a, b = named_account("shared"), named_account("tenant_b")
    a_before, b_before = get_account(client, a.auth), get_account(client, b.auth)
    shared_id = new_id("same")
    first = post_usage(client, a.auth, compute_event(a.project_id, 1000, id=shared_id))
    second = post_usage(client, b.auth, compute_event(b.project_id, 2000, id=shared_id))
    assert first["results"][0]["status"] == second["results"][0]["status"] == "accepted"
    assert used_ms(get_account(client, a.auth)) - used_ms(a_before) == 1000
    assert used_ms(get_account(client, b.auth)) - used_ms(b_before) == 2000


# -- partial batches ----------------------------------------------------------------------------
def test_a_partial_batch_accepts_the_good_events_and_says_why_the_others_were_rejected(client, named_account):
    shared = named_account("shared")
    before = get_account(client, shared.auth)
    p = shared.project_id
    events = [
        compute_event(p, 1000),
        compute_event(p, "1000"),
        tokens_event(p, "claude-sonnet-4", 1000, 500),
        compute_event("prj_nope", 1000),
        compute_event(p, 1000, timestamp=rfc3339(utcnow() + timedelta(hours=1))),
        tokens_event(p, "gpt-99", 1, 1),
        {"id": new_id("shape"), "kind": "compute"},
        "not an event",
        compute_event(p, 500),
    ]

    body = post_usage(client, shared.auth, *events)

    results = body["results"]
    assert [r["status"] for r in results] == ["accepted", "rejected", "accepted", "rejected", "rejected",
                                              "rejected", "rejected", "rejected", "accepted"]
    assert [r["id"] for r in results[:7]] + [results[8]["id"]] == [e["id"] for e in events[:7]] + [events[8]["id"]]
    assert "duration_ms" in assert_rejection(results[1], "invalid_event")["message"]
    assert assert_rejection(results[3], "unknown_project")
    assert assert_rejection(results[4], "timestamp_in_future")
    assert assert_rejection(results[5], "unknown_model")
    assert assert_rejection(results[6], "invalid_event")
    assert assert_rejection(results[7], "invalid_event")
    assert all("error" not in r for r in (results[0], results[2], results[8]))
    assert used_ms(body["account"]) - used_ms(before) == 1500
    assert credit(before) - credit(body["account"]) == SONNET_1000_IN_500_OUT


# -- timestamps -------------------------------------------------------------------------------
def test_an_event_before_the_period_start_is_accepted_late_and_charged_now(live_server, client, create_account):
    shared = create_account("pro", 0)
    backdate_account(live_server.database_url, shared.account_id, days=40)  # an older account, a new period
    before = get_account(client, shared.auth)
    start = parse_rfc3339(before["period"]["start"])

    body = post_usage(client, shared.auth,
                      compute_event(shared.project_id, 1000, timestamp=rfc3339(start - timedelta(hours=1))),
                      compute_event(shared.project_id, 2000, timestamp=rfc3339(utcnow())),
                      compute_event(shared.project_id, 4000))

    assert [(r["status"], r["late"]) for r in body["results"]] == [
        ("accepted", True), ("accepted", False), ("accepted", False)]
    assert body["results"][0]["charged"] == charge(allowance_ms=1000)  # charged in the current period
    assert used_ms(body["account"]) - used_ms(before) == 7000
    assert body["account"]["period"] == before["period"]


def test_an_event_more_than_5_minutes_ahead_is_rejected_and_one_within_is_accepted(client, named_account):
    shared = named_account("shared")
    before = get_account(client, shared.auth)
    now = utcnow()
    body = post_usage(client, shared.auth,
                      compute_event(shared.project_id, 1000, timestamp=rfc3339(now + timedelta(minutes=10))),
                      compute_event(shared.project_id, 2000, timestamp=rfc3339(now + timedelta(minutes=3))),
                      compute_event(shared.project_id, 3000, timestamp=(now + timedelta(minutes=10)).isoformat()))
    assert_rejection(body["results"][0], "timestamp_in_future")
    assert_rejection(body["results"][2], "timestamp_in_future")
    assert body["results"][1]["status"] == "accepted" and body["results"][1]["late"] is False
    assert used_ms(body["account"]) - used_ms(before) == 2000


def test_a_timestamp_with_an_offset_is_compared_in_utc(client, named_account):
    shared = named_account("shared")
    ahead = (utcnow() + timedelta(minutes=10)).astimezone(timezone(timedelta(hours=-5)))  # 10 min ahead
    behind = utcnow().astimezone(timezone(timedelta(hours=9)))  # a "later" wall clock, and not in the future
    body = post_usage(client, shared.auth, compute_event(shared.project_id, 1000, timestamp=ahead.isoformat()),
                      compute_event(shared.project_id, 1000, timestamp=behind.isoformat()))
    assert_rejection(body["results"][0], "timestamp_in_future")
    assert body["results"][1]["status"] == "accepted"


@both_databases
def test_a_timestamp_before_year_one_in_utc_is_answered_per_event_not_with_a_500(server, shared):
    event = compute_event(shared.project_id, 1000, timestamp="0001-01-01T00:00:00+01:00")
    response = server.client.post(USAGE, json={"events": [event]}, headers=shared.auth)
    assert response.status_code == 200, response.text
    result = response.json()["results"][0]
    if result["status"] == "rejected":
        assert_rejection(result, "invalid_event")
    else:
        assert result["status"] == "accepted" and result["late"] is True, result


def test_a_lower_case_rfc3339_timestamp_is_accepted(client, named_account):
    shared = named_account("shared")
    stamp = rfc3339(utcnow() - timedelta(seconds=1)).replace("T", "t").replace("Z", "z")
    body = post_usage(client, shared.auth, compute_event(shared.project_id, 1000, timestamp=stamp))
    assert body["results"][0]["status"] == "accepted", body["results"][0]


# -- models and key sources -------------------------------------------------------------------
def test_an_unknown_model_on_a_platform_key_is_rejected(client, named_account):
    shared = named_account("shared")
    with unchanged(client, shared):
        body = post_usage(client, shared.auth, tokens_event(shared.project_id, "llama-9000", 10, 10),
                          tokens_event(shared.project_id, "llama-9000", 10, 10, key_source="platform"))
    for result in body["results"]:
        assert "llama-9000" in assert_rejection(result, "unknown_model")["message"]


def test_byok_token_events_cost_no_credit_even_for_unknown_models(client, named_account):
    shared = named_account("shared")
    before = get_account(client, shared.auth)
    body = post_usage(client, shared.auth,
                      tokens_event(shared.project_id, "llama-9000", 10, 10, key_source="byok"),
                      tokens_event(shared.project_id, "claude-opus-4", 1000, 1000, key_source="byok"))
    assert [r["status"] for r in body["results"]] == ["accepted", "accepted"]
    assert [r["charged"] for r in body["results"]] == [ZERO_CHARGE, ZERO_CHARGE]
    assert credit(body["account"]) == credit(before)
