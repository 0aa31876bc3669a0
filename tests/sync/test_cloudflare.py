"""Cloudflare Workers KV and D1 targets against httpx.MockTransport fakes that check the documented
URL, method, Authorization header and body, and answer like the real APIs (429, 5xx, unsuccessful_keys)."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

import pytest

from billing_core.db.engine import read_connection
from billing_core.services import accounts
from billing_core.sync.config import SyncConfig
from billing_core.sync.deliver import reconcile, sync_once
from billing_core.sync.desired import load_all
from billing_core.sync.targets import build_targets
from billing_core.sync.targets.base import TargetError

from ..conftest import T0
from ..factories import make_account
from .conftest import ACCOUNT, BASE, DATABASE, NAMESPACE, TOKEN

NOW = T0 + timedelta(minutes=5)
KV_URL = f"{BASE}/accounts/{ACCOUNT}/storage/kv/namespaces/{NAMESPACE}"
D1_URL = f"{BASE}/accounts/{ACCOUNT}/d1/database/{DATABASE}/query"


def config(tmp_path, *names):
    return SyncConfig(targets=names, file_path=tmp_path / "edge.sqlite", cloudflare_api_base=BASE,
                      cloudflare_account_id=ACCOUNT, cloudflare_api_token=TOKEN, kv_namespace_id=NAMESPACE,
                      d1_database_id=DATABASE)


@pytest.fixture
def kv(tmp_path, fake_kv):
    (target,) = build_targets(config(tmp_path, "cloudflare_kv"), http=fake_kv.client())
    return target


@pytest.fixture
def d1(tmp_path, fake_d1):
    (target,) = build_targets(config(tmp_path, "cloudflare_d1"), http=fake_d1.client())
    return target


def desired(billing, now):
    with read_connection(billing.engine) as conn:
        return load_all(conn, now=now, catalog=billing.catalog, keyring=billing.keyring)


# -- Workers KV -----------------------------------------------------------------------------------

def test_kv_bulk_write_and_delete_requests_are_the_documented_ones(kv, fake_kv):
    refused = kv.apply({"account:acc_1": {"status": "active", "credit_micros": 5}}, ["key:" + "a" * 64])
    assert refused == {}
    put, delete = fake_kv.requests
    assert (put.method, str(put.url)) == ("PUT", f"{KV_URL}/bulk")
    assert put.headers["authorization"] == f"Bearer {TOKEN}" and put.headers["content-type"] == "application/json"
    assert json.loads(put.content) == [{"key": "account:acc_1", "value": '{"credit_micros":5,"status":"active"}'}]
    assert (delete.method, str(delete.url)) == ("POST", f"{KV_URL}/bulk/delete")
    assert delete.headers["authorization"] == f"Bearer {TOKEN}"
    assert json.loads(delete.content) == ["key:" + "a" * 64]


def test_kv_batches_above_ten_thousand_pairs_are_split(kv, fake_kv):
    upserts = {f"account:acc_{i}": {"n": i} for i in range(10_001)}
    deletes = [f"key:{i:064x}" for i in range(20_001)]
    assert kv.apply(upserts, deletes) == {}
    sizes = [(r.method, len(json.loads(r.content))) for r in fake_kv.requests]
    assert sizes == [("PUT", 10_000), ("PUT", 1), ("POST", 10_000), ("POST", 10_000), ("POST", 1)]
    assert len(fake_kv.store) == 10_001


def test_kv_dump_lists_every_key_then_reads_them_in_bulk(kv, fake_kv):
    fake_kv.store.update({f"account:acc_{i:04d}": json.dumps({"n": i}) for i in range(2_050)})
    fake_kv.store["someone-elses-key"] = "x"
    dumped = kv.dump()
    assert len(dumped) == 2_050 and dumped["account:acc_0007"] == {"n": 7}
    lists = [r for r in fake_kv.requests if r.method == "GET"]
    assert [str(r.url) for r in lists] == [f"{KV_URL}/keys?limit=1000", f"{KV_URL}/keys?limit=1000&cursor=1000",
                                           f"{KV_URL}/keys?limit=1000&cursor=2000"]
    gets = [json.loads(r.content) for r in fake_kv.requests if r.method == "POST"]
    assert all(str(r.url) == f"{KV_URL}/bulk/get" for r in fake_kv.requests if r.method == "POST")
    assert len(gets) == 21 and all(g["type"] == "text" and len(g["keys"]) <= 100 for g in gets)


def test_kv_429_backs_off_at_least_retry_after_then_delivers(kbilling, kv, fake_kv):
    created = make_account(kbilling)
    fake_kv.fail_with, fake_kv.retry_after = 429, "120"
    outcome = sync_once(kbilling, [kv], NOW, rand=lambda: 0.5).targets[0]
    assert "HTTP 429" in outcome.error
    calls = len(fake_kv.requests)
    fake_kv.fail_with = None
    assert sync_once(kbilling, [kv], NOW + timedelta(seconds=119)).targets[0].skipped == "backing_off"
    assert len(fake_kv.requests) == calls  # nothing sent while backing off
    outcome = sync_once(kbilling, [kv], NOW + timedelta(seconds=120)).targets[0]
    assert outcome.error is None and outcome.reconciled
    assert json.loads(fake_kv.store[f"account:{created.account_id}"])["status"] == "active"


def test_kv_5xx_is_retried_on_a_later_sync(kbilling, kv, fake_kv):
    make_account(kbilling)
    sync_once(kbilling, [kv], NOW)
    created = make_account(kbilling, now=NOW)
    fake_kv.fail_with = 503
    assert "HTTP 503" in sync_once(kbilling, [kv], NOW, rand=lambda: 1.0).targets[0].error
    assert f"account:{created.account_id}" not in fake_kv.store
    fake_kv.fail_with = None
    assert sync_once(kbilling, [kv], NOW + timedelta(milliseconds=500), rand=lambda: 1.0).targets[0].skipped
    outcome = sync_once(kbilling, [kv], NOW + timedelta(seconds=1)).targets[0]
    assert outcome.delivered == 3 and f"account:{created.account_id}" in fake_kv.store


def test_kv_other_4xx_fails_without_a_transient_flag(kv, fake_kv):
    fake_kv.fail_with = 403
    with pytest.raises(TargetError) as caught:
        kv.apply({"account:a": {}}, [])
    assert not caught.value.transient and "HTTP 403" in str(caught.value) and "nope" in str(caught.value)


def test_kv_reconciliation_repairs_a_namespace_corrupted_by_hand(kbilling, kv, fake_kv):
    a = make_account(kbilling)
    b = make_account(kbilling)
    sync_once(kbilling, [kv], NOW)
    fake_kv.store[f"account:{a.account_id}"] = '{"status":"active","credit_micros":1}'
    del fake_kv.store[f"project:{b.project_id}"]
    fake_kv.store["key:" + "f" * 64] = '{"account_id":"acc_forged"}'
    fake_kv.store["not-ours"] = "kept"
    assert reconcile(kbilling, [kv], NOW).summary() == {"cloudflare_kv": {"upserts": 2, "deletes": 1}}
    assert kv.dump() == desired(kbilling, NOW) and fake_kv.store["not-ours"] == "kept"


# -- D1 -------------------------------------------------------------------------------------------

def test_d1_upserts_are_parameterised_with_at_most_100_parameters(kbilling, d1, fake_d1):
    for _ in range(30):
        make_account(kbilling, plan="pro", credit_micros=3)
    assert sync_once(kbilling, [d1], NOW).summary()["errors"] == {}
    writes = [r for r in fake_d1.requests if "batch" in json.loads(r.content)]
    assert writes and all((r.method, str(r.url)) == ("POST", D1_URL) for r in fake_d1.requests)
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in fake_d1.requests)
    upserts = [s for s in fake_d1.statements if s["sql"].startswith("INSERT")]
    assert all("?" in s["sql"] and "ON CONFLICT" in s["sql"] and len(s["params"]) <= 100 for s in upserts)
    assert any(len(s["params"]) > 90 for s in upserts)  # statements are filled, not one row each
    row = fake_d1.db.execute("SELECT * FROM edge_accounts LIMIT 1").fetchone()
    assert row["credit_micros"] == 3 and row["spend_cap_micros"] == 500_000_000 and row["concurrency_limit"] == 20
    assert fake_d1.db.execute("SELECT typeof(credit_micros) FROM edge_accounts LIMIT 1").fetchone()[0] == "integer"
    key = fake_d1.db.execute("SELECT * FROM edge_keys LIMIT 1").fetchone()
    assert key["project_id"] is None and json.loads(key["scopes"]) == ["*"]
    assert d1.dump() == desired(kbilling, NOW)


def test_d1_a_revoked_key_and_a_hobby_accounts_null_cap_round_trip(kbilling, d1, fake_d1):
    created = make_account(kbilling)
    sync_once(kbilling, [d1], NOW)
    key_hash = hashlib.sha256(created.api_key.encode()).hexdigest()
    assert fake_d1.db.execute("SELECT count(*) FROM edge_keys WHERE key_hash = ?", (key_hash,)).fetchone()[0] == 1
    from billing_core.services import account_keys
    key_id = account_keys.list_keys(kbilling, created.account_id, limit=5, cursor=None).items[0].id
    account_keys.revoke_key(kbilling, created.account_id, key_id, now=NOW)
    accounts.set_plan(kbilling, created.account_id, "pro", now=NOW)
    sync_once(kbilling, [d1], NOW)
    deletes = [s for s in fake_d1.statements if s["sql"].startswith("DELETE")]
    assert deletes[-1] == {"sql": "DELETE FROM edge_keys WHERE key_hash IN (?)", "params": [key_hash]}
    assert fake_d1.db.execute("SELECT count(*) FROM edge_keys").fetchone()[0] == 0
    assert d1.dump()[f"account:{created.account_id}"]["spend_cap_micros"] == 500_000_000


def test_d1_errors_are_whole_batch_failures(kbilling, d1, fake_d1):
    make_account(kbilling)
    fake_d1.fail_with, fake_d1.retry_after = 429, "30"
    assert "HTTP 429" in sync_once(kbilling, [d1], NOW).targets[0].error
    fake_d1.fail_with = None
    assert sync_once(kbilling, [d1], NOW + timedelta(seconds=31)).targets[0].error is None
    assert d1.dump() == desired(kbilling, NOW + timedelta(seconds=31))


def test_d1_reconciliation_repairs_tables_corrupted_by_hand(kbilling, d1, fake_d1):
    a = make_account(kbilling)
    b = make_account(kbilling)
    sync_once(kbilling, [d1], NOW)
    fake_d1.db.execute("UPDATE edge_accounts SET status = 'active', credit_micros = 10 WHERE account_id = ?",
                       (a.account_id,))
    fake_d1.db.execute("DELETE FROM edge_projects WHERE project_id = ?", (b.project_id,))
    fake_d1.db.execute("INSERT INTO edge_keys (key_hash, account_id, project_id, scopes, status) "
                       "VALUES (?, 'acc_forged', NULL, '[\"*\"]', 'active')", ("e" * 64,))
    assert reconcile(kbilling, [d1], NOW).summary() == {"cloudflare_d1": {"upserts": 2, "deletes": 1}}
    assert d1.dump() == desired(kbilling, NOW)
