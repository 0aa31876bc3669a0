"""Key limits (API.md "Key limits"): stored and shown, checked field by field, changed in part, enforced on
every kind of route (scopes, expiry), and the spend of a key's current budget window."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import update

from billing_core.db.engine import read_session, write_session
from billing_core.db.models import AccountKey
from billing_core.errors import Invalid, InvalidKey, NotFound
from billing_core.services import account_keys
from billing_core.services.auth import authenticate_account_key
from billing_core.services.key_spend import add_key_spend, key_spend_in_window

from ..conftest import T0
from ..factories import make_account
from .helpers import assert_error

SONNET, MINI = "anthropic/claude-sonnet-4", "openai/gpt-4o-mini"
ALL_SCOPES = ["usage:write", "read", "gateway", "manage"]


@pytest.fixture(scope="module")
def shared(keys_server):
    """One account for the tests that only add keys to it (making an account costs a CLI run)."""
    return keys_server.create_tenants(1)[0]


def _future(days: int = 30) -> str:
    return (datetime.now(timezone.utc) + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


# -- the service ----------------------------------------------------------------------------------
def test_a_key_made_with_every_limit_keeps_and_shows_them(billing):
    account = make_account(billing)
    limits = {"scopes": ["read", "gateway"], "budget_micros": 5_000_000, "budget_reset": "daily",
              "models": [SONNET, MINI, SONNET], "rpm": 60, "tpm": 100_000, "expires_at": "2026-02-01T00:00:00Z",
              "project_id": account.project_id}
    created = account_keys.create_key(billing, account.account_id, name="agent", now=T0, limits=limits)
    view = created.key.to_dict()
    assert {k: view[k] for k in limits} == {**limits, "models": [SONNET, MINI]}
    assert (view["spend_micros"], view["budget_remaining_micros"]) == (0, 5_000_000)
    principal = authenticate_account_key(billing, created.secret, now=T0)
    assert principal.scopes == {"read", "gateway"} and principal.models == (SONNET, MINI)
    assert (principal.budget_micros, principal.budget_reset, principal.rpm, principal.tpm) == (5_000_000, "daily",
                                                                                                60, 100_000)
    assert principal.project_id == account.project_id
    assert principal.expires_at == datetime(2026, 2, 1, tzinfo=timezone.utc)


@pytest.mark.parametrize(("limits", "code"), [
    ({"scopes": []}, "invalid_scopes"), ({"scopes": ["read", "admin"]}, "invalid_scopes"),
    ({"scopes": "read"}, "invalid_scopes"),
    ({"budget_micros": 0}, "invalid_budget"), ({"budget_micros": 10**15 + 1}, "invalid_budget"),
    ({"budget_micros": True}, "invalid_budget"),
    ({"budget_reset": "hourly"}, "invalid_budget_reset"),
    ({"models": ["claude-sonnet-4"]}, "unknown_model"), ({"models": ["openai/gpt-9"]}, "unknown_model"),
    ({"rpm": 0}, "invalid_rpm"), ({"tpm": 10**9 + 1}, "invalid_tpm"),
    ({"expires_at": "2026-01-15T11:59:59Z"}, "invalid_expires_at"),
    ({"expires_at": "2026-02-01"}, "invalid_expires_at"),
    ({"expires_at": "2026-02-30T00:00:00Z"}, "invalid_expires_at"),
])
def test_each_limit_out_of_range_is_refused_with_a_code_naming_it(billing, limits, code):
    account = make_account(billing)
    with pytest.raises(Invalid) as caught:
        account_keys.create_key(billing, account.account_id, name="bad", now=T0, limits=limits)
    assert caught.value.code == code and caught.value.message.startswith(next(iter(limits)))


def test_a_key_cannot_be_bound_to_another_accounts_project_or_a_deleted_one(billing):
    from billing_core.services import projects
    account, other = make_account(billing), make_account(billing)
    with pytest.raises(NotFound):
        account_keys.create_key(billing, account.account_id, name="k", now=T0,
                                limits={"project_id": other.project_id})
    spare = projects.create_project(billing, account.account_id, name="spare", now=T0)
    projects.delete_project(billing, account.account_id, spare.id, now=T0)
    with pytest.raises(NotFound):
        account_keys.create_key(billing, account.account_id, name="k", now=T0, limits={"project_id": spare.id})


def test_changing_limits_touches_only_the_fields_named_and_none_restores_the_default(billing):
    account = make_account(billing)
    created = account_keys.create_key(billing, account.account_id, name="k", now=T0,
                                      limits={"budget_micros": 9, "rpm": 5, "scopes": ["read"]})
    view = account_keys.update_key_limits(billing, account.account_id, created.key.id, now=T0,
                                          changes={"rpm": None, "tpm": 700, "scopes": None})
    assert (view.budget_micros, view.rpm, view.tpm, view.scopes) == (9, None, 700, ALL_SCOPES)
    with pytest.raises(NotFound):
        account_keys.update_key_limits(billing, make_account(billing).account_id, created.key.id, now=T0,
                                       changes={"rpm": 1})


def test_an_expired_key_is_refused_and_says_so(billing):
    account = make_account(billing)
    created = account_keys.create_key(billing, account.account_id, name="k", now=T0,
                                      limits={"expires_at": "2026-01-15T13:00:00Z"})
    assert authenticate_account_key(billing, created.secret, now=T0 + timedelta(minutes=59)) is not None
    with pytest.raises(InvalidKey, match="expired"):
        authenticate_account_key(billing, created.secret, now=T0 + timedelta(hours=1))


def test_spend_counts_in_the_current_window_and_starts_again_in_the_next(billing):
    account = make_account(billing)
    created = account_keys.create_key(billing, account.account_id, name="k", now=T0,
                                      limits={"budget_micros": 1_000_000, "budget_reset": "daily"})
    with write_session(billing.engine) as session:
        add_key_spend(session, created.key.id, 300_000, T0)
        add_key_spend(session, created.key.id, 150_000, T0 + timedelta(hours=2))
    view = account_keys.get_key(billing, account.account_id, created.key.id, now=T0 + timedelta(hours=3))
    assert (view.spend_micros, view.budget_remaining_micros) == (450_000, 550_000)
    next_day = datetime(2026, 1, 16, 0, 0, tzinfo=timezone.utc)
    assert account_keys.get_key(billing, account.account_id, created.key.id, now=next_day).spend_micros == 0
    # Made monthly, the same key counts both days of January again; its listing agrees.
    account_keys.update_key_limits(billing, account.account_id, created.key.id, now=next_day,
                                   changes={"budget_reset": "monthly"})
    with write_session(billing.engine) as session:
        add_key_spend(session, created.key.id, 2_000_000, next_day)
    listed = {k.id: k for k in account_keys.list_keys(billing, account.account_id, limit=10, cursor=None,
                                                         now=next_day).items}
    assert (listed[created.key.id].spend_micros, listed[created.key.id].budget_remaining_micros) == (2_450_000, 0)
    with read_session(billing.engine) as session:
        row = session.get(AccountKey, created.key.id)
        assert key_spend_in_window(session, row, datetime(2026, 2, 1, tzinfo=timezone.utc)) == 0


# -- the API ---------------------------------------------------------------------------------------
def test_post_patch_and_get_carry_every_limit(client, tenant):
    limits = {"scopes": ["usage:write", "gateway"], "budget_micros": 2_000_000, "budget_reset": "weekly",
              "models": [MINI], "rpm": 10, "tpm": 5_000, "expires_at": _future(), "project_id": tenant.project_id}
    response = client.post("/api/v1/keys", json={"name": "limited", **limits}, headers=tenant.auth)
    assert response.status_code == 201, response.text
    created = response.json()
    assert {k: created[k] for k in limits} == limits and created["budget_remaining_micros"] == 2_000_000
    patched = client.patch(f"/api/v1/keys/{created['id']}", json={"rpm": None, "budget_micros": 3_000_000,
                                                                   "models": []}, headers=tenant.auth)
    assert patched.status_code == 200, patched.text
    after = patched.json()
    assert (after["rpm"], after["budget_micros"], after["models"], after["tpm"]) == (None, 3_000_000, [], 5_000)
    got = client.get(f"/api/v1/keys/{created['id']}", headers=tenant.auth)
    assert got.status_code == 200 and got.json() == after
    listed = client.get("/api/v1/keys", headers=tenant.auth).json()["data"]
    assert [k for k in listed if k["id"] == created["id"]] == [after]


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"scopes": ["everything"]}, 422, "invalid_scopes"), ({"budget_micros": -1}, 422, "invalid_budget"),
    ({"budget_reset": "yearly"}, 422, "invalid_budget_reset"), ({"models": ["nobody/nothing"]}, 422, "unknown_model"),
    ({"rpm": 0}, 422, "invalid_rpm"), ({"tpm": -5}, 422, "invalid_tpm"),
    ({"expires_at": "2001-01-01T00:00:00Z"}, 422, "invalid_expires_at"),
    ({"expires_at": "tomorrow"}, 422, "invalid_expires_at"),
    ({"project_id": "prj_" + "Z" * 20}, 404, "not_found"),
    ({"budget_micros": "5"}, 422, None), ({"rpm": 1.5}, 422, None), ({"owner": "me"}, 422, None),
])
def test_bad_limits_are_refused_on_create_and_on_change(client, shared, body, status, code):
    assert_error(client.post("/api/v1/keys", json={"name": "x", **body}, headers=shared.auth), status, code)
    key = client.get("/api/v1/keys", headers=shared.auth).json()["data"][0]
    assert_error(client.patch(f"/api/v1/keys/{key['id']}", json=body, headers=shared.auth), status, code)
    assert client.get(f"/api/v1/keys/{key['id']}", headers=shared.auth).json() == key


def test_another_accounts_key_is_not_found(client, tenant, shared):
    owner, stranger = tenant, shared
    key_id = client.get("/api/v1/keys", headers=owner.auth).json()["data"][0]["id"]
    assert_error(client.patch(f"/api/v1/keys/{key_id}", json={"rpm": 1}, headers=stranger.auth), 404, "not_found")
    assert_error(client.get(f"/api/v1/keys/{key_id}", headers=stranger.auth), 404, "not_found")
    assert client.get(f"/api/v1/keys/{key_id}", headers=owner.auth).json()["rpm"] is None


def test_an_expired_key_gets_401_saying_it_expired_on_every_kind_of_route(keys_server, client, tenant):
    created = client.post("/api/v1/keys", json={"name": "brief", "expires_at": _future()}, headers=tenant.auth).json()
    with write_session(keys_server.billing().engine) as session:  # its time comes: move it into the past
        session.execute(update(AccountKey).where(AccountKey.id == created["id"])
                        .values(expires_at=datetime.now(timezone.utc) - timedelta(seconds=1)))
    own = _bearer(created["secret"])
    event = {"id": "exp-1", "project_id": tenant.project_id, "kind": "compute", "duration_ms": 1_000}
    for response in (client.get("/api/v1/account", headers=own),
                     client.post("/api/v1/usage", json={"events": [event]}, headers=own),
                     client.post("/api/v1/check", json={"kind": "compute", "duration_ms": 1}, headers=own)):
        assert "expired" in assert_error(response, 401, "invalid_key")["message"]
    gateway = client.get("/v1/models", headers=own)
    assert gateway.status_code == 401 and gateway.json()["error"]["code"] == "invalid_api_key"
    assert "expired" in gateway.json()["error"]["message"]


def _scoped_key(client, tenant, scopes: list[str]) -> dict[str, str]:
    response = client.post("/api/v1/keys", json={"name": "+".join(scopes), "scopes": scopes}, headers=tenant.auth)
    assert response.status_code == 201, response.text
    return _bearer(response.json()["secret"])


def _calls(client, tenant) -> dict[str, list]:
    """A representative route of each scope, as a function of the headers to send."""
    event = {"project_id": tenant.project_id, "kind": "compute", "duration_ms": 1_000}
    serial = iter(range(10**6))
    return {
        "usage:write": [lambda h: client.post("/api/v1/usage", json={"events": [{**event, "id": f"s-{next(serial)}"}]},
                                              headers=h),
                        lambda h: client.post("/api/v1/check", json={"kind": "compute", "duration_ms": 1}, headers=h)],
        "read": [lambda h: client.get("/api/v1/account", headers=h), lambda h: client.get("/api/v1/keys", headers=h),
                 lambda h: client.get("/api/v1/runs", headers=h)],
        "manage": [lambda h: client.patch(f"/api/v1/projects/{tenant.project_id}", json={"name": "renamed"}, headers=h),
                   lambda h: client.post("/api/v1/schedules", json={"project_id": tenant.project_id, "agent": "a",
                                                                    "cron": "0 * * * *", "timezone": "UTC"},
                                         headers=h)],
        "gateway": [lambda h: client.get("/v1/models", headers=h)],
    }


@pytest.mark.parametrize("scope", ALL_SCOPES)
def test_each_scope_opens_its_own_routes_and_no_others(client, shared, scope):
    only = _scoped_key(client, shared, [scope])
    for kind, calls in _calls(client, shared).items():
        for call in calls:
            response = call(only)
            if kind == scope:
                assert response.status_code < 400, (kind, response.status_code, response.text[:300])
            elif kind == "gateway":
                assert response.status_code == 403 and response.json()["error"]["code"] == "scope_missing"
                assert response.json()["error"]["type"] == "permission_error"
            else:
                assert kind in assert_error(response, 403, "scope_missing")["message"]


def test_a_key_with_every_scope_and_an_old_star_key_reach_every_route(client, tenant):
    explicit = _scoped_key(client, tenant, ALL_SCOPES)
    for headers in (explicit, tenant.auth):  # the account's first key is stored as "*"
        for kind, calls in _calls(client, tenant).items():
            for call in calls:
                response = call(headers)
                assert response.status_code < 400, (kind, response.status_code, response.text[:300])


def test_usage_refused_for_a_missing_scope_records_nothing(client, tenant):
    reader = _scoped_key(client, tenant, ["read"])
    event = {"id": "scope-1", "project_id": tenant.project_id, "kind": "compute", "duration_ms": 5_000}
    before = client.get("/api/v1/account", headers=tenant.auth).json()["allowance"]["used_ms"]
    assert_error(client.post("/api/v1/usage", json={"events": [event]}, headers=reader), 403, "scope_missing")
    assert client.get("/api/v1/account", headers=tenant.auth).json()["allowance"]["used_ms"] == before
    ok = client.post("/api/v1/usage", json={"events": [event]}, headers=tenant.auth).json()
    assert ok["results"][0]["status"] == "accepted"  # the id was not taken by the refused batch
