"""End to end on the embedded default: a change in the portal, sync_once, the value in the local file."""

from __future__ import annotations

import hashlib
import sqlite3
from datetime import timedelta

import pytest

from billing_core.services import account_keys, accounts, projects, usage
from billing_core.sync.config import SyncConfig
from billing_core.sync.deliver import reconcile, sync_once
from billing_core.sync.status import target_status
from billing_core.sync.targets import build_targets

from ..conftest import T0
from ..factories import compute, make_account

NOW = T0 + timedelta(minutes=5)


@pytest.fixture
def target(tmp_path):
    (made,) = build_targets(SyncConfig(targets=("file",), file_path=tmp_path / "edge.sqlite"))
    yield made
    made.close()


def sha(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def test_a_new_account_reaches_the_file_with_its_key_account_and_project(kbilling, target, tmp_path):
    created = make_account(kbilling, plan="starter", credit_micros=2_500_000)
    result = sync_once(kbilling, [target], NOW)
    assert result.summary()["errors"] == {}
    values = target.read([f"key:{sha(created.api_key)}", f"account:{created.account_id}",
                          f"project:{created.project_id}"])
    assert values[f"key:{sha(created.api_key)}"] == {"account_id": created.account_id, "project_id": None,
                                                     "scopes": ["*"], "expires_at": None, "status": "active"}
    account = values[f"account:{created.account_id}"]
    assert account == {"status": "active", "plan": "starter", "remaining_allowance_ms": 20 * 3_600_000,
                       "pool_ms": 0, "credit_micros": 2_500_000, "overage_micros": 0, "spend_cap_micros": None,
                       "concurrency_limit": 5, "period_end": "2026-02-15T12:00:00.000000Z",
                       "as_of": "2026-01-15T12:05:00.000000Z"}
    project = values[f"project:{created.project_id}"]
    assert project["account_id"] == created.account_id and project["name"] == "default"
    assert project["status"] == "active" and len(project["hmac_keys"]) == 1
    assert project["hmac_keys"][0]["valid_until"] is None
    # The file is a plain SQLite database any reader on the host can open.
    with sqlite3.connect(tmp_path / "edge.sqlite") as conn:
        assert conn.execute("SELECT count(*) FROM edge_items").fetchone()[0] == 3


def test_revoked_keys_and_deleted_projects_disappear_and_balances_follow_usage(kbilling, target):
    created = make_account(kbilling, credit_micros=1_000_000)
    sync_once(kbilling, [target], NOW)
    key = f"key:{sha(created.api_key)}"
    key_id = account_keys.list_keys(kbilling, created.account_id, limit=5, cursor=None).items[0].id
    account_keys.revoke_key(kbilling, created.account_id, key_id, now=NOW)
    usage.record_usage(kbilling, created.account_id, [compute(created.project_id, 600_000)], now=NOW)
    other = projects.create_project(kbilling, created.account_id, name="second", now=NOW)
    projects.delete_project(kbilling, created.account_id, created.project_id, now=NOW)
    later = NOW + timedelta(seconds=1)
    assert sync_once(kbilling, [target], later).summary()["delivered"] == 4
    assert key not in target.read([key])
    assert f"project:{created.project_id}" not in target.read([f"project:{created.project_id}"])
    assert target.read([f"project:{other.id}"])[f"project:{other.id}"]["name"] == "second"
    account = target.read([f"account:{created.account_id}"])[f"account:{created.account_id}"]
    assert account["remaining_allowance_ms"] == 3_600_000 - 600_000
    assert account["as_of"] == "2026-01-15T12:05:01.000000Z"


def test_a_rotated_hmac_key_lists_both_keys_until_the_grace_ends(kbilling, target):
    created = make_account(kbilling)
    old = projects.reveal_hmac_key(kbilling, created.account_id, created.project_id)
    rotated = projects.rotate_hmac_key(kbilling, created.account_id, created.project_id, now=NOW)
    sync_once(kbilling, [target], NOW)
    item = f"project:{created.project_id}"
    keys = target.read([item])[item]["hmac_keys"]
    assert keys == [{"sha256": sha(rotated.secret), "valid_until": None},
                    {"sha256": sha(old), "valid_until": "2026-01-16T12:05:00.000000Z"}]
    # After the grace, the nightly reconciliation drops the old key (the edge also checks valid_until).
    reconcile(kbilling, [target], NOW + timedelta(hours=25))
    assert target.read([item])[item]["hmac_keys"] == [{"sha256": sha(rotated.secret), "valid_until": None}]


def test_repeated_changes_of_one_item_are_written_once_with_the_latest_value(kbilling, target):
    created = make_account(kbilling)
    sync_once(kbilling, [target], NOW)
    for i in range(5):
        accounts.grant_credit(kbilling, created.account_id, amount_micros=1_000, now=NOW)
    outcome = sync_once(kbilling, [target], NOW).targets[0]
    assert outcome.delivered == 1
    assert target.read([f"account:{created.account_id}"])[f"account:{created.account_id}"]["credit_micros"] == 5_000


def test_delivered_rows_are_pruned_and_status_shows_an_empty_backlog(kbilling, target):
    make_account(kbilling)
    make_account(kbilling)
    status = target_status(kbilling, NOW, ["file"])[0]
    assert status.backlog == 6 and status.lag_s == 300.0 and status.last_success_at is None
    result = sync_once(kbilling, [target], NOW)
    assert result.pruned == 5  # the newest delivered row stays (SQLite would reuse its id otherwise)
    status = target_status(kbilling, NOW, ["file"])[0]
    assert (status.backlog, status.lag_s, status.parked, status.failing) == (0, 0.0, 0, 0)
    assert status.last_success_at == NOW and status.last_reconciled_at == NOW and status.last_error is None
    assert status.to_dict()["last_success_at"] == "2026-01-15T12:05:00Z"


def test_a_change_after_pruning_is_still_delivered(kbilling, target):
    created = make_account(kbilling)
    sync_once(kbilling, [target], NOW)
    sync_once(kbilling, [target], NOW)
    accounts.grant_credit(kbilling, created.account_id, amount_micros=7, now=NOW)
    sync_once(kbilling, [target], NOW)
    assert target.read([f"account:{created.account_id}"])[f"account:{created.account_id}"]["credit_micros"] == 7


def test_reconciliation_repairs_a_file_corrupted_by_hand(kbilling, target, tmp_path):
    a = make_account(kbilling, credit_micros=10)
    b = make_account(kbilling)
    sync_once(kbilling, [target], NOW)
    expected = target.dump()
    with sqlite3.connect(tmp_path / "edge.sqlite") as conn:
        conn.execute("UPDATE edge_items SET value = '{\"status\":\"active\",\"credit_micros\":999}' WHERE key = ?",
                     (f"account:{a.account_id}",))
        conn.execute("DELETE FROM edge_items WHERE key = ?", (f"project:{b.project_id}",))
        conn.execute("INSERT INTO edge_items VALUES ('key:forged', '{}', 'x'), ('mine', 'not json', 'x')")
    result = reconcile(kbilling, [target], NOW)
    assert result.summary() == {"file": {"upserts": 2, "deletes": 1}}
    assert target.dump() == expected
    assert target.read(["mine"]) == {"mine": None}  # not a Tollgate item: left alone
    assert reconcile(kbilling, [target], NOW).summary() == {"file": {}}
