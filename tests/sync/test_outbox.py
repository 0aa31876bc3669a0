"""Every change the edge must know writes its outbox row in the same transaction as the change."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import select

from billing_core.db.engine import read_session
from billing_core.db.models import AccountKey
from billing_core.db.operations import OutboxRow
from billing_core.services import account_keys, accounts, device, periods, projects, usage
from billing_core.services.journal import Journal

from ..conftest import T0
from ..factories import compute, make_account

NOW = T0 + timedelta(hours=1)


def outbox(billing) -> list[str]:
    with read_session(billing.engine) as session:
        return list(session.execute(select(OutboxRow.item).order_by(OutboxRow.id)).scalars())


def key_hash_of(billing, key_id: str) -> str:
    with read_session(billing.engine) as session:
        return session.get(AccountKey, key_id).key_hash


# Each change: (setup -> context, change(billing, ctx) -> the items it must name).
def _create_key(b, ctx):
    created = account_keys.create_key(b, ctx.account_id, name="ci", now=NOW)
    return [f"key:{key_hash_of(b, created.key.id)}"]


def _revoke_key(b, ctx):
    key_id = account_keys.list_keys(b, ctx.account_id, limit=10, cursor=None).items[0].id
    account_keys.revoke_key(b, ctx.account_id, key_id, now=NOW)
    return [f"key:{key_hash_of(b, key_id)}"]


def _device_key(b, ctx):
    started = device.start_device_authorization(b, client_id="tollgate-cli", requester_ip="127.0.0.1",
                                                requester_agent="t", device_name="laptop", now=NOW)
    device.approve_device(b, started.user_code, user_id="usr_x", account_id=ctx.account_id, now=NOW)
    ctx.arm()  # only the poll that issues the key is the change under test
    secret = device.poll_device_token(b, device_code=started.device_code, client_id="tollgate-cli", now=NOW)
    return [f"key:{hashlib.sha256(secret.encode()).hexdigest()}"]


def _project(fn):
    def change(b, ctx):
        fn(b, ctx)
        return [f"project:{ctx.project_id}"]
    return change


def _create_project(b, ctx):
    created = projects.create_project(b, ctx.account_id, name="second", now=NOW)
    return [f"project:{created.id}"]


def _account(fn):
    def change(b, ctx):
        fn(b, ctx)
        return [f"account:{ctx.account_id}"]
    return change


CHANGES = {
    "account created": None,  # special-cased below: it names its key, project and account
    "key created": _create_key,
    "key revoked": _revoke_key,
    "key issued by the device grant": _device_key,
    "project created": _create_project,
    "project renamed": _project(lambda b, c: projects.rename_project(b, c.account_id, c.project_id, name="new",
                                                                     now=NOW)),
    "project deleted": _project(lambda b, c: projects.delete_project(b, c.account_id, c.project_id, now=NOW)),
    "project HMAC key rotated": _project(lambda b, c: projects.rotate_hmac_key(b, c.account_id, c.project_id,
                                                                              now=NOW)),
    "credit granted": _account(lambda b, c: accounts.grant_credit(b, c.account_id, amount_micros=5, now=NOW)),
    "pool added": _account(lambda b, c: accounts.add_pool(b, c.account_id, size_ms=60_000, valid_days=30, now=NOW)),
    "plan upgraded": _account(lambda b, c: accounts.set_plan(b, c.account_id, "pro", now=NOW)),
    "plan downgrade scheduled": _account(lambda b, c: accounts.set_plan(b, c.account_id, "hobby", now=NOW)),
    "account suspended": _account(lambda b, c: accounts.set_suspended(b, c.account_id, True, now=NOW)),
    "period closed by the job": _account(lambda b, c: periods.run_due_work(b, T0 + timedelta(days=40))),
    "usage recorded": _account(lambda b, c: usage.record_usage(b, c.account_id, [compute(c.project_id, 1000),
                                                                                 compute(c.project_id, 2000)],
                                                               now=NOW)),
}


class Ctx:
    def __init__(self, created, monkeypatch, fail: bool) -> None:
        self.account_id, self.project_id = created.account_id, created.project_id
        self._monkeypatch, self._fail = monkeypatch, fail
        self.armed = False

    def arm(self) -> None:
        """From here on, the transaction fails at its last step (after the outbox row was written)."""
        if self._fail and not self.armed:
            def boom(*_a, **_k):
                raise RuntimeError("the change fails after writing its outbox row")
            self._monkeypatch.setattr(Journal, "flush", boom)
            self._monkeypatch.setattr(usage, "_flush_journal", boom)
            self.armed = True


def _run(kbilling, monkeypatch, name, fail):
    plan = "starter" if "downgrade" in name else "hobby"
    created = make_account(kbilling, plan=plan, credit_micros=1_000_000)
    ctx = Ctx(created, monkeypatch, fail)
    before = outbox(kbilling)
    change = CHANGES[name]
    if name != "key issued by the device grant":
        ctx.arm()
    if fail:
        with pytest.raises(RuntimeError, match="fails after writing"):
            change(kbilling, ctx)
        return before, None, outbox(kbilling)
    expected = change(kbilling, ctx)
    return before, expected, outbox(kbilling)


@pytest.mark.parametrize("name", [n for n in CHANGES if CHANGES[n]])
def test_each_change_writes_its_outbox_row(kbilling, monkeypatch, name):
    before, expected, after = _run(kbilling, monkeypatch, name, fail=False)
    assert after[:len(before)] == before
    assert set(after[len(before):]) >= set(expected), after[len(before):]
    assert len(after) - len(before) <= 3  # one row per item named, not one per statement


@pytest.mark.parametrize("name", [n for n in CHANGES if CHANGES[n]])
def test_a_change_that_rolls_back_writes_no_outbox_row(kbilling, monkeypatch, name):
    before, _, after = _run(kbilling, monkeypatch, name, fail=True)
    assert after == before


def test_creating_an_account_names_its_key_project_and_account(kbilling):
    created = make_account(kbilling)
    with read_session(kbilling.engine) as session:
        key = session.execute(select(AccountKey.key_hash).where(AccountKey.account_id == created.account_id)).scalar()
    assert set(outbox(kbilling)) == {f"key:{key}", f"project:{created.project_id}", f"account:{created.account_id}"}


def test_a_failed_account_creation_writes_nothing(kbilling, monkeypatch):
    monkeypatch.setattr(Journal, "flush", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom")))
    with pytest.raises(RuntimeError):
        make_account(kbilling)
    assert outbox(kbilling) == []


def test_usage_writes_one_row_per_batch_and_none_for_a_batch_of_duplicates(kbilling):
    created = make_account(kbilling, credit_micros=1_000_000)
    start = len(outbox(kbilling))
    events = [compute(created.project_id, 1000, id=f"e{i}") for i in range(50)]
    usage.record_usage(kbilling, created.account_id, events, now=NOW)
    assert outbox(kbilling)[start:] == [f"account:{created.account_id}"]
    usage.record_usage(kbilling, created.account_id, events, now=NOW)  # all duplicates: nothing changed
    assert len(outbox(kbilling)) == start + 1


def test_an_accepted_batch_that_changes_no_balance_still_writes_its_row(kbilling):
    created = make_account(kbilling)
    start = len(outbox(kbilling))
    usage.record_usage(kbilling, created.account_id, [compute(created.project_id, 0)], now=NOW)
    assert outbox(kbilling)[start:] == [f"account:{created.account_id}"]
