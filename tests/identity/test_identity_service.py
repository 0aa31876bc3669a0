"""Sign-up, password sign-in, sessions and attempt limits against a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from billing_core.db.engine import read_session
from billing_core.db.identity import User, WebSession
from billing_core.db.models import Account, Activity
from billing_core.errors import Conflict, Invalid
from billing_core.services import accounts
from billing_core.services.identity import (SIGN_IN_PER_DEVICE, SIGN_IN_PER_EMAIL, SIGN_IN_PER_EMAIL_IP,
                                            SIGN_IN_PER_IP, BadCredentials, Limit, RateLimited, authenticate_session,
                                            create_user, end_session, sign_in, sign_up)

from ..conftest import T0
from .conftest import PASSWORD, TTL, UA_FIREFOX, UA_SAFARI


def _sign_up(billing, limiter, email="ada@example.com", password=PASSWORD, now=T0, **kw):
    kw.setdefault("ip", "203.0.113.7")
    kw.setdefault("user_agent", UA_FIREFOX)
    return sign_up(billing, limiter, email=email, password=password, now=now, ttl=TTL, **kw)


def _sign_in(billing, limiter, email="ada@example.com", password=PASSWORD, now=T0, **kw):
    kw.setdefault("ip", "203.0.113.7")
    kw.setdefault("user_agent", UA_FIREFOX)
    return sign_in(billing, limiter, email=email, password=password, now=now, ttl=TTL, **kw)


def _rows(billing, model, *where):
    with read_session(billing.engine) as session:
        return session.execute(select(model).where(*where)).scalars().all()


def test_sign_up_creates_a_hobby_account_its_user_and_a_live_session(billing, limiter):
    started = _sign_up(billing, limiter, email="  Ada@Example.com ", name="Ada  Lovelace")
    assert started.user.email == "ada@example.com" and started.user.name == "Ada Lovelace"
    assert started.expires_at == T0 + TTL and started.new_device
    [account] = _rows(billing, Account, Account.id == started.user.account_id)
    assert account.plan == "hobby" and account.email == "ada@example.com"
    assert authenticate_session(billing, started.token, now=T0 + timedelta(minutes=1)) == started.user


def test_the_stored_password_is_an_argon2_hash_never_the_password(billing, limiter):
    _sign_up(billing, limiter)
    [user] = _rows(billing, User, User.email == "ada@example.com")
    assert user.password_hash.startswith("$argon2id$") and PASSWORD not in user.password_hash


def test_the_session_row_keeps_only_the_tokens_sha256(billing, limiter):
    started = _sign_up(billing, limiter)
    [row] = _rows(billing, WebSession, WebSession.user_id == started.user.user_id)
    assert row.token_hash != started.token and len(row.token_hash) == 64
    assert row.ip == "203.0.113.7" and row.user_agent == UA_FIREFOX and row.expires_at == T0 + TTL


@pytest.mark.parametrize("email, password, code", [
    ("not-an-email", PASSWORD, "invalid_email"),
    ("ada@example.com", "short", "password_too_short"),
    ("ada@example.com", "onlylowercaseletters", "password_one_kind"),
    ("ada@example.com", "ada@example.com 1", "password_contains_email"),
])
def test_sign_up_refuses_bad_input_and_creates_nothing(billing, limiter, email, password, code):
    with pytest.raises(Invalid) as refused:
        _sign_up(billing, limiter, email=email, password=password)
    assert refused.value.code == code
    assert _rows(billing, User) == [] and _rows(billing, Account) == []


def test_sign_up_with_a_taken_email_is_a_conflict(billing, limiter):
    _sign_up(billing, limiter)
    with pytest.raises(Conflict) as refused:
        _sign_up(billing, limiter, email="ADA@example.com")
    assert refused.value.code == "email_taken"
    assert len(_rows(billing, Account)) == 1


def test_sign_in_with_the_right_password_starts_a_session(billing, limiter):
    _sign_up(billing, limiter)
    started = _sign_in(billing, limiter, email="ADA@example.com", now=T0 + timedelta(hours=1))
    assert authenticate_session(billing, started.token, now=T0 + timedelta(hours=2)).email == "ada@example.com"


def test_a_wrong_password_and_an_unknown_email_get_the_same_answer(billing, limiter):
    _sign_up(billing, limiter)
    with pytest.raises(BadCredentials) as wrong:
        _sign_in(billing, limiter, password="correct horse 1844")
    with pytest.raises(BadCredentials) as unknown:
        _sign_in(billing, limiter, email="nobody@example.com")
    assert wrong.value.message == unknown.value.message and wrong.value.status == 401


def test_an_expired_session_is_refused(billing, limiter):
    started = _sign_up(billing, limiter)
    assert authenticate_session(billing, started.token, now=T0 + TTL - timedelta(seconds=1)) is not None
    assert authenticate_session(billing, started.token, now=T0 + TTL) is None


def test_a_revoked_session_is_refused_and_others_live_on(billing, limiter):
    first = _sign_up(billing, limiter)
    second = _sign_in(billing, limiter, user_agent=UA_SAFARI)
    end_session(billing, first.token, now=T0 + timedelta(minutes=5))
    assert authenticate_session(billing, first.token, now=T0 + timedelta(minutes=6)) is None
    assert authenticate_session(billing, second.token, now=T0 + timedelta(minutes=6)) is not None
    [row] = _rows(billing, WebSession, WebSession.revoked_at.is_not(None))
    assert row.revoked_at == T0 + timedelta(minutes=5)


def test_an_unknown_or_empty_token_is_refused(billing):
    assert authenticate_session(billing, "made-up-token", now=T0) is None
    assert authenticate_session(billing, "", now=T0) is None


def test_only_a_sign_in_from_a_new_device_writes_an_activity_row(billing, limiter):
    started = _sign_up(billing, limiter)
    again = _sign_in(billing, limiter, now=T0 + timedelta(hours=1))
    phone = _sign_in(billing, limiter, user_agent=UA_SAFARI, now=T0 + timedelta(hours=2))
    assert (started.new_device, again.new_device, phone.new_device) == (True, False, True)
    texts = [a.text for a in sorted(_rows(billing, Activity, Activity.kind == "signed_in"), key=lambda a: a.id)]
    assert texts == ["New sign-in from Firefox on Linux (203.0.113.7).", "New sign-in from Safari on iOS (203.0.113.7)."]


def test_five_attempts_from_one_address_at_one_email_limit_that_pair_with_a_retry_time(sqlite_billing, limiter):
    _sign_up(sqlite_billing, limiter)
    for _ in range(SIGN_IN_PER_EMAIL_IP.attempts):
        with pytest.raises(BadCredentials):
            _sign_in(sqlite_billing, limiter, password="wrong password 1", ip="198.51.100.1")
    with pytest.raises(RateLimited) as limited:  # even the right password, from that address
        _sign_in(sqlite_billing, limiter, ip="198.51.100.1", now=T0 + timedelta(minutes=1))
    assert limited.value.status == 429 and 0 < limited.value.retry_after_s <= 15 * 60
    assert "Try again in 14 minutes" in limited.value.message
    assert _sign_in(sqlite_billing, limiter, ip="192.0.2.1").user.email == "ada@example.com"
    assert _sign_in(sqlite_billing, limiter, ip="198.51.100.1",
                    now=T0 + SIGN_IN_PER_EMAIL_IP.window).user.email == "ada@example.com"


def test_failures_for_one_email_from_many_addresses_limit_browsers_it_does_not_know(sqlite_billing, limiter):
    started = _sign_up(sqlite_billing, limiter)
    for i in range(SIGN_IN_PER_EMAIL.attempts):
        with pytest.raises(BadCredentials):
            _sign_in(sqlite_billing, limiter, password="wrong password 1", ip=f"198.51.100.{i}")
    with pytest.raises(RateLimited):  # a stranger's next guess, and the owner on a browser never used
        _sign_in(sqlite_billing, limiter, ip="192.0.2.1")
    # A browser that signed in before (its device cookie's id) is counted on its own, not per email.
    assert _sign_in(sqlite_billing, limiter, ip="192.0.2.1", device="dev-1").user == started.user


def test_a_known_browser_is_limited_on_its_own(sqlite_billing, limiter):
    _sign_up(sqlite_billing, limiter)
    for i in range(SIGN_IN_PER_DEVICE.attempts):
        with pytest.raises(BadCredentials):
            _sign_in(sqlite_billing, limiter, password="wrong password 1", ip=f"198.51.100.{i}", device="dev-1")
    with pytest.raises(RateLimited):
        _sign_in(sqlite_billing, limiter, ip="192.0.2.1", device="dev-1")


def test_failures_from_one_address_across_emails_limit_that_address_only(sqlite_billing, limiter):
    _sign_up(sqlite_billing, limiter)
    for i in range(SIGN_IN_PER_IP.attempts):
        with pytest.raises(BadCredentials):
            _sign_in(sqlite_billing, limiter, email=f"guess{i}@example.com", ip="198.51.100.9")
    with pytest.raises(RateLimited):
        _sign_in(sqlite_billing, limiter, ip="198.51.100.9")
    assert _sign_in(sqlite_billing, limiter, ip="198.51.100.10").user.email == "ada@example.com"


def test_a_success_clears_the_pairs_failures_but_not_the_addresss(sqlite_billing, limiter):
    _sign_up(sqlite_billing, limiter)
    for _ in range(SIGN_IN_PER_EMAIL_IP.attempts - 1):
        with pytest.raises(BadCredentials):
            _sign_in(sqlite_billing, limiter, password="wrong password 1")
    _sign_in(sqlite_billing, limiter)
    for _ in range(SIGN_IN_PER_EMAIL_IP.attempts - 1):
        with pytest.raises(BadCredentials):
            _sign_in(sqlite_billing, limiter, password="wrong password 1")
    assert _sign_in(sqlite_billing, limiter).user.email == "ada@example.com"
    counted = Limit(2 * SIGN_IN_PER_EMAIL_IP.attempts, SIGN_IN_PER_IP.window)  # every attempt, successes too
    assert limiter.retry_after("sign-in:ip:203.0.113.7", counted, T0) > 0


def test_an_operator_made_account_gets_a_password_user(billing):
    created = accounts.create_account(billing, email="ops@example.com", now=T0)
    user = create_user(billing, account_id=created.account_id, email="ops@example.com", password=PASSWORD, now=T0)
    assert user.account_id == created.account_id
    with pytest.raises(Invalid):
        create_user(billing, account_id=created.account_id, email="ops2@example.com", password="weak", now=T0)


def test_an_unknown_email_still_pays_for_one_argon2_verification(sqlite_billing, limiter, monkeypatch):
    from billing_core.passwords import DUMMY_HASH
    from billing_core.services import identity

    checked = []
    real = identity.verify_password
    monkeypatch.setattr(identity, "verify_password", lambda stored, pw: checked.append(stored) or real(stored, pw))
    with pytest.raises(BadCredentials):
        _sign_in(sqlite_billing, limiter, email="nobody@example.com")
    assert checked == [DUMMY_HASH]
