"""Account keys at the service level, on SQLite and PostgreSQL: shown once, stored hashed, revoked at once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from billing_core.db.engine import read_session
from billing_core.db.models import AccountKey
from billing_core.errors import Conflict, Invalid, NotFound
from billing_core.keys import ACCOUNT_KEY_PREFIX, hash_key, is_well_formed
from billing_core.services import account_keys
from billing_core.services.auth import authenticate_account_key

from ..conftest import T0
from ..factories import make_account
from .helpers import activity_kinds, activity_texts


def test_a_new_key_is_shown_once_stored_only_as_a_hash_and_works_at_once(billing):
    account = make_account(billing)
    created = account_keys.create_key(billing, account.account_id, name="ci runner", now=T0)
    assert is_well_formed(created.secret, ACCOUNT_KEY_PREFIX)
    assert created.key.to_dict() == {"id": created.key.id, "name": "ci runner", "prefix": created.secret[:12],
                                     "last4": created.secret[-4:], "created_at": "2026-01-15T12:00:00Z",
                                     "last_used_at": None, "revoked_at": None,
                                     "scopes": ["usage:write", "read", "gateway", "manage"], "budget_micros": None,
                                     "budget_reset": "monthly", "models": [], "rpm": None, "tpm": None,
                                     "expires_at": None, "project_id": None, "spend_micros": 0,
                                     "budget_remaining_micros": None}
    with read_session(billing.engine) as session:
        row = session.get(AccountKey, created.key.id)
    assert row.key_hash == hash_key(created.secret)
    principal = authenticate_account_key(billing, created.secret, now=T0)
    assert principal.account_id == account.account_id and principal.key_id == created.key.id
    assert "key_created" in activity_kinds(billing, account.account_id)
    assert created.secret not in activity_texts(billing, account.account_id)


def test_the_list_holds_every_key_newest_first_with_revoked_ones_marked_and_no_secret(billing):
    account = make_account(billing)
    first = account_keys.create_key(billing, account.account_id, name="one", now=T0 + timedelta(minutes=1))
    second = account_keys.create_key(billing, account.account_id, name="two", now=T0 + timedelta(minutes=2))
    account_keys.revoke_key(billing, account.account_id, first.key.id, now=T0 + timedelta(minutes=3))
    page = account_keys.list_keys(billing, account.account_id, limit=50, cursor=None)
    assert [k.name for k in page.items] == ["two", "one", "default"] and page.next_cursor is None
    assert page.items[1].revoked_at == "2026-01-15T12:03:00Z" and page.items[0].revoked_at is None
    listed = str([k.to_dict() for k in page.items])
    assert first.secret not in listed and second.secret not in listed and hash_key(first.secret) not in listed


def test_a_revoked_key_is_refused_at_once_and_revoking_it_again_changes_nothing(billing):
    account = make_account(billing)
    created = account_keys.create_key(billing, account.account_id, name="temp", now=T0)
    revoked = account_keys.revoke_key(billing, account.account_id, created.key.id, now=T0 + timedelta(seconds=1))
    assert authenticate_account_key(billing, created.secret, now=T0 + timedelta(seconds=1)) is None
    again = account_keys.revoke_key(billing, account.account_id, created.key.id, now=T0 + timedelta(hours=1))
    assert again == revoked and again.revoked_at == "2026-01-15T12:00:01Z"
    assert activity_kinds(billing, account.account_id).count("key_revoked") == 1
    assert authenticate_account_key(billing, account.api_key, now=T0) is not None  # the other key still works


def test_another_accounts_key_is_as_unknown_as_one_never_issued_and_stays_valid(billing):
    owner, intruder = make_account(billing), make_account(billing)
    target = account_keys.create_key(billing, owner.account_id, name="target", now=T0)
    for key_id in (target.key.id, "key_" + "Z" * 20, "key\x00", "x" * 300):
        with pytest.raises(NotFound) as refused:
            account_keys.revoke_key(billing, intruder.account_id, key_id, now=T0)
        assert (refused.value.code, refused.value.message) == ("not_found", "No such key.")
    assert authenticate_account_key(billing, target.secret, now=T0) is not None
    assert [k.name for k in account_keys.list_keys(billing, intruder.account_id, limit=50, cursor=None).items] \
        == ["default"]


@pytest.mark.parametrize("name", ["", " ", "k" * 101, "nul\x00", "\ud800"])
def test_a_bad_key_name_is_refused_and_no_key_is_made(billing, name):
    account = make_account(billing)
    with pytest.raises(Invalid) as refused:
        account_keys.create_key(billing, account.account_id, name=name, now=T0)
    assert refused.value.code == "invalid_name"
    assert len(account_keys.list_keys(billing, account.account_id, limit=50, cursor=None).items) == 1


def test_an_account_may_hold_at_most_one_hundred_active_keys(billing, monkeypatch):
    monkeypatch.setattr(account_keys, "MAX_ACTIVE_KEYS", 3)  # the rule, without minting a hundred keys
    account = make_account(billing)
    extra = [account_keys.create_key(billing, account.account_id, name=f"k{i}", now=T0) for i in range(2)]
    with pytest.raises(Conflict) as refused:
        account_keys.create_key(billing, account.account_id, name="over", now=T0)
    assert refused.value.code == "key_limit_reached"
    account_keys.revoke_key(billing, account.account_id, extra[0].key.id, now=T0)
    account_keys.create_key(billing, account.account_id, name="fits", now=T0)
    with read_session(billing.engine) as session:
        count = len(session.execute(select(AccountKey.id).where(AccountKey.account_id == account.account_id)).all())
    assert count == 4
