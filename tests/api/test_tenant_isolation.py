"""One account's key never reaches another account, and never learns whether its ids exist."""

from __future__ import annotations

import pytest

from .helpers import (ACCOUNT, CHECK, SUMMARY, assert_error, assert_rejection, compute_event, post_usage,
                      tokens_event, unchanged)


@pytest.fixture
def a_and_b(named_account):
    """A: the target, an account no test may change; B: another customer's key."""
    return named_account("victim"), named_account("tenant_b")


def test_naming_another_accounts_project_looks_exactly_like_a_project_that_does_not_exist(client, a_and_b):
    a, b = a_and_b
    with unchanged(client, a, b):
        body = post_usage(client, b.auth, compute_event(a.project_id, 1000),
                          compute_event("prj_" + "Z" * 20, 1000),
                          tokens_event(a.project_id, "gpt-4o", 10, 10))
    foreign, missing, foreign_tokens = (assert_rejection(r, "unknown_project") for r in body["results"])
    assert foreign == missing == foreign_tokens
    assert a.project_id not in foreign["message"]


def test_the_edge_cannot_charge_one_account_for_another_accounts_project(client, edge_auth, a_and_b):
    a, b = a_and_b
    with unchanged(client, a, b):
        body = post_usage(client, edge_auth, compute_event(a.project_id, 1000, account_id=b.account_id))
    assert_rejection(body["results"][0], "unknown_project")


def test_a_key_naming_another_account_in_the_query_gets_the_same_404_as_an_unknown_account(client, a_and_b):
    a, b = a_and_b
    with unchanged(client, a, b):
        foreign = assert_error(client.get(ACCOUNT, params={"account_id": a.account_id}, headers=b.auth), 404)
        unknown = assert_error(client.get(ACCOUNT, params={"account_id": "acc_" + "Z" * 20}, headers=b.auth), 404)
        assert foreign == unknown
        assert a.account_id not in foreign["message"]
        assert a.email not in client.get(ACCOUNT, params={"account_id": a.account_id}, headers=b.auth).text


def test_a_key_naming_another_account_in_check_or_summary_gets_404(client, a_and_b):
    a, b = a_and_b
    with unchanged(client, a, b):
        assert_error(client.post(CHECK, json={"kind": "compute", "duration_ms": 1, "account_id": a.account_id},
                                 headers=b.auth), 404)
        assert_error(client.get(SUMMARY, params={"from": "2026-01-01", "to": "2026-12-31",
                                                 "account_id": a.account_id}, headers=b.auth), 404)


def test_a_key_naming_another_account_in_an_event_is_rejected_and_charges_no_one(client, a_and_b):
    a, b = a_and_b
    with unchanged(client, a, b):
        body = post_usage(client, b.auth, compute_event(a.project_id, 1000, account_id=a.account_id),
                          compute_event(b.project_id, 1000, account_id=a.account_id))
    for result in body["results"]:
        assert_rejection(result, "invalid_event")
    assert body["account"]["id"] == b.account_id


def test_the_usage_response_shows_only_the_callers_own_account(client, a_and_b):
    a, b = a_and_b
    body = post_usage(client, b.auth, compute_event(a.project_id, 1))
    assert body["account"]["id"] == b.account_id
    assert a.account_id not in str(body)
