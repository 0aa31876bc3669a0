"""Issue 12 #9: a suspended account's key can no longer manage the account (403 `account_suspended`, nothing
changes), from the API and from the portal's pages alike; its usage and run reports, its reads and taking
credentials away (revoking a key, removing a provider key) stay allowed."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta
from types import SimpleNamespace

import httpx
import pytest
from sqlalchemy import func, select

from billing_core.crypto import Keyring, new_key_spec
from billing_core.db.engine import read_session
from billing_core.db.models import AccountKey, Project
from billing_core.db.workloads import ProviderKey, Run, Schedule
from billing_core.services import account_keys, accounts, projects, provider_keys, schedules
from billing_core.services.dispatch import dispatch_due_schedules
from billing_core.services.standing import AccountSuspended

from ..conftest import T0
from ..factories import make_account
from ..live_server import Tenant, copy_sqlite_template, create_account_cli, run_api_server, run_cli_ok

ANTHROPIC_KEY = "sk-ant-" + "a" * 40
SCHEDULE = {"agent": "nightly", "cron": "0 3 * * *"}


def _refused(response: httpx.Response) -> None:
    assert response.status_code == 403, response.text
    assert response.json()["error"]["code"] == "account_suspended", response.text


@pytest.fixture(scope="module")
def suspended(tmp_path_factory, sqlite_template):
    """A live server and an account holding a second key, a provider key and a schedule, then suspended."""
    url = copy_sqlite_template(sqlite_template, tmp_path_factory.mktemp("suspended"))
    with run_api_server(url) as server, httpx.Client(base_url=server.base_url, timeout=30) as client:
        t = Tenant(**create_account_cli(server.env, f"s-{uuid.uuid4().hex[:10]}@example.com", credit_usd="5"))
        extra = client.post("/api/v1/keys", headers=t.auth, json={"name": "spare"}).json()
        assert client.put(f"/api/v1/projects/{t.project_id}/provider-keys/anthropic", headers=t.auth,
                          json={"key": ANTHROPIC_KEY}).status_code == 200
        schedule = client.post("/api/v1/schedules", headers=t.auth, json={"project_id": t.project_id, **SCHEDULE})
        assert schedule.status_code == 201, schedule.text
        run_cli_ok(server.env, "admin", "suspend", t.account_id)
        yield SimpleNamespace(client=client, t=t, key_id=extra["id"], schedule_id=schedule.json()["id"])


def test_a_suspended_accounts_key_cannot_manage_the_account(suspended):
    c, t, auth = suspended.client, suspended.t, suspended.t.auth
    before = {path: c.get(path, headers=auth).json() for path in ("/api/v1/keys", "/api/v1/projects",
                                                                   "/api/v1/schedules")}
    project, schedule = f"/api/v1/projects/{t.project_id}", f"/api/v1/schedules/{suspended.schedule_id}"
    _refused(c.post("/api/v1/keys", headers=auth, json={"name": "another"}))
    _refused(c.post("/api/v1/projects", headers=auth, json={"name": "another"}))
    _refused(c.patch(project, headers=auth, json={"name": "renamed"}))
    _refused(c.post(f"{project}/hmac-key/rotate", headers=auth))
    _refused(c.put(f"{project}/provider-keys/openai", headers=auth, json={"key": "sk-" + "b" * 40}))
    _refused(c.post("/api/v1/schedules", headers=auth, json={"project_id": t.project_id, **SCHEDULE}))
    _refused(c.patch(schedule, headers=auth, json={"enabled": False}))
    _refused(c.delete(schedule, headers=auth))
    _refused(c.delete(project, headers=auth))
    after = {path: c.get(path, headers=auth).json() for path in before}
    assert after == before  # reads still answer, and nothing changed


def test_a_suspended_account_still_reports_usage_and_runs_and_may_take_credentials_away(suspended):
    c, t, auth = suspended.client, suspended.t, suspended.t.auth
    event = {"id": f"ev-{uuid.uuid4().hex[:12]}", "project_id": t.project_id, "kind": "compute", "duration_ms": 10}
    r = c.post("/api/v1/usage", headers=auth, json={"events": [event]})
    assert r.status_code == 200 and r.json()["results"][0]["status"] == "accepted", r.text
    run = c.post("/api/v1/runs", headers=auth, json={"project_id": t.project_id, "agent": "edge"})
    assert run.status_code == 201, run.text
    assert c.patch(f"/api/v1/runs/{run.json()['id']}", headers=auth, json={"status": "running"}).status_code == 200
    assert c.get(f"/api/v1/projects/{t.project_id}/hmac-key", headers=auth).status_code == 200
    assert c.delete(f"/api/v1/projects/{t.project_id}/provider-keys/anthropic", headers=auth).status_code == 204
    revoked = c.delete(f"/api/v1/keys/{suspended.key_id}", headers=auth)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"], revoked.text


def _counts(billing, account_id: str) -> tuple[int, ...]:
    with read_session(billing.engine) as session:
        return tuple(session.execute(select(func.count()).select_from(model).where(model.account_id == account_id))
                     .scalar_one() for model in (AccountKey, Project, ProviderKey, Schedule))


def test_the_services_the_pages_call_refuse_a_suspended_account_and_change_nothing(billing):
    billing = replace(billing, keyring=Keyring.parse(new_key_spec("k1")))
    a = make_account(billing)
    schedule = schedules.create_schedule(billing, a.account_id, project_id=a.project_id, now=T0, **SCHEDULE)
    accounts.set_suspended(billing, a.account_id, True, now=T0)
    before = _counts(billing, a.account_id)
    actions = [
        lambda: account_keys.create_key(billing, a.account_id, name="k", now=T0),
        lambda: projects.create_project(billing, a.account_id, name="p", now=T0),
        lambda: projects.rename_project(billing, a.account_id, a.project_id, name="p", now=T0),
        lambda: projects.delete_project(billing, a.account_id, a.project_id, now=T0),
        lambda: projects.rotate_hmac_key(billing, a.account_id, a.project_id, now=T0),
        lambda: provider_keys.set_provider_key(billing, a.account_id, a.project_id, "anthropic", key=ANTHROPIC_KEY,
                                               now=T0),
        lambda: schedules.create_schedule(billing, a.account_id, project_id=a.project_id, now=T0, **SCHEDULE),
        lambda: schedules.update_schedule(billing, a.account_id, schedule.id, {"enabled": False}, now=T0),
        lambda: schedules.delete_schedule(billing, a.account_id, schedule.id),
    ]
    for action in actions:
        with pytest.raises(AccountSuspended) as caught:
            action()
        assert "suspended" in caught.value.message
    assert _counts(billing, a.account_id) == before
    accounts.set_suspended(billing, a.account_id, False, now=T0)
    projects.create_project(billing, a.account_id, name="after resuming", now=T0)  # resumed: allowed again


def test_the_projects_page_shows_the_refusal_beside_the_form_and_creates_nothing(billing, monkeypatch):
    from portal.pages import projects as page

    a = make_account(billing)
    accounts.set_suspended(billing, a.account_id, True, now=T0)
    monkeypatch.setattr(page, "get_billing", lambda: billing)
    state = SimpleNamespace(new_name="launch", create_error="",
                            _signed_in_user=lambda: SimpleNamespace(account_id=a.account_id))
    assert page.ProjectsState.create.fn(state, {}) is None
    assert "suspended" in state.create_error and state.new_name == "launch"
    assert _counts(billing, a.account_id)[1] == 1  # the default project only


def test_a_suspended_accounts_schedules_start_no_run_until_it_is_resumed(billing):
    a = make_account(billing)
    schedule = schedules.create_schedule(billing, a.account_id, project_id=a.project_id, agent="hourly",
                                         cron="0 * * * *", now=T0)
    accounts.set_suspended(billing, a.account_id, True, now=T0)
    with httpx.Client() as http:
        due = T0 + timedelta(hours=1, minutes=5)
        assert dispatch_due_schedules(billing, due, dispatch_url=None, http=http).runs_created == 0
        accounts.set_suspended(billing, a.account_id, False, now=due)
        assert dispatch_due_schedules(billing, due, dispatch_url=None, http=http).runs_created == 1
    with read_session(billing.engine) as session:
        assert session.execute(select(func.count()).select_from(Run).where(Run.schedule_id == schedule.id)
                               ).scalar_one() == 1


def test_a_suspended_account_cannot_approve_a_cli_sign_in_which_would_make_it_a_key(billing):
    from billing_core.services.device import approve_device, lookup_user_code, start_device_authorization

    a = make_account(billing)
    started = start_device_authorization(billing, client_id="tollgate-cli", requester_ip="203.0.113.9",
                                         requester_agent="tollgate-cli", device_name="laptop", now=T0)
    accounts.set_suspended(billing, a.account_id, True, now=T0)
    with pytest.raises(AccountSuspended):
        approve_device(billing, started.user_code, user_id="usr_1", account_id=a.account_id, now=T0)
    assert lookup_user_code(billing, started.user_code, T0).status == "pending"
