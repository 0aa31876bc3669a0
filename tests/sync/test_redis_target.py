"""The Redis target against the real Redis at 127.0.0.1:6379 (db 15, a prefix of its own per test)."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
import redis

from billing_core.services import account_keys, accounts
from billing_core.sync.deliver import reconcile, sync_once
from billing_core.sync.desired import load_all
from billing_core.sync.status import target_status
from billing_core.sync.targets.base import TargetError
from billing_core.sync.targets.redis_target import RedisTarget
from billing_core.db.engine import read_connection

from ..conftest import T0
from ..factories import make_account

NOW = T0 + timedelta(minutes=5)


@pytest.fixture
def target(redis_url, redis_prefix):
    made = RedisTarget(redis_url, prefix=redis_prefix)
    yield made
    made.close()


@pytest.fixture
def raw(redis_url):
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


def desired(billing, now):
    with read_connection(billing.engine) as conn:
        return load_all(conn, now=now, catalog=billing.catalog, keyring=billing.keyring)


def test_changes_reach_redis_as_json_strings_under_the_prefix(kbilling, target, raw, redis_prefix):
    created = make_account(kbilling, credit_micros=42)
    assert sync_once(kbilling, [target], NOW).summary()["errors"] == {}
    key_hash = hashlib.sha256(created.api_key.encode()).hexdigest()
    assert raw.get(f"{redis_prefix}key:{key_hash}") == (
        f'{{"account_id":"{created.account_id}","expires_at":null,"project_id":null,"scopes":["*"],'
        '"status":"active"}')
    assert '"credit_micros":42' in raw.get(f"{redis_prefix}account:{created.account_id}")
    key_id = account_keys.list_keys(kbilling, created.account_id, limit=5, cursor=None).items[0].id
    account_keys.revoke_key(kbilling, created.account_id, key_id, now=NOW)
    accounts.set_suspended(kbilling, created.account_id, True, now=NOW)
    sync_once(kbilling, [target], NOW)
    assert raw.get(f"{redis_prefix}key:{key_hash}") is None
    assert target.read([f"account:{created.account_id}"])[f"account:{created.account_id}"]["status"] == "suspended"
    assert target.dump() == {k: v for k, v in desired(kbilling, NOW).items()}


def test_reconciliation_repairs_redis_corrupted_by_hand(kbilling, target, raw, redis_prefix):
    a = make_account(kbilling, credit_micros=10)
    b = make_account(kbilling)
    sync_once(kbilling, [target], NOW)
    raw.set(f"{redis_prefix}account:{a.account_id}", '{"status":"active","credit_micros":1000000000}')
    raw.delete(f"{redis_prefix}project:{b.project_id}")
    raw.set(f"{redis_prefix}key:{'0' * 64}", '{"account_id":"acc_forged"}')
    raw.set(f"{redis_prefix}account:{b.account_id}", "garbage")
    raw.set(f"{redis_prefix}unrelated", "left alone")
    result = reconcile(kbilling, [target], NOW)
    assert result.summary() == {"redis": {"upserts": 3, "deletes": 1}}
    assert target.dump() == desired(kbilling, NOW)
    assert raw.get(f"{redis_prefix}unrelated") == "left alone"


def test_redis_down_is_a_whole_batch_failure_that_backs_off(kbilling, redis_url):
    make_account(kbilling)
    down = RedisTarget("redis://127.0.0.1:1/15")  # nothing listens on port 1
    with pytest.raises(TargetError, match="redis"):
        down.apply({"account:x": {"a": 1}}, [])
    result = sync_once(kbilling, [down], NOW, rand=lambda: 1.0)
    assert "redis" in result.summary()["errors"]
    status = target_status(kbilling, NOW, ["redis"])[0]
    assert status.backlog == 3 and status.attempts == 1 and "ConnectionError" in status.last_error
    assert status.next_attempt_at == NOW + timedelta(seconds=1)
    assert sync_once(kbilling, [down], NOW).targets[0].skipped == "backing_off"
    down.close()
