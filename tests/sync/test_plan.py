"""The pure sync plan, with dicts: reconciliation, batches, gaps in outbox ids, backoff."""

from __future__ import annotations

import dataclasses

import pytest

from billing_core.sync.plan import (SyncPlan, backoff_s, chunks, contiguous_end, decode_value, encode_value,
                                    is_item, plan_batch, plan_sync, split_item)

A = {"status": "active", "credit_micros": 5, "as_of": "2026-01-01T00:00:00.000000Z"}
K = {"account_id": "acc_1", "project_id": None, "scopes": ["*"], "status": "active"}


def test_reconciliation_of_equal_states_does_nothing():
    plan = plan_sync({"account:a": A, "key:h": K}, {"account:a": dict(A), "key:h": dict(K)})
    assert plan == SyncPlan({}, ()) and len(plan) == 0


def test_reconciliation_writes_missing_and_changed_items_and_deletes_extra_ones():
    desired = {"account:a": A, "key:h": K, "project:p": {"name": "x"}}
    current = {"account:a": {**A, "credit_micros": 4}, "key:gone": K, "project:p": {"name": "x"}}
    plan = plan_sync(desired, current)
    assert dict(plan.upserts) == {"account:a": A, "key:h": K}
    assert plan.deletes == ("key:gone",)


def test_a_value_differing_only_in_as_of_is_not_rewritten():
    assert plan_sync({"account:a": A}, {"account:a": {**A, "as_of": "2025-12-31T00:00:00Z"}}).upserts == {}


def test_a_corrupted_value_at_the_target_is_rewritten():
    assert plan_sync({"key:h": K}, {"key:h": None}).upserts == {"key:h": K}


def test_names_that_are_not_tollgate_items_are_left_alone():
    plan = plan_sync({}, {"other:thing": {"x": 1}, "config": {"y": 2}, "account:z": A})
    assert plan.deletes == ("account:z",)


def test_a_batch_coalesces_repeated_items_and_deletes_those_without_a_value():
    items = ["account:a", "key:h", "account:a", "key:revoked", "account:a", "project:p"]
    plan = plan_batch(items, {"account:a": A, "key:h": K, "project:p": None})
    assert list(plan.upserts) == ["account:a", "key:h"]
    assert plan.deletes == ("key:revoked", "project:p")
    assert len(plan) == 4 and set(plan.items) == {"account:a", "key:h", "key:revoked", "project:p"}


@pytest.mark.parametrize(("rows", "expected"), [
    ([], 10),
    ([(11, 0), (12, 0), (13, 0)], 13),
    ([(11, 0), (13, 0)], 11),  # 12 may still commit: stop before it
    ([(12, 0)], 10),
    ([(11, 0), (13, 30.0)], 13),  # the row after the hole is old: the hole was a rollback
    ([(11, 0), (13, 30.0), (15, 1.0)], 13),
])
def test_the_cursor_stops_before_a_young_gap_in_ids(rows, expected):
    assert contiguous_end(10, rows, gap_grace_s=10.0) == expected


def test_backoff_grows_exponentially_up_to_the_cap_with_full_jitter():
    top = [backoff_s(n, base=1.0, cap=300.0, rand=lambda: 1.0) for n in range(1, 12)]
    assert top == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]
    assert backoff_s(5, base=1.0, cap=300.0, rand=lambda: 0.0) == 0.0
    assert backoff_s(5, base=1.0, cap=300.0, rand=lambda: 0.5) == 8.0
    assert backoff_s(0, base=1.0, cap=300.0, rand=lambda: 1.0) == 0.0
    assert backoff_s(10_000, base=1.0, cap=300.0, rand=lambda: 1.0) == 300.0


def test_item_names_and_values_round_trip():
    assert split_item("key:abc") == ("key", "abc") and split_item("account:acc_1") == ("account", "acc_1")
    assert split_item("nope:x") == ("", "nope:x") and split_item("key:") == ("", "key:")
    assert is_item("project:p") and not is_item("tollgate")
    text = encode_value({"b": 1, "a": [1, None]})
    assert text == '{"a":[1,null],"b":1}' and decode_value(text) == {"a": [1, None], "b": 1}
    assert decode_value("not json") is None and decode_value("[1]") is None


def test_plans_are_frozen_and_chunks_cover_the_input():
    with pytest.raises(dataclasses.FrozenInstanceError):
        SyncPlan().deletes = ("x",)  # type: ignore[misc]
    assert [list(c) for c in chunks([1, 2, 3, 4, 5], 2)] == [[1, 2], [3, 4], [5]]
