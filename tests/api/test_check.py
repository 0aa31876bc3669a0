"""POST /api/v1/check: yes only when the work can be covered in full; it never changes anything."""

from __future__ import annotations

from .helpers import ACCOUNT_KEYS, CHECK, compute_event, get_account, post_usage, unchanged

REASONS = {"ok", "allowance_exhausted", "insufficient_credit", "spend_cap_reached", "account_suspended",
           "over_limit"}


def ask(client, account, **body) -> tuple[bool, str]:
    response = client.post(CHECK, json=body, headers=account.auth)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert set(answer) == {"allowed", "reason", "account"}, answer
    assert type(answer["allowed"]) is bool and answer["reason"] in REASONS, answer
    assert answer["allowed"] == (answer["reason"] == "ok"), answer
    assert set(answer["account"]) == ACCOUNT_KEYS and answer["account"]["id"] == account.account_id
    return answer["allowed"], answer["reason"]


def test_check_answers_for_compute_and_tokens_against_allowance_and_credit(client, named_account):
    account = named_account("victim")  # hobby: 1 h allowance, $1 credit (10,000 s of compute)
    with unchanged(client, account):
        assert ask(client, account, kind="compute", duration_ms=1000) == (True, "ok")
        assert ask(client, account, kind="compute", duration_ms=3_600_000 + 10_000_000) == (True, "ok")
        assert ask(client, account, kind="compute", duration_ms=3_600_000 + 10_001_000) == (
            False, "insufficient_credit")
        assert ask(client, account, kind="tokens", model="claude-opus-4", input_tokens=10_000,
                   output_tokens=0) == (True, "ok")  # 150,000 micros
        assert ask(client, account, kind="tokens", model="claude-opus-4", input_tokens=100_000,
                   output_tokens=0) == (False, "insufficient_credit")  # 1,500,000 micros


def test_check_says_allowance_exhausted_then_over_limit_as_a_hobby_account_runs_out(client, named_account):
    account = named_account("running_out")  # hobby, no credit
    assert ask(client, account, kind="compute", duration_ms=3_600_000) == (True, "ok")
    # One second beyond the hour costs 100 micros; no credit pays for it. (1 ms would cost 0.1 micros,
    # rounded to 0, and is allowed.)
    assert ask(client, account, kind="compute", duration_ms=3_601_000) == (False, "allowance_exhausted")
    assert ask(client, account, kind="compute", duration_ms=3_600_001) == (True, "ok")
    assert ask(client, account, kind="tokens", model="claude-haiku-4", input_tokens=1,
               output_tokens=0) == (False, "insufficient_credit")

    post_usage(client, account.auth, compute_event(account.project_id, 3_600_000))

    assert get_account(client, account.auth)["status"] == "over_limit"
    assert ask(client, account, kind="compute", duration_ms=1) == (False, "over_limit")
    assert ask(client, account, kind="tokens", model="claude-haiku-4", input_tokens=1,
               output_tokens=1) == (False, "over_limit")


def test_check_says_spend_cap_reached_when_pro_overage_would_pass_the_cap(client, named_account):
    account = named_account("pro_no_credit")  # $500 cap, no credit
    assert ask(client, account, kind="tokens", model="claude-opus-4", input_tokens=100_000_000,
               output_tokens=0) == (False, "spend_cap_reached")  # $1,500
    assert ask(client, account, kind="tokens", model="claude-opus-4", input_tokens=1_000_000,
               output_tokens=0) == (True, "ok")  # $15, within the cap


def test_a_suspended_account_is_never_allowed_until_resumed(client, named_account, admin_cli):
    account = named_account("suspended")
    assert ask(client, account, kind="compute", duration_ms=1) == (True, "ok")

    admin_cli("suspend", account.account_id)

    assert get_account(client, account.auth)["status"] == "suspended"
    assert ask(client, account, kind="compute", duration_ms=1) == (False, "account_suspended")
    assert ask(client, account, kind="compute", duration_ms=0) == (False, "account_suspended")
    assert ask(client, account, kind="tokens", model="gpt-4o", input_tokens=1,
               output_tokens=1) == (False, "account_suspended")

    admin_cli("resume", account.account_id)

    assert ask(client, account, kind="compute", duration_ms=1) == (True, "ok")


def test_check_returns_the_same_account_object_as_get_account(client, named_account):
    account = named_account("victim")
    response = client.post(CHECK, json={"kind": "compute", "duration_ms": 1}, headers=account.auth)
    assert response.json()["account"] == get_account(client, account.auth)
