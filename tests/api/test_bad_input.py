"""Bad input on every endpoint: the documented error shape (or a per-event rejection inside a 200 for
/usage), never a 500, and nothing changed (the target account and its usage are compared before and after).
"""

from __future__ import annotations

import pytest

from billing_core.keys import ACCOUNT_KEY_PREFIX, HMAC_KEY_PREFIX, generate

from .helpers import (ACCOUNT, CHECK, SUMMARY, USAGE, assert_error, assert_rejection, both_databases,
                      compute_event, new_id, post_usage, unchanged)

MISSING = object()  # an override that removes the field


@pytest.fixture(scope="module")
def victim(named_account):
    """A hobby account with $1 credit that no test may change."""
    return named_account("victim")


def requests_for(account) -> dict[str, tuple[str, str, dict]]:
    """One valid request per endpoint, as (method, path, httpx kwargs), for the account."""
    return {
        "GET /api/v1/account": ("GET", ACCOUNT, {}),
        "POST /api/v1/usage": ("POST", USAGE, {"json": {"events": [compute_event(account.project_id, 60_000)]}}),
        "POST /api/v1/check": ("POST", CHECK, {"json": {"kind": "compute", "duration_ms": 1000}}),
        "GET /api/v1/usage/summary": ("GET", SUMMARY, {"params": {"from": "2026-01-01", "to": "2026-12-31"}}),
    }


# -- credentials --------------------------------------------------------------------------------
def _typo(key: str) -> str:
    i = len(ACCOUNT_KEY_PREFIX) + 5
    return key[:i] + ("A" if key[i] != "A" else "B") + key[i + 1:]


AUTH_CASES = {
    "no Authorization header": lambda key: None,
    "the word Bearer alone": lambda key: "Bearer",
    "the Basic scheme": lambda key: f"Basic {key}",
    "the Token scheme": lambda key: f"Token {key}",
    "the key without a scheme": lambda key: key,
    "a malformed key": lambda key: "Bearer ak_live_123",
    "a key with a typo (bad checksum)": lambda key: f"Bearer {_typo(key)}",
    "a well-formed key that is unknown or revoked": lambda key: f"Bearer {generate(ACCOUNT_KEY_PREFIX)}",
    "a project HMAC key instead of an account key": lambda key: f"Bearer {generate(HMAC_KEY_PREFIX)}",
    "the key followed by junk": lambda key: f"Bearer {key} junk",
    "the key twice": lambda key: f"Bearer {key},{key}",
    "a 10,000-character token": lambda key: "Bearer " + "a" * 10_000,
    "non-UTF-8 bytes": lambda key: b"Bearer \xff\xfe\xfd",
}


@pytest.mark.parametrize("case", list(AUTH_CASES))
def test_every_endpoint_refuses_bad_credentials_with_401(client, victim, case):
    header = AUTH_CASES[case](victim.api_key)
    headers = {} if header is None else {"Authorization": header}
    with unchanged(client, victim):
        for name, (method, path, kwargs) in requests_for(victim).items():
            response = client.request(method, path, headers=headers, **kwargs)
            assert_error(response, 401)


def test_the_scheme_name_is_case_insensitive_but_the_key_is_not(client, victim):
    assert client.get(ACCOUNT, headers={"Authorization": f"bearer {victim.api_key}"}).status_code == 200
    assert_error(client.get(ACCOUNT, headers={"Authorization": f"Bearer {victim.api_key.upper()}"}), 401)


# -- bodies that are not JSON, or not an object ------------------------------------------------
MALFORMED_BODIES = {
    "an unterminated object": b'{"events": [',
    "an empty body": b"",
    "non-UTF-8 bytes": b"\xff\xfe\xfd",
    "non-UTF-8 bytes inside a string": b'{"events": [{"id": "\xff\xfe"}]}',
    "single quotes": b"{'events': []}",
    "a trailing comma": b'{"events": [],}',
    "NaN": b'{"kind": "compute", "duration_ms": NaN}',
    "garbage after the value": b'{"kind": "compute"} trailing',
}
NOT_OBJECTS = {"an array": b"[]", "a string": b'"events"', "a number": b"42", "null": b"null",
               "true": b"true", "an array of events": b'[{"id": "x"}]'}


@pytest.mark.parametrize("path", [USAGE, CHECK])
@pytest.mark.parametrize("case", list(MALFORMED_BODIES))
def test_a_body_that_is_not_json_is_a_400(client, victim, path, case):
    with unchanged(client, victim):
        response = client.post(path, content=MALFORMED_BODIES[case],
                               headers={**victim.auth, "Content-Type": "application/json"})
        assert_error(response, 400)


