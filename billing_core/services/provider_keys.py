"""A project's own model-provider keys (BYOK): set, replace, remove; sealed at rest, shown masked."""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import delete, select

from ..db.engine import lock_account, read_session, write_session
from ..db.sealed import provider_aad
from ..db.workloads import ProviderKey
from ..errors import Invalid, NotFound
from ..ids import new_id
from .context import Billing
from .journal import Journal
from .projects import owned_project, provider_key_view, require_keyring
from .standing import refuse_if_suspended

PROVIDERS = ("anthropic", "openai")
PROVIDER_NAMES = {"anthropic": "Anthropic", "openai": "OpenAI"}
# Printable ASCII without spaces: what both providers issue, and nothing a header or a log could choke on.
KEY_PATTERN = re.compile(r"sk-[\x21-\x7e]{17,297}")


def check_provider(provider: str) -> str:
    if provider not in PROVIDERS:
        raise Invalid(f"provider: must be one of {', '.join(PROVIDERS)}.", code="unknown_provider")
    return provider


def check_key(provider: str, key: str) -> str:
    """The key when it looks like one this provider issues; refuses a key pasted under the wrong one."""
    looks_anthropic = isinstance(key, str) and key.startswith("sk-ant-")
    if not isinstance(key, str) or not KEY_PATTERN.fullmatch(key) or looks_anthropic != (provider == "anthropic"):
        start = "sk-ant-" if provider == "anthropic" else "sk- (and not sk-ant-)"
        raise Invalid(f"key: an {PROVIDER_NAMES[provider]} key starts with {start} and has 20 to 300 "
                      "visible characters.", code="invalid_provider_key")
    return key


def mask(key: str) -> str:
    """`sk-ant-...abcd` or `sk-...abcd`: enough to recognise the key, too little to use it."""
    head = "sk-ant-" if key.startswith("sk-ant-") else "sk-"
    return f"{head}...{key[-4:]}"


def set_provider_key(billing: Billing, account_id: str, project_id: str, provider: str, *, key: str,
                     now: datetime) -> dict:
    """Store (or replace) the project's key for the provider; answers its masked view."""
    keyring = require_keyring(billing)
    key = check_key(check_provider(provider), key)
    with write_session(billing.engine) as session:
        account = lock_account(session, account_id)  # serialises two PUTs for one project (both would insert)
        project = owned_project(session, account_id, project_id)
        refuse_if_suspended(session, account_id, account)
        row = session.execute(select(ProviderKey).where(ProviderKey.project_id == project.id,
                                                        ProviderKey.provider == provider)).scalar_one_or_none()
        if row is None:
            row = ProviderKey(id=new_id("pk"), account_id=account_id, project_id=project.id, provider=provider,
                              ciphertext="", masked="", created_at=now, updated_at=now)
            session.add(row)
        row.ciphertext = keyring.seal(key, provider_aad(account_id, project.id, provider))
        row.masked, row.updated_at = mask(key), now
        journal = Journal(account_id, now)
        journal.activity("provider_key_set", project.id,
                         f"{PROVIDER_NAMES[provider]} key {row.masked} set for project {project.name}.")
        session.flush()
        journal.flush(session)
        return provider_key_view(row)


def delete_provider_key(billing: Billing, account_id: str, project_id: str, provider: str, *,
                        now: datetime) -> None:
    check_provider(provider)
    with write_session(billing.engine) as session:
        project = owned_project(session, account_id, project_id)
        removed = session.execute(delete(ProviderKey).where(ProviderKey.project_id == project.id,
                                                            ProviderKey.provider == provider)).rowcount
        if not removed:
            raise NotFound(f"This project has no {PROVIDER_NAMES[provider]} key.")
        journal = Journal(account_id, now)
        journal.activity("provider_key_removed", project.id,
                         f"{PROVIDER_NAMES[provider]} key removed from project {project.name}.")
        journal.flush(session)


def open_provider_key(billing: Billing, account_id: str, project_id: str, provider: str) -> str:
    """The key in clear, for the code that calls the provider on the project's behalf."""
    keyring = require_keyring(billing)
    check_provider(provider)
    with read_session(billing.engine) as session:
        project = owned_project(session, account_id, project_id)
        row = session.execute(select(ProviderKey).where(ProviderKey.project_id == project.id,
                                                        ProviderKey.provider == provider)).scalar_one_or_none()
    if row is None:
        raise NotFound(f"This project has no {PROVIDER_NAMES[provider]} key.")
    return keyring.open(row.ciphertext, provider_aad(row.account_id, row.project_id, row.provider))
