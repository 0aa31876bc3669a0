"""The event fingerprint is json.dumps(body, sort_keys=True, separators=(",", ":")) whatever the text or the
numbers: stored hashes depend on it, and the fast path (orjson) must never write other bytes."""

import json

from hypothesis import given, settings, strategies as st

from billing_core.services.usage_events import _canonical_json

values = st.one_of(st.none(), st.text(max_size=30), st.integers(min_value=-(2**70), max_value=2**70),
                   st.sampled_from(["plain", "caf\u00e9", "\x7f", "tab\there", 'quote"', "back\\slash", "\u2028",
                                    "emoji \U0001F600", ""]))


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(st.sampled_from(["id", "project_id", "kind", "timestamp", "duration_ms", "model", "agent",
                                        "run_id", "input_tokens"]), values))
def test_canonical_json_is_exactly_what_json_dumps_writes(body):
    assert _canonical_json(body) == json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
