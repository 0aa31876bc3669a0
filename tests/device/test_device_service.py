"""The device authorization service on SQLite and PostgreSQL, with time passed in as `now`."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from billing_core.db.engine import read_session
from billing_core.db.identity import DeviceGrant
from billing_core.db.models import AccountKey, Activity
from billing_core.errors import ServiceError
from billing_core.keys import ACCOUNT_KEY_PREFIX, is_well_formed
from billing_core.services.auth import authenticate_account_key
from billing_core.services.device import (DeviceError, UnknownUserCode, UserCodeExpired, UserCodeUsed,
                                          approve_device, deny_device, generate_user_code, lookup_user_code,
                                          normalize_user_code, poll_device_token, start_device_authorization)

from ..conftest import T0
from ..factories import make_account

CLIENT = "tollgate-cli"
USER_CODE = re.compile(r"^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$")


def start(billing, now=T0, **kw):
    args = dict(client_id=CLIENT, requester_ip="203.0.113.7", requester_agent="tollgate-cli",
                device_name="laptop", now=now)
    return start_device_authorization(billing, **{**args, **kw})


def poll(billing, started, now, client_id=CLIENT):
    return poll_device_token(billing, device_code=started.device_code, client_id=client_id, now=now)


def poll_error(billing, started, now, **kw) -> str:
    with pytest.raises(DeviceError) as caught:
        poll(billing, started, now, **kw)
    assert caught.value.status == 400 and caught.value.message
    return caught.value.code


def grant_of(billing, started) -> DeviceGrant:
    digest = hashlib.sha256(started.device_code.encode()).hexdigest()
    with read_session(billing.engine) as session:
        return session.execute(select(DeviceGrant).where(DeviceGrant.device_code_hash == digest)).scalar_one()


def test_user_codes_are_two_groups_of_four_consonants_from_the_rfc_alphabet():
    codes = {generate_user_code() for _ in range(2000)}
    assert all(USER_CODE.match(code) for code in codes)
    assert len(codes) > 1990  # random, not a sequence
    assert set("".join(codes).replace("-", "")) == set("BCDFGHJKLMNPQRSTVWXZ")


@pytest.mark.parametrize("typed", ["bcdf-ghjk", " BCDF GHJK ", "BCDFGHJK", "bc df-gh jk", "BCDF\u2013GHJK"])
def test_a_typed_user_code_is_normalised(typed):
    assert normalize_user_code(typed) == "BCDF-GHJK"


@pytest.mark.parametrize("typed", ["", "BCDF-GHJ", "BCDF-GHJKL", "ABCD-EFGH", "BCDF-GHJ1", None, 12345678, "B" * 100])
def test_a_user_code_outside_the_alphabet_or_length_is_no_code(typed):
    assert normalize_user_code(typed) is None


def test_start_returns_codes_and_stores_only_the_hash_of_the_device_code(billing):
    started = start(billing)
    assert USER_CODE.match(started.user_code)
    assert started.expires_in == 600 and started.interval == 5
    assert len(started.device_code) >= 40
    grant = grant_of(billing, started)
    assert grant.device_code_hash == hashlib.sha256(started.device_code.encode()).hexdigest()
    assert started.device_code not in repr(grant.model_dump())
    assert grant.status == "pending" and grant.expires_at == T0 + timedelta(minutes=10)


def test_an_unknown_client_cannot_start_or_poll(billing):
    with pytest.raises(DeviceError) as caught:
        start(billing, client_id="someone-else")
    assert caught.value.code == "invalid_client"
    started = start(billing)
    assert poll_error(billing, started, T0 + timedelta(seconds=5), client_id="someone-else") == "invalid_client"


def test_lookup_finds_the_request_by_any_spelling_of_its_code(billing):
    started = start(billing, device_name="build box")
    found = lookup_user_code(billing, started.user_code.lower().replace("-", " "), T0 + timedelta(seconds=30))
    assert found is not None and found.user_code == started.user_code and found.status == "pending"
    assert (found.device_name, found.requester_ip, found.client_id) == ("build box", "203.0.113.7", CLIENT)
    assert found.expires_at == T0 + timedelta(minutes=10)
    assert lookup_user_code(billing, "BCDF-GHJK" if started.user_code != "BCDF-GHJK" else "CCCC-CCCC", T0) is None
    assert lookup_user_code(billing, "not a code", T0) is None
    assert lookup_user_code(billing, started.user_code, T0 + timedelta(minutes=10)).status == "expired"


def test_polling_before_approval_says_pending_then_approval_hands_out_a_key_once(billing):
    account = make_account(billing)
    started = start(billing)
    assert poll_error(billing, started, T0 + timedelta(seconds=5)) == "authorization_pending"
    approve_device(billing, started.user_code, user_id="usr_1", account_id=account.account_id,
                   now=T0 + timedelta(seconds=20))
    key = poll(billing, started, T0 + timedelta(seconds=25))
    assert is_well_formed(key, ACCOUNT_KEY_PREFIX) and key != account.api_key
    principal = authenticate_account_key(billing, key, now=T0 + timedelta(seconds=26))
    assert principal is not None and principal.account_id == account.account_id
    assert poll_error(billing, started, T0 + timedelta(seconds=35)) == "invalid_grant"  # single use
    with read_session(billing.engine) as session:
        row = session.get(AccountKey, principal.key_id)
        kinds = session.execute(select(Activity.kind).where(Activity.account_id == account.account_id)).scalars().all()
    assert row.name == "CLI on laptop"
    assert {"device_approved", "key_created"} <= set(kinds)
    grant = grant_of(billing, started)
    assert grant.status == "used" and grant.account_key_id == principal.key_id


def test_polling_faster_than_the_interval_slows_down_and_adds_five_seconds(billing):
    started = start(billing)
    assert poll_error(billing, started, T0 + timedelta(seconds=5)) == "authorization_pending"
    assert poll_error(billing, started, T0 + timedelta(seconds=9)) == "slow_down"
    assert grant_of(billing, started).interval_s == 10
    # The longer interval holds from now on: 5 s later is still too soon.
    assert poll_error(billing, started, T0 + timedelta(seconds=14)) == "slow_down"
    assert grant_of(billing, started).interval_s == 15
    assert poll_error(billing, started, T0 + timedelta(seconds=29)) == "authorization_pending"


def test_a_request_expires_after_ten_minutes(billing):
    account = make_account(billing)
    started = start(billing)
    assert poll_error(billing, started, T0 + timedelta(minutes=9, seconds=59)) == "authorization_pending"
    assert poll_error(billing, started, T0 + timedelta(minutes=10)) == "expired_token"
    with pytest.raises(UserCodeExpired) as caught:
        approve_device(billing, started.user_code, user_id="usr_1", account_id=account.account_id,
                       now=T0 + timedelta(minutes=10))
    assert "expired" in caught.value.message


def test_an_approved_request_not_collected_in_time_expires_too(billing):
    account = make_account(billing)
    started = start(billing)
    approve_device(billing, started.user_code, user_id="usr_1", account_id=account.account_id,
                   now=T0 + timedelta(minutes=1))
    assert poll_error(billing, started, T0 + timedelta(minutes=11)) == "expired_token"


def test_a_denied_request_answers_access_denied_and_cannot_be_approved(billing):
    account = make_account(billing)
    started = start(billing)
    deny_device(billing, started.user_code, now=T0 + timedelta(seconds=10))
    assert poll_error(billing, started, T0 + timedelta(seconds=15)) == "access_denied"
    with pytest.raises(UserCodeUsed):
        approve_device(billing, started.user_code, user_id="usr_1", account_id=account.account_id,
                       now=T0 + timedelta(seconds=20))
    assert lookup_user_code(billing, started.user_code, T0 + timedelta(seconds=20)).status == "denied"


def test_a_code_is_approved_once(billing):
    account = make_account(billing)
    started = start(billing)
    approve_device(billing, started.user_code, user_id="usr_1", account_id=account.account_id, now=T0)
    with pytest.raises(UserCodeUsed) as caught:
        approve_device(billing, started.user_code, user_id="usr_1", account_id=account.account_id, now=T0)
    assert "already" in caught.value.message
    with pytest.raises(UserCodeUsed):
        deny_device(billing, started.user_code, now=T0)


@pytest.mark.parametrize("code", ["BCDF-GHJK", "nonsense", ""])
def test_approving_an_unknown_code_says_so_for_a_person(billing, code):
    account = make_account(billing)
    with pytest.raises(UnknownUserCode) as caught:
        approve_device(billing, code, user_id="usr_1", account_id=account.account_id, now=T0)
    assert isinstance(caught.value, ServiceError) and caught.value.status == 404 and "code" in caught.value.message


@pytest.mark.parametrize("device_code", ["", "x" * 10_000, "not-a-device-code"])
def test_an_unknown_or_absurd_device_code_is_invalid_grant(billing, device_code):
    with pytest.raises(DeviceError) as caught:
        poll_device_token(billing, device_code=device_code, client_id=CLIENT, now=T0)
    assert caught.value.code == "invalid_grant"


def test_a_device_name_longer_than_a_key_name_allows_is_refused(billing):
    with pytest.raises(DeviceError) as caught:
        start(billing, device_name="h" * 101)
    assert caught.value.code == "invalid_request"
    assert start(billing, device_name="h" * 100).user_code


def test_requests_dead_for_a_day_are_pruned_when_a_new_one_starts(billing):
    old = start(billing)
    start(billing, now=T0 + timedelta(minutes=10) + timedelta(days=1, seconds=1))
    assert lookup_user_code(billing, old.user_code, T0 + timedelta(days=2)) is None


def test_concurrent_polls_of_an_approved_request_get_one_key_between_them(billing):
    from concurrent.futures import ThreadPoolExecutor

    account = make_account(billing)
    started = start(billing)
    approve_device(billing, started.user_code, user_id="usr_1", account_id=account.account_id, now=T0)

    def attempt(_):
        try:
            return poll(billing, started, T0 + timedelta(seconds=6))
        except DeviceError as exc:
            return exc.code

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(attempt, range(8)))
    keys = [o for o in outcomes if o.startswith(ACCOUNT_KEY_PREFIX)]
    assert len(keys) == 1 and sorted(set(outcomes) - set(keys)) == ["invalid_grant"]