@pytest.mark.parametrize("path", [USAGE, CHECK])
@pytest.mark.parametrize("case", list(NOT_OBJECTS))
def test_a_json_body_that_is_not_an_object_is_a_422(client, victim, path, case):
    with unchanged(client, victim):
        response = client.post(path, content=NOT_OBJECTS[case], headers=victim.auth)
        assert_error(response, 422)


@pytest.mark.parametrize("path", [USAGE, CHECK])
def test_json_nested_too_deeply_is_refused_without_a_500(client, victim, path):
    with unchanged(client, victim):
        response = client.post(path, content=b'{"events": ' + b"[" * 5000 + b"]" * 5000 + b"}", headers=victim.auth)
        assert_error(response, {400, 413, 422})


@pytest.mark.parametrize("path", [USAGE, CHECK])
def test_a_body_over_4_mb_is_a_413(client, victim, path):
    padding = "x" * (4 * 1024 * 1024 + 1)
    body = {"events": [compute_event(victim.project_id, 1, agent=padding)], "kind": "compute", "pad": padding}
    with unchanged(client, victim):
        assert_error(client.post(path, json=body, headers=victim.auth), 413)


# -- POST /api/v1/usage: the batch ------------------------------------------------------------
BAD_BATCHES = {
    "no events key": ({}, 422),
    "events misspelled": ({"event": [{"id": "x"}]}, 422),
    "events null": ({"events": None}, 422),
    "events an object": ({"events": {"id": "x"}}, 422),
    "events a string": ({"events": "x"}, 422),
    "events a number": ({"events": 3}, 422),
    "zero events": ({"events": []}, 422),
}


@pytest.mark.parametrize("case", list(BAD_BATCHES))
def test_a_batch_that_is_not_a_list_of_1_to_1000_events_is_refused(client, victim, case):
    body, status = BAD_BATCHES[case]
    with unchanged(client, victim):
        assert_error(client.post(USAGE, json=body, headers=victim.auth), status)


def test_1001_events_are_a_413_even_when_every_event_is_junk(client, victim):
    with unchanged(client, victim):
        assert_error(client.post(USAGE, json={"events": [{}] * 1001}, headers=victim.auth), 413)
        assert_error(client.post(USAGE, json={"events": [None] * 5000}, headers=victim.auth), 413)


