"""Delivery behaviour across targets: outages, isolation, parking, gaps in outbox ids, configuration."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert

from billing_core.db.engine import read_connection, write_connection
from billing_core.db.operations import OutboxRow
from billing_core.services import account_keys, accounts, usage
from billing_core.sync.config import SyncConfig, parse_target_names
from billing_core.sync.deliver import reconcile, sync_once
from billing_core.sync.desired import load_all
from billing_core.sync.progress import PARK_AFTER_ATTEMPTS
from billing_core.sync.status import target_status
from billing_core.sync.targets import build_targets
from billing_core.sync.targets.cloudflare_kv import CloudflareKVTarget
from billing_core.sync.targets.file import FileTarget

from ..conftest import T0
from ..factories import compute, make_account
from .conftest import ACCOUNT, BASE, NAMESPACE, TOKEN

NOW = T0 + timedelta(minutes=5)


def kv_target(fake_kv) -> CloudflareKVTarget:
    return CloudflareKVTarget(fake_kv.client(), base=BASE, account_id=ACCOUNT, api_token=TOKEN,
                              namespace_id=NAMESPACE)


def desired(billing, now):
    with read_connection(billing.engine) as conn:
        return load_all(conn, now=now, catalog=billing.catalog, keyring=billing.keyring)


def without_as_of(state: dict) -> dict:
    return {k: {f: x for f, x in (v or {}).items() if f != "as_of"} for k, v in state.items()}


def test_a_target_down_through_a_thousand_changes_catches_up_and_equals_the_database(kbilling, fake_kv, tmp_path):
    kv, file = kv_target(fake_kv), FileTarget(tmp_path / "edge.sqlite")
    made = [make_account(kbilling, credit_micros=10_000_000) for _ in range(10)]
    sync_once(kbilling, [kv, file], NOW)
    fake_kv.fail_with = 503
    now, changes = NOW, 0
    for i in range(980):
        acc = made[i % len(made)]
        usage.record_usage(kbilling, acc.account_id, [compute(acc.project_id, 1_000 + i, id=f"o{i}")], now=now)
        changes += 1
    for acc in made[:4]:
        key = account_keys.create_key(kbilling, acc.account_id, name="extra", now=now)
        account_keys.revoke_key(kbilling, acc.account_id, key.key.id, now=now)
        accounts.grant_credit(kbilling, acc.account_id, amount_micros=1, now=now)
        accounts.set_suspended(kbilling, acc.account_id, True, now=now)
        accounts.set_plan(kbilling, acc.account_id, "pro", now=now)
        accounts.add_pool(kbilling, acc.account_id, size_ms=1, valid_days=1, now=now)
        changes += 6
    assert changes >= 1000
    for _ in range(5):  # the outage: every attempt fails, the healthy file target keeps up
        now += timedelta(minutes=10)
        result = sync_once(kbilling, [kv, file], now, rand=lambda: 1.0)
        assert list(result.summary()["errors"]) == ["cloudflare_kv"]
        assert "HTTP 503" in result.summary()["errors"]["cloudflare_kv"]
    kv_status, file_status = target_status(kbilling, now, ["cloudflare_kv", "file"])
    assert kv_status.backlog == changes and kv_status.lag_s >= 3000 and "503" in kv_status.last_error
    assert kv_status.attempts == 5 and file_status.backlog == 0
    fake_kv.fail_with = None
    now += timedelta(hours=1)
    result = sync_once(kbilling, [kv, file], now, batch_size=100)  # several batches in one run
    assert result.summary()["errors"] == {}
    truth = desired(kbilling, now)
    assert without_as_of(kv.dump()) == without_as_of(truth) == without_as_of(file.dump())
    kv_status = target_status(kbilling, now, ["cloudflare_kv"])[0]
    assert (kv_status.backlog, kv_status.attempts, kv_status.last_error) == (0, 0, None)
    assert result.pruned >= changes - 1
    file.close()


def test_a_failing_target_does_not_block_a_healthy_one(kbilling, fake_kv, tmp_path):
    kv, file = kv_target(fake_kv), FileTarget(tmp_path / "edge.sqlite")
    fake_kv.fail_with = 500
    created = make_account(kbilling)
    result = sync_once(kbilling, [kv, file], NOW)
    assert list(result.summary()["errors"]) == ["cloudflare_kv"]
    assert f"account:{created.account_id}" in file.dump()
    file_status, kv_status = target_status(kbilling, NOW, ["file", "cloudflare_kv"])
    assert file_status.backlog == 0 and kv_status.backlog == 3
    assert result.pruned == 0  # the failing target still needs the rows
    file.close()


def test_a_target_that_raises_anything_is_recorded_and_the_next_one_still_runs(kbilling, tmp_path):
    class Broken:
        name = "broken"

        def apply(self, upserts, deletes):
            raise ValueError("a bug in a target")

        def dump(self):
            return {}

        def close(self):
            pass

    file = FileTarget(tmp_path / "edge.sqlite")
    make_account(kbilling)
    result = sync_once(kbilling, [Broken(), file], NOW)
    assert result.summary()["errors"] == {"broken": "ValueError: a bug in a target"}
    assert len(file.dump()) == 3
    file.close()


def test_an_item_refused_again_and_again_is_parked_and_shown_until_it_changes(kbilling, fake_kv):
    kv = kv_target(fake_kv)
    created = make_account(kbilling)
    item = f"account:{created.account_id}"
    fake_kv.refuse = {item}
    now = NOW
    outcome = sync_once(kbilling, [kv], now).targets[0]
    assert outcome.refused == 1 and outcome.error is None  # the rest of the batch went through
    assert len(fake_kv.store) == 2
    status = target_status(kbilling, now, ["cloudflare_kv"])[0]
    assert (status.failing, status.parked, status.backlog) == (1, 0, 0)
    for attempt in range(2, PARK_AFTER_ATTEMPTS + 1):
        now += timedelta(hours=1)  # past any item backoff
        sync_once(kbilling, [kv], now)
    status = target_status(kbilling, now, ["cloudflare_kv"])[0]
    assert (status.failing, status.parked) == (0, 1)
    calls = len(fake_kv.requests)
    sync_once(kbilling, [kv], now + timedelta(days=1))
    assert len(fake_kv.requests) == calls  # parked: not retried
    fake_kv.refuse = set()
    accounts.grant_credit(kbilling, created.account_id, amount_micros=5, now=now)  # the item changes again
    sync_once(kbilling, [kv], now + timedelta(days=1))
    status = target_status(kbilling, now, ["cloudflare_kv"])[0]
    assert (status.failing, status.parked) == (0, 0)
    assert json.loads(fake_kv.store[item])["credit_micros"] == 5


def test_reconciliation_clears_a_parked_item(kbilling, fake_kv):
    kv = kv_target(fake_kv)
    created = make_account(kbilling)
    fake_kv.refuse = {f"project:{created.project_id}"}
    now = NOW
    for _ in range(PARK_AFTER_ATTEMPTS):
        sync_once(kbilling, [kv], now)
        now += timedelta(hours=1)
    assert target_status(kbilling, now, ["cloudflare_kv"])[0].parked == 1
    fake_kv.refuse = set()
    assert reconcile(kbilling, [kv], now).summary() == {"cloudflare_kv": {"upserts": 1}}
    assert target_status(kbilling, now, ["cloudflare_kv"])[0].parked == 0


def test_the_cursor_waits_at_a_young_gap_in_outbox_ids_and_passes_an_old_one(kbilling, tmp_path):
    file = FileTarget(tmp_path / "edge.sqlite")
    created = make_account(kbilling)
    sync_once(kbilling, [file], NOW)
    item = f"account:{created.account_id}"
    accounts.grant_credit(kbilling, created.account_id, amount_micros=3, now=NOW)
    with read_connection(kbilling.engine) as conn:
        top = conn.execute(OutboxRow.__table__.select().order_by(OutboxRow.id.desc()).limit(1)).first().id
    with write_connection(kbilling.engine) as conn:  # as if id top+1 were taken by a transaction still open
        conn.execute(insert(OutboxRow.__table__).values(id=top + 2, item=f"key:{'9' * 64}", created_at=NOW))
    sync_once(kbilling, [file], NOW + timedelta(seconds=1))
    assert file.read([item])[item]["credit_micros"] == 3  # rows before the gap went through
    assert target_status(kbilling, NOW, ["file"])[0].backlog == 1  # the row after it waits
    sync_once(kbilling, [file], NOW + timedelta(seconds=11))  # the gap is older than the grace: a rollback
    assert target_status(kbilling, NOW, ["file"])[0].backlog == 0
    file.close()


def test_build_targets_names_the_missing_setting(tmp_path):
    base = SyncConfig(targets=(), file_path=tmp_path / "e.sqlite")
    with pytest.raises(ValueError, match="unknown sync target 'kafka'"):
        build_targets(SyncConfig(targets=("kafka",), file_path=Path("x")))
    with pytest.raises(ValueError, match="TOLLGATE_SYNC_REDIS_URL"):
        build_targets(SyncConfig(targets=("redis",), file_path=Path("x")))
    with pytest.raises(ValueError, match="TOLLGATE_CLOUDFLARE_API_TOKEN"):
        build_targets(SyncConfig(targets=("cloudflare_kv",), file_path=Path("x"), cloudflare_account_id="a",
                                 kv_namespace_id="n"))
    with pytest.raises(ValueError, match="TOLLGATE_CLOUDFLARE_KV_NAMESPACE_ID"):
        build_targets(SyncConfig(targets=("cloudflare_kv",), file_path=Path("x"), cloudflare_account_id="a",
                                 cloudflare_api_token="t"))
    with pytest.raises(ValueError, match="TOLLGATE_CLOUDFLARE_D1_DATABASE_ID"):
        build_targets(SyncConfig(targets=("cloudflare_d1",), file_path=Path("x"), cloudflare_account_id="a",
                                 cloudflare_api_token="t"))
    with pytest.raises(ValueError, match="TOLLGATE_CLOUDFLARE_ACCOUNT_ID"):
        build_targets(SyncConfig(targets=("cloudflare_d1",), file_path=Path("x"), cloudflare_api_token="t",
                                 d1_database_id="d"))
    with pytest.raises(ValueError, match="named twice"):
        parse_target_names("file, file")
    assert parse_target_names(" file , redis ") == ("file", "redis") and parse_target_names("") == ()
    assert build_targets(base) == []
    (file,) = build_targets(SyncConfig(targets=("file",), file_path=tmp_path / "e.sqlite"))
    assert file.name == "file" and file.path == tmp_path / "e.sqlite"
