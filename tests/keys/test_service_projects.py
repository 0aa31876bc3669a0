"""Projects at the service level, on SQLite and PostgreSQL: limits, renames, soft deletes, pages, tenancy."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest

from billing_core.db.engine import read_session
from billing_core.db.models import Project
from billing_core.errors import Conflict, Invalid, NotFound
from billing_core.services import projects
from billing_core.services.context import Billing
from billing_core.services.usage import record_usage

from ..conftest import T0
from ..factories import compute, make_account
from .helpers import activity_kinds


def _cursor(created: str, row_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([created, row_id]).encode()).rstrip(b"=").decode()


def test_a_new_project_is_listed_with_its_masked_hmac_key_and_no_provider_keys(billing):
    account = make_account(billing)
    project = projects.create_project(billing, account.account_id, name="  research  ", now=T0)
    view = projects.get_project(billing, account.account_id, project.id).to_dict()
    assert set(view) == {"id", "name", "created_at", "hmac_key", "provider_keys"}
    assert view["name"] == "research" and view["created_at"] == "2026-01-15T12:00:00Z"
    assert view["hmac_key"]["prefix"].startswith("hk_live_") and len(view["hmac_key"]["last4"]) == 4
    assert view["hmac_key"]["rotated_at"] is None and view["hmac_key"]["previous_valid_until"] is None
    assert view["provider_keys"] == []
    assert "project_created" in activity_kinds(billing, account.account_id)


def test_the_hobby_plan_refuses_a_fourth_project_and_a_deleted_one_frees_its_slot(billing):
    account = make_account(billing)  # hobby: 3 projects, the default one included
    extra = [projects.create_project(billing, account.account_id, name=f"p{i}", now=T0) for i in range(2)]
    with pytest.raises(Conflict) as refused:
        projects.create_project(billing, account.account_id, name="one too many", now=T0)
    assert refused.value.code == "project_limit_reached" and refused.value.status == 409
    assert "hobby plan allows 3 projects" in refused.value.message
    projects.delete_project(billing, account.account_id, extra[0].id, now=T0)
    assert projects.create_project(billing, account.account_id, name="fits again", now=T0).name == "fits again"


def test_renaming_changes_only_the_name_and_writes_one_activity_row(billing):
    account = make_account(billing)
    before = projects.get_project(billing, account.account_id, account.project_id)
    after = projects.rename_project(billing, account.account_id, account.project_id, name="prod", now=T0)
    assert after.name == "prod" and after.id == before.id and after.hmac_key == before.hmac_key
    projects.rename_project(billing, account.account_id, account.project_id, name="prod", now=T0)
    assert activity_kinds(billing, account.account_id).count("project_renamed") == 1


@pytest.mark.parametrize("name", ["", "   ", "x" * 101, "a\x00b", "tab\tinside", "\ud800", None, 42])
def test_a_bad_project_name_is_refused_and_nothing_changes(billing, name):
    account = make_account(billing)
    with pytest.raises(Invalid) as refused:
        projects.create_project(billing, account.account_id, name=name, now=T0)
    assert refused.value.code == "invalid_name" and refused.value.message.startswith("name:")
    with pytest.raises(Invalid):
        projects.rename_project(billing, account.account_id, account.project_id, name=name, now=T0)
    page = projects.list_projects(billing, account.account_id, limit=50, cursor=None)
    assert [p.name for p in page.items] == ["default"]


def test_a_deleted_project_is_gone_from_reads_and_its_usage_is_refused_as_unknown_project(billing):
    account = make_account(billing, credit_micros=1_000_000)
    projects.delete_project(billing, account.account_id, account.project_id, now=T0)
    for read in (lambda: projects.get_project(billing, account.account_id, account.project_id),
                 lambda: projects.rename_project(billing, account.account_id, account.project_id, name="x", now=T0),
                 lambda: projects.delete_project(billing, account.account_id, account.project_id, now=T0),
                 lambda: projects.rotate_hmac_key(billing, account.account_id, account.project_id, now=T0)):
        with pytest.raises(NotFound):
            read()
    assert projects.list_projects(billing, account.account_id, limit=50, cursor=None).items == []
    result = record_usage(billing, account.account_id, [compute(account.project_id, 1000)], now=T0).results[0]
    assert (result.status, result.error_code) == ("rejected", "unknown_project")
    with read_session(billing.engine) as session:
        row = session.get(Project, account.project_id)
    assert row.deleted_at == T0 and row.hmac_ciphertext is None and row.previous_hmac_ciphertext is None


def test_another_accounts_project_is_exactly_as_unknown_as_an_id_never_issued(billing):
    owner, intruder = make_account(billing), make_account(billing)
    answers = []
    for project_id in (owner.project_id, "prj_" + "Z" * 20, "not an id", "x" * 500, "prj\x00"):
        for call in (lambda: projects.get_project(billing, intruder.account_id, project_id),
                     lambda: projects.rename_project(billing, intruder.account_id, project_id, name="x", now=T0),
                     lambda: projects.delete_project(billing, intruder.account_id, project_id, now=T0),
                     lambda: projects.reveal_hmac_key(billing, intruder.account_id, project_id),
                     lambda: projects.rotate_hmac_key(billing, intruder.account_id, project_id, now=T0)):
            with pytest.raises(NotFound) as refused:
                call()
            answers.append((refused.value.code, refused.value.message))
    assert set(answers) == {("not_found", "No such project.")}
    assert projects.get_project(billing, owner.account_id, owner.project_id).name == "default"


def test_pages_of_projects_cover_every_project_once_newest_first(billing):
    account = make_account(billing, plan="pro")
    made = [projects.create_project(billing, account.account_id, name=f"p{i}", now=T0 + timedelta(seconds=i % 3))
            for i in range(7)]
    seen, cursor = [], None
    while True:
        page = projects.list_projects(billing, account.account_id, limit=3, cursor=cursor)
        seen += [p.id for p in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert sorted(seen) == sorted([p.id for p in made] + [account.project_id]) and len(seen) == len(set(seen))
    created = [projects.get_project(billing, account.account_id, pid).created_at for pid in seen]
    assert created == sorted(created, reverse=True)


@pytest.mark.parametrize("cursor", ["garbage", _cursor("2026-01-01T00:00:00", "prj_x"),
                                    _cursor("2026-01-01T00:00:00+00:00", "prj\x00x"),
                                    _cursor("2026-01-01T00:00:00+00:00", "a" * 41), "W10", "bnVsbA"])
def test_a_cursor_this_api_never_gave_out_is_refused_as_invalid_cursor(billing, cursor):
    account = make_account(billing)
    with pytest.raises(Invalid) as refused:
        projects.list_projects(billing, account.account_id, limit=10, cursor=cursor)
    assert refused.value.code == "invalid_cursor"


@pytest.mark.parametrize("limit", [0, -1, 501])
def test_a_limit_outside_1_to_500_is_refused(billing, limit):
    account = make_account(billing)
    with pytest.raises(Invalid) as refused:
        projects.list_projects(billing, account.account_id, limit=limit, cursor=None)
    assert refused.value.code == "invalid_limit"


def test_a_project_made_without_a_keyring_has_no_hmac_key_until_its_first_rotation(billing):
    keyless = Billing(billing.engine, billing.catalog)  # as the older tests build it
    account = make_account(keyless)
    assert projects.get_project(billing, account.account_id, account.project_id).hmac_key is None
    with pytest.raises(NotFound) as missing:
        projects.reveal_hmac_key(billing, account.account_id, account.project_id)
    assert missing.value.code == "no_hmac_key"
    rotated = projects.rotate_hmac_key(billing, account.account_id, account.project_id, now=T0)
    assert rotated.hmac_key["previous_valid_until"] is None
    assert projects.reveal_hmac_key(billing, account.account_id, account.project_id) == rotated.secret