# -- POST /api/v1/usage: one bad event at a time (rejected inside a 200) -------------------------
HUGE = 10**30
EVENT_CASES = {
    # id
    "an id of 129 characters": ("compute", {"id": "x" * 129}),
    "an empty id": ("compute", {"id": ""}),
    "an id that is a number": ("compute", {"id": 123}),
    "an id that is null": ("compute", {"id": None}),
    "an id that is an array": ("compute", {"id": ["a"]}),
    "an id that is an object": ("compute", {"id": {"a": 1}}),
    "an id that is a boolean": ("compute", {"id": True}),
    "no id": ("compute", {"id": MISSING}),
    # project_id
    "a project_id of 41 characters": ("compute", {"project_id": "p" * 41}),
    "a project_id that is a number": ("compute", {"project_id": 5}),
    "no project_id": ("compute", {"project_id": MISSING}),
    # kind
    "an unknown kind": ("compute", {"kind": "storage"}),
    "a kind that is a number": ("compute", {"kind": 1}),
    "a kind in capitals": ("compute", {"kind": "COMPUTE"}),
    "no kind": ("compute", {"kind": MISSING}),
    # duration_ms
    "duration_ms as a string": ("compute", {"duration_ms": "1000"}),
    "duration_ms as a whole float": ("compute", {"duration_ms": 1000.0}),
    "duration_ms as a fraction": ("compute", {"duration_ms": 1.5}),
    "duration_ms as a boolean": ("compute", {"duration_ms": True}),
    "duration_ms null on a compute event": ("compute", {"duration_ms": None}),
    "no duration_ms on a compute event": ("compute", {"duration_ms": MISSING}),
    "duration_ms as an array": ("compute", {"duration_ms": [1000]}),
    "duration_ms as an object": ("compute", {"duration_ms": {"ms": 1000}}),
    "a negative duration_ms": ("compute", {"duration_ms": -1}),
    "duration_ms of 10**30": ("compute", {"duration_ms": HUGE}),
    "duration_ms of 2**64": ("compute", {"duration_ms": 2**64}),
    "duration_ms of 2**63": ("compute", {"duration_ms": 2**63}),
    "duration_ms of -2**63 - 1": ("compute", {"duration_ms": -(2**63) - 1}),
    "duration_ms beyond a month": ("compute", {"duration_ms": 31 * 24 * 3_600_000 + 1}),
    # tokens
    "input_tokens as a string": ("tokens", {"input_tokens": "10"}),
    "input_tokens as a float": ("tokens", {"input_tokens": 10.0}),
    "input_tokens as a boolean": ("tokens", {"input_tokens": False}),
    "input_tokens null": ("tokens", {"input_tokens": None}),
    "negative input_tokens": ("tokens", {"input_tokens": -1}),
    "input_tokens of 10**30": ("tokens", {"input_tokens": HUGE}),
    "input_tokens over 10**10": ("tokens", {"input_tokens": 10**10 + 1}),
    "negative output_tokens": ("tokens", {"output_tokens": -5}),
    "output_tokens as an array": ("tokens", {"output_tokens": [1]}),
    "output_tokens of 2**64": ("tokens", {"output_tokens": 2**64}),
    "a tokens event without a model": ("tokens", {"model": MISSING}),
    "a tokens event with an empty model": ("tokens", {"model": ""}),
    "a model that is a number": ("tokens", {"model": 4}),
    "a model of 101 characters": ("tokens", {"model": "m" * 101}),
    "an unknown key_source": ("tokens", {"key_source": "mine"}),
    "a key_source that is null": ("tokens", {"key_source": None}),
    # timestamp
    "a timestamp in words": ("compute", {"timestamp": "yesterday"}),
    "a timestamp as a unix number": ("compute", {"timestamp": 1767225600}),
    "a timestamp without a timezone": ("compute", {"timestamp": "2026-01-01T00:00:00"}),
    "a date without a time": ("compute", {"timestamp": "2026-01-01"}),
    "a timestamp with month 13": ("compute", {"timestamp": "2026-13-01T00:00:00Z"}),
    "a timestamp with an offset of 25 hours": ("compute", {"timestamp": "2026-01-01T00:00:00+25:00"}),
    "a timestamp that is a boolean": ("compute", {"timestamp": True}),
    "a timestamp that is an object": ("compute", {"timestamp": {"at": "2026-01-01T00:00:00Z"}}),
    # optional strings
    "an agent of 101 characters": ("compute", {"agent": "a" * 101}),
    "an agent that is a number": ("compute", {"agent": 7}),
    "a run_id of 129 characters": ("compute", {"run_id": "r" * 129}),
    "a provider of 41 characters": ("tokens", {"provider": "p" * 41}),
    "a provider that is an object": ("tokens", {"provider": {}}),
    # the rest
    "an unknown field": ("compute", {"colour": "red"}),
    "another account's id from a key": ("compute", {"account_id": "acc_someone_else"}),
    "an account_id of 41 characters": ("compute", {"account_id": "a" * 41}),
}


def build_event(project_id: str, kind: str, overrides: dict) -> dict:
    if kind == "compute":
        event = {"id": new_id("bad"), "project_id": project_id, "kind": "compute", "duration_ms": 1000}
    else:
        event = {"id": new_id("bad"), "project_id": project_id, "kind": "tokens", "model": "gpt-4o",
                 "input_tokens": 10, "output_tokens": 10}
    for key, value in overrides.items():
        if value is MISSING:
            event.pop(key, None)
        else:
            event[key] = value
    return event


@pytest.mark.parametrize("case", list(EVENT_CASES))
def test_a_bad_event_is_rejected_as_invalid_event_inside_a_200(client, victim, case):
    kind, overrides = EVENT_CASES[case]
    event = build_event(victim.project_id, kind, overrides)
    with unchanged(client, victim):
        body = post_usage(client, victim.auth, event)
    result = body["results"][0]
    assert_rejection(result, "invalid_event")
    if "id" not in overrides:
        assert result["id"] == event["id"]
    assert isinstance(result["id"], str) and len(result["id"]) <= 128
    assert body["account"]["id"] == victim.account_id


@both_databases
def test_a_batch_of_every_kind_of_bad_event_and_one_good_one_accepts_only_the_good_one(server, shared):
    events = [build_event(shared.project_id, kind, overrides) for kind, overrides in EVENT_CASES.values()]
    good = compute_event(shared.project_id, 1)
    body = post_usage(server.client, shared.auth, *events, good)
    *bad_results, good_result = body["results"]
    for case, result in zip(EVENT_CASES, bad_results):
        assert result["status"] == "rejected", (case, result)
        assert result["error"]["code"] == "invalid_event", (case, result)
    assert good_result["status"] == "accepted" and good_result["id"] == good["id"]


