"""Provider keys (BYOK) at the service level, on SQLite and PostgreSQL: sealed to their row, shown masked."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from billing_core.crypto import SecretError
from billing_core.db.engine import read_session, write_session
from billing_core.db.workloads import ProviderKey
from billing_core.errors import Invalid, NotFound
from billing_core.services import projects, provider_keys
from billing_core.services.provider_keys import mask, open_provider_key, set_provider_key

from ..conftest import T0
from ..factories import make_account
from .helpers import activity_kinds, activity_texts

ANTHROPIC = "sk-ant-api03-" + "A1b2C3d4" * 10 + "-wxyz"
OPENAI = "sk-proj-" + "Q9r8S7t6" * 8 + "abcd"


def _rows(billing) -> list[ProviderKey]:
    with read_session(billing.engine) as session:
        return list(session.execute(select(ProviderKey).order_by(ProviderKey.created_at)).scalars())


@pytest.mark.parametrize("key, masked", [
    (ANTHROPIC, "sk-ant-...wxyz"), (OPENAI, "sk-...abcd"), ("sk-" + "x" * 30 + "1234", "sk-...1234")])
def test_a_provider_key_is_masked_as_its_prefix_dots_and_last_four(key, masked):
    assert mask(key) == masked


def test_a_provider_key_is_sealed_to_its_project_shown_masked_and_opens_to_the_original(billing):
    account = make_account(billing)
    view = set_provider_key(billing, account.account_id, account.project_id, "anthropic", key=ANTHROPIC, now=T0)
    assert view == {"provider": "anthropic", "masked": "sk-ant-...wxyz", "updated_at": "2026-01-15T12:00:00Z"}
    [row] = _rows(billing)
    assert row.ciphertext.startswith("v1.k1.") and ANTHROPIC[12:-4] not in row.ciphertext
    assert open_provider_key(billing, account.account_id, account.project_id, "anthropic") == ANTHROPIC
    shown = projects.get_project(billing, account.account_id, account.project_id).provider_keys
    assert shown == [view]
    assert activity_kinds(billing, account.account_id)[-1] == "provider_key_set"
    assert ANTHROPIC not in activity_texts(billing, account.account_id)


def test_putting_a_key_again_replaces_it_in_the_same_row(billing):
    account = make_account(billing)
    set_provider_key(billing, account.account_id, account.project_id, "openai", key=OPENAI, now=T0)
    newer = OPENAI[:-4] + "efgh"
    view = set_provider_key(billing, account.account_id, account.project_id, "openai", key=newer,
                            now=T0 + timedelta(hours=1))
    assert view["masked"] == "sk-...efgh" and view["updated_at"] == "2026-01-15T13:00:00Z"
    [row] = _rows(billing)
    assert row.created_at == T0
    assert open_provider_key(billing, account.account_id, account.project_id, "openai") == newer


def test_a_provider_ciphertext_copied_into_another_row_does_not_open(billing):
    a, b = make_account(billing), make_account(billing)
    second = projects.create_project(billing, a.account_id, name="second", now=T0)
    set_provider_key(billing, a.account_id, a.project_id, "anthropic", key=ANTHROPIC, now=T0)
    set_provider_key(billing, a.account_id, second.id, "anthropic", key=ANTHROPIC[:-4] + "2222", now=T0)
    set_provider_key(billing, b.account_id, b.project_id, "anthropic", key=ANTHROPIC[:-4] + "3333", now=T0)
    with write_session(billing.engine) as session:
        stolen = session.execute(select(ProviderKey.ciphertext).where(
            ProviderKey.project_id == a.project_id)).scalar_one()
        session.execute(update(ProviderKey).where(ProviderKey.project_id.in_([second.id, b.project_id]))
                        .values(ciphertext=stolen))
    with pytest.raises(SecretError):  # another project of the same account
        open_provider_key(billing, a.account_id, second.id, "anthropic")
    with pytest.raises(SecretError):  # another account
        open_provider_key(billing, b.account_id, b.project_id, "anthropic")
    assert open_provider_key(billing, a.account_id, a.project_id, "anthropic") == ANTHROPIC


def test_removing_a_key_deletes_its_row_and_removing_it_again_is_not_found(billing):
    account = make_account(billing)
    set_provider_key(billing, account.account_id, account.project_id, "openai", key=OPENAI, now=T0)
    provider_keys.delete_provider_key(billing, account.account_id, account.project_id, "openai", now=T0)
    assert _rows(billing) == []
    with pytest.raises(NotFound, match="no OpenAI key"):
        provider_keys.delete_provider_key(billing, account.account_id, account.project_id, "openai", now=T0)
    assert "provider_key_removed" in activity_kinds(billing, account.account_id)


def test_deleting_a_project_removes_its_provider_keys(billing):
    account = make_account(billing)
    set_provider_key(billing, account.account_id, account.project_id, "openai", key=OPENAI, now=T0)
    projects.delete_project(billing, account.account_id, account.project_id, now=T0)
    assert _rows(billing) == []


@pytest.mark.parametrize("provider", ["mistral", "Anthropic", "", "openai ", "anthropic\x00"])
def test_an_unknown_provider_is_refused_naming_the_field(billing, provider):
    account = make_account(billing)
    with pytest.raises(Invalid) as refused:
        set_provider_key(billing, account.account_id, account.project_id, provider, key=OPENAI, now=T0)
    assert refused.value.code == "unknown_provider" and refused.value.message.startswith("provider:")
    assert _rows(billing) == []


@pytest.mark.parametrize("provider, key", [
    ("openai", ""), ("openai", "not-a-key"), ("openai", "sk-short"), ("openai", ANTHROPIC),
    ("anthropic", OPENAI), ("openai", OPENAI[:20] + " " + OPENAI[20:]), ("openai", OPENAI + "\n"),
    ("openai", OPENAI + "\x00"), ("openai", "sk-" + "é" * 30), ("openai", "sk-" + "x" * 300)])
def test_a_key_that_does_not_look_like_the_providers_is_refused_naming_the_field(billing, provider, key):
    account = make_account(billing)
    with pytest.raises(Invalid) as refused:
        set_provider_key(billing, account.account_id, account.project_id, provider, key=key, now=T0)
    assert refused.value.code == "invalid_provider_key" and refused.value.message.startswith("key:")
    assert _rows(billing) == []


def test_another_accounts_project_is_unknown_to_every_provider_key_action(billing):
    owner, intruder = make_account(billing), make_account(billing)
    set_provider_key(billing, owner.account_id, owner.project_id, "openai", key=OPENAI, now=T0)
    for call in (
            lambda: set_provider_key(billing, intruder.account_id, owner.project_id, "openai", key=OPENAI, now=T0),
            lambda: provider_keys.delete_provider_key(billing, intruder.account_id, owner.project_id, "openai",
                                                      now=T0),
            lambda: open_provider_key(billing, intruder.account_id, owner.project_id, "openai")):
        with pytest.raises(NotFound, match="No such project."):
            call()
    assert open_provider_key(billing, owner.account_id, owner.project_id, "openai") == OPENAI
