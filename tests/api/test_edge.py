"""The operator's edge token: it acts for the account it names, and must name one."""

from __future__ import annotations

from .helpers import (ACCOUNT, CHECK, SUMMARY, assert_error, assert_rejection, charge, compute_event,
                      get_account, post_usage, tokens_event, unchanged)


def test_the_edge_reports_usage_for_the_account_named_in_each_event(client, edge_auth, named_account):
    a, b = named_account("shared"), named_account("tenant_b")
    a_before, b_before = get_account(client, a.auth), get_account(client, b.auth)

    body = post_usage(client, edge_auth,
                      compute_event(a.project_id, 1500, account_id=a.account_id),
                      tokens_event(b.project_id, "claude-haiku-4", 1000, 0, account_id=b.account_id))

    assert [r["status"] for r in body["results"]] == ["accepted", "accepted"]
    assert body["results"][0]["charged"] == charge(allowance_ms=1500)
    assert body["results"][1]["charged"] == charge(credit_micros=1000)
    a_after, b_after = get_account(client, a.auth), get_account(client, b.auth)
    assert a_after["allowance"]["used_ms"] - a_before["allowance"]["used_ms"] == 1500
    assert b_before["credit"]["balance_micros"] - b_after["credit"]["balance_micros"] == 1000


def test_the_edge_gets_the_named_accounts_view_back_after_reporting(client, edge_auth, named_account):
    account = named_account("shared")
    body = post_usage(client, edge_auth, compute_event(account.project_id, 10, account_id=account.account_id))
    assert body["account"] == get_account(client, account.auth)


def test_the_edge_reads_an_account_by_id(client, edge_auth, named_account):
    account = named_account("victim")
    assert get_account(client, edge_auth, account_id=account.account_id) == get_account(client, account.auth)


def test_the_edge_must_name_the_account_on_every_endpoint(client, edge_auth, named_account):
    account = named_account("victim")
    with unchanged(client, account):
        for response in (client.get(ACCOUNT, headers=edge_auth),
                         client.post(CHECK, json={"kind": "compute", "duration_ms": 1}, headers=edge_auth),
                         client.get(SUMMARY, params={"from": "2026-01-01", "to": "2026-01-31"}, headers=edge_auth)):
            error = assert_error(response, 422)
            assert "account_id" in error["message"]

        body = post_usage(client, edge_auth, compute_event(account.project_id, 1000))
        assert "account_id" in assert_rejection(body["results"][0], "invalid_event")["message"]


def test_the_edge_naming_an_unknown_account_gets_not_found(client, edge_auth):
    assert_error(client.get(ACCOUNT, params={"account_id": "acc_doesnotexist"}, headers=edge_auth), 404)
    assert_error(client.post(CHECK, json={"kind": "compute", "duration_ms": 1, "account_id": "acc_doesnotexist"},
                             headers=edge_auth), 404)
    body = post_usage(client, edge_auth, compute_event("prj_x", 1, account_id="acc_doesnotexist"))
    assert body["results"][0]["status"] == "rejected"
    assert body["results"][0]["charged"] == charge()


def test_the_edge_checks_for_the_named_account(client, edge_auth, named_account):
    account = named_account("victim")
    response = client.post(CHECK, json={"kind": "compute", "duration_ms": 1000, "account_id": account.account_id},
                           headers=edge_auth)
    assert response.status_code == 200
    assert response.json()["allowed"] is True
    assert response.json()["account"]["id"] == account.account_id


def test_a_wrong_edge_token_is_refused(client, edge_token, named_account):
    account = named_account("victim")
    for token in (edge_token[:-1], edge_token + "x", edge_token.upper(), edge_token[::-1], "x" * len(edge_token)):
        headers = {"Authorization": f"Bearer {token}"}
        assert_error(client.get(ACCOUNT, params={"account_id": account.account_id}, headers=headers), 401)