# -- POST /api/v1/check ---------------------------------------------------------------------
CHECK_CASES = {
    "no kind": ({"duration_ms": 1}, "invalid_request"),
    "an unknown kind": ({"kind": "storage", "duration_ms": 1}, "invalid_request"),
    "a kind that is a number": ({"kind": 1}, "invalid_request"),
    "a kind that is null": ({"kind": None}, "invalid_request"),
    "duration_ms as a string": ({"kind": "compute", "duration_ms": "1"}, "invalid_request"),
    "duration_ms as a whole float": ({"kind": "compute", "duration_ms": 1.0}, "invalid_request"),
    "duration_ms as a fraction": ({"kind": "compute", "duration_ms": 0.5}, "invalid_request"),
    "duration_ms as a boolean": ({"kind": "compute", "duration_ms": True}, "invalid_request"),
    "duration_ms null": ({"kind": "compute", "duration_ms": None}, "invalid_request"),
    "duration_ms as an array": ({"kind": "compute", "duration_ms": [1]}, "invalid_request"),
    "duration_ms as an object": ({"kind": "compute", "duration_ms": {}}, "invalid_request"),
    "a negative duration_ms": ({"kind": "compute", "duration_ms": -1}, "invalid_request"),
    "duration_ms of 10**30": ({"kind": "compute", "duration_ms": HUGE}, "invalid_request"),
    "duration_ms of 2**64": ({"kind": "compute", "duration_ms": 2**64}, "invalid_request"),
    "duration_ms beyond a month": ({"kind": "compute", "duration_ms": 31 * 24 * 3_600_000 + 1}, "invalid_request"),
    "a tokens check without a model": ({"kind": "tokens", "input_tokens": 1}, "invalid_request"),
    "a model that is a number": ({"kind": "tokens", "model": 4}, "invalid_request"),
    "a model of 101 characters": ({"kind": "tokens", "model": "m" * 101}, "invalid_request"),
    "input_tokens as a string": ({"kind": "tokens", "model": "gpt-4o", "input_tokens": "1"}, "invalid_request"),
    "negative input_tokens": ({"kind": "tokens", "model": "gpt-4o", "input_tokens": -1}, "invalid_request"),
    "input_tokens over 10**10": ({"kind": "tokens", "model": "gpt-4o", "input_tokens": 10**10 + 1},
                                 "invalid_request"),
    "output_tokens of 10**30": ({"kind": "tokens", "model": "gpt-4o", "output_tokens": HUGE}, "invalid_request"),
    "output_tokens as a boolean": ({"kind": "tokens", "model": "gpt-4o", "output_tokens": True}, "invalid_request"),
    "an unknown field": ({"kind": "compute", "duration_ms": 1, "colour": "red"}, "invalid_request"),
    "an account_id of 41 characters": ({"kind": "compute", "duration_ms": 1, "account_id": "a" * 41},
                                       "invalid_request"),
    "an account_id that is a number": ({"kind": "compute", "duration_ms": 1, "account_id": 5}, "invalid_request"),
    "a model not in the price table": ({"kind": "tokens", "model": "llama-9000", "input_tokens": 1},
                                       "unknown_model"),
}


@pytest.mark.parametrize("case", list(CHECK_CASES))
def test_a_bad_check_is_a_422_naming_what_is_wrong(client, victim, case):
    body, code = CHECK_CASES[case]
    with unchanged(client, victim):
        error = assert_error(client.post(CHECK, json=body, headers=victim.auth), 422, code)
    if code == "invalid_request":
        fields = ("kind", "duration_ms", "model", "input_tokens", "output_tokens", "colour", "account_id")
        assert any(field in error["message"] for field in fields), error


# -- GET /api/v1/usage/summary ---------------------------------------------------------------
GOOD_RANGE = {"from": "2026-01-01", "to": "2026-01-31"}
SUMMARY_CASES = {
    "no from": ({"to": "2026-01-31"}, "invalid_request"),
    "no to": ({"from": "2026-01-01"}, "invalid_request"),
    "no dates at all": ({}, "invalid_request"),
    "February 30th": ({**GOOD_RANGE, "from": "2026-02-30"}, "invalid_request"),
    "a date in words": ({**GOOD_RANGE, "from": "yesterday"}, "invalid_request"),
    "an empty date": ({**GOOD_RANGE, "to": ""}, "invalid_request"),
    "a date with hour 25": ({**GOOD_RANGE, "from": "2026-01-01T25:00:00"}, "invalid_request"),
    "a five-digit year": ({**GOOD_RANGE, "to": "99999-01-01"}, "invalid_request"),
    "a date of 10**30": ({**GOOD_RANGE, "from": str(HUGE)}, "invalid_request"),
    "group_by week": ({**GOOD_RANGE, "group_by": "week"}, "invalid_request"),
    "group_by empty": ({**GOOD_RANGE, "group_by": ""}, "invalid_request"),
    "group_by in capitals": ({**GOOD_RANGE, "group_by": "DAY"}, "invalid_request"),
    "group_by with SQL in it": ({**GOOD_RANGE, "group_by": "day; DROP TABLE accounts"}, "invalid_request"),
    "to before from": ({"from": "2026-02-01", "to": "2026-01-01"}, "invalid_range"),
    "more than three years": ({"from": "2020-01-01", "to": "2026-01-01"}, "invalid_range"),
    "an account_id of 41 characters": ({**GOOD_RANGE, "account_id": "a" * 41}, "invalid_request"),
}


