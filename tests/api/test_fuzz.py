"""Random JSON bodies at POST /api/v1/usage and POST /api/v1/check: never a 500, always a documented shape.

Bodies are arbitrary JSON (st.recursive), or nearly valid ones: a valid event or check with a few fields
replaced by arbitrary values or dropped, so that many reach the billing code and the database.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .helpers import CHECK, RESULT_STATUSES, USAGE, ZERO_CHARGE, assert_error

FUZZ = settings(max_examples=100, deadline=None, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=25,
)
# Timestamps stay in years 2000..2100 UTC: an instant before year 1 is a known 500 (see test_usage.py).
timestamps = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),
                          timezones=st.just(timezone.utc)).map(lambda d: d.isoformat())
MODELS = ["gpt-4o", "gpt-4o-mini", "claude-sonnet-4", "claude-opus-4", "llama-9000", ""]
EVENT_FIELDS = ["id", "project_id", "kind", "timestamp", "duration_ms", "model", "provider", "input_tokens",
                "output_tokens", "key_source", "agent", "run_id", "account_id"]
CHECK_FIELDS = ["kind", "duration_ms", "model", "input_tokens", "output_tokens", "account_id"]


def anything(project_id: str):
    """Values that are sometimes right and often nearly right for some field."""
    return st.one_of(json_values, timestamps, st.sampled_from(["compute", "tokens", "platform", "byok", project_id,
                                                               *MODELS]),
                     st.integers(min_value=-(2**70), max_value=2**70), st.text(min_size=120, max_size=140))


def mutated(base: st.SearchStrategy, fields: list[str], project_id: str) -> st.SearchStrategy:
    """A valid body with up to three fields replaced by anything and up to two dropped."""
    replace = st.dictionaries(st.sampled_from(fields), anything(project_id), max_size=3)
    drop = st.sets(st.sampled_from(fields), max_size=2)
    return st.builds(lambda body, new, gone: {k: v for k, v in {**body, **new}.items() if k not in gone},
                     base, replace, drop)


def usage_bodies(project_id: str):
    valid_event = st.fixed_dictionaries(
        {"id": st.text(min_size=1, max_size=128), "project_id": st.just(project_id),
         "kind": st.sampled_from(["compute", "tokens"]), "duration_ms": st.integers(0, 10**7),
         "model": st.sampled_from(MODELS[:-1]), "input_tokens": st.integers(0, 10**7),
         "output_tokens": st.integers(0, 10**7)},
        optional={"timestamp": timestamps, "key_source": st.sampled_from(["platform", "byok"]),
                  "agent": st.text(max_size=100), "run_id": st.text(max_size=128),
                  "provider": st.text(max_size=40)})
    event = mutated(valid_event, EVENT_FIELDS, project_id)
    return st.one_of(
        json_values,
        st.fixed_dictionaries({"events": json_values}),
        st.fixed_dictionaries({"events": st.lists(st.one_of(event, json_values), min_size=1, max_size=6)}),
        st.fixed_dictionaries({"events": st.lists(event, min_size=1, max_size=6)}),
    )


def check_bodies(project_id: str):
    valid_check = st.fixed_dictionaries(
        {"kind": st.sampled_from(["compute", "tokens"]), "duration_ms": st.integers(0, 10**9),
         "model": st.sampled_from(MODELS[:-1]), "input_tokens": st.integers(0, 10**9),
         "output_tokens": st.integers(0, 10**9)})
    return st.one_of(json_values, mutated(valid_check, CHECK_FIELDS, project_id))


@pytest.fixture(scope="module")
def fuzz_account(named_account):
    return named_account("fuzz")


def test_random_bodies_posted_to_usage_never_get_a_500(client, fuzz_account):
    seen = set()

    @FUZZ
    @given(body=usage_bodies(fuzz_account.project_id))
    def post(body):
        response = client.post(USAGE, content=json.dumps(body).encode(), headers=fuzz_account.auth)
        assert response.status_code < 500, (body, response.text)
        if response.status_code != 200:
            assert_error(response, response.status_code)
            return
        for result in response.json()["results"]:
            assert result["status"] in RESULT_STATUSES, result
            assert set(result["charged"]) == set(ZERO_CHARGE), result
            assert ("error" in result) == (result["status"] == "rejected"), result
            seen.add(result["status"])

    post()
    assert {"accepted", "rejected"} <= seen  # the fuzz reached the billing code, not only validation


def test_random_bodies_posted_to_check_never_get_a_500(client, fuzz_account):
    seen = set()

    @FUZZ
    @given(body=check_bodies(fuzz_account.project_id))
    def post(body):
        response = client.post(CHECK, content=json.dumps(body).encode(), headers=fuzz_account.auth)
        assert response.status_code < 500, (body, response.text)
        if response.status_code != 200:
            assert_error(response, response.status_code)
            return
        answer = response.json()
        assert type(answer["allowed"]) is bool and isinstance(answer["reason"], str), answer
        seen.add(response.status_code)

    post()
    assert 200 in seen