@pytest.mark.parametrize("case", list(SUMMARY_CASES))
def test_a_bad_summary_query_is_a_422(client, victim, case):
    params, code = SUMMARY_CASES[case]
    with unchanged(client, victim):
        assert_error(client.get(SUMMARY, params=params, headers=victim.auth), 422, code)


def test_non_utf8_bytes_in_a_query_are_refused_in_the_error_shape(client, victim):
    with unchanged(client, victim):
        assert_error(client.get(f"{SUMMARY}?from=%FF%FE&to=2026-01-31", headers=victim.auth), {400, 422})
        assert_error(client.get(f"{SUMMARY}?from=2026-01-01&to=2026-01-31&group_by=%C0%AF",
                                headers=victim.auth), {400, 422})
        assert_error(client.get(f"{ACCOUNT}?account_id=%FF%FE", headers=victim.auth), {400, 404, 422})


# -- GET /api/v1/account ----------------------------------------------------------------------
ACCOUNT_CASES = {
    "an account_id of 41 characters": ({"account_id": "a" * 41}, 422),
    "an account_id that does not exist": ({"account_id": "acc_doesnotexist"}, 404),
    "an account_id of one space": ({"account_id": " "}, 404),
    "an account_id with SQL in it": ({"account_id": "x' OR '1'='1"}, 404),
}


@pytest.mark.parametrize("case", list(ACCOUNT_CASES))
def test_a_bad_account_query_is_refused(client, victim, case):
    params, status = ACCOUNT_CASES[case]
    with unchanged(client, victim):
        assert_error(client.get(ACCOUNT, params=params, headers=victim.auth), status)


# -- NUL characters: fine in SQLite, refused by PostgreSQL text columns ---------------------------
NUL_CASES = {
    "an event id": lambda a: ("key", "POST", USAGE, {"json": {"events": [
        compute_event(a.project_id, 1, id=new_id("nul") + "\x00")]}}),
    "an agent": lambda a: ("key", "POST", USAGE, {"json": {"events": [
        compute_event(a.project_id, 1, agent="crawler\x00")]}}),
    "a byok model": lambda a: ("key", "POST", USAGE, {"json": {"events": [
        {"id": new_id("nul"), "project_id": a.project_id, "kind": "tokens", "model": "m\x00",
         "input_tokens": 1, "key_source": "byok"}]}}),
    "the account_id of an edge event": lambda a: ("edge", "POST", USAGE, {"json": {"events": [
        compute_event(a.project_id, 1, account_id="acc\x00")]}}),
    "the account_id of an edge account read": lambda a: ("edge", "GET", ACCOUNT, {"params": {"account_id": "acc\x00"}}),
    "the account_id of an edge check": lambda a: ("edge", "POST", CHECK, {"json": {
        "kind": "compute", "duration_ms": 1, "account_id": "acc\x00"}}),
    "the account_id of an edge summary": lambda a: ("edge", "GET", SUMMARY, {"params": {
        "from": "2026-01-01", "to": "2026-01-31", "account_id": "acc\x00"}}),
}


@pytest.mark.parametrize("server", ["sqlite", "postgresql"], indirect=True)
@pytest.mark.parametrize("case", list(NUL_CASES))
def test_a_nul_character_in_a_string_is_answered_without_a_500(server, shared, case):
    who, method, path, kwargs = NUL_CASES[case](shared)
    auth = shared.auth if who == "key" else {"Authorization": f"Bearer {server.edge_token}"}
    response = server.client.request(method, path, headers=auth, **kwargs)
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert_error(response, response.status_code)
    elif path == USAGE:  # accepted as sent, or rejected per event
        assert response.json()["results"][0]["status"] in ("accepted", "rejected"), response.text
