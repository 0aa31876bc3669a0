"""Projects of an account: create, list, rename, soft-delete, and each project's HMAC signing key."""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlmodel import Session

from .. import notify
from ..crypto import Keyring
from ..db.engine import is_sqlite, lock_account, read_session, write_session
from ..db.models import Project
from ..db.sealed import hmac_aad
from ..db.workloads import ProviderKey
from ..errors import Conflict, Invalid, NotFound
from ..ids import new_id
from ..keys import HMAC_KEY_PREFIX, generate
from ..sync.outbox import note_changed, project_item
from .context import Billing
from .journal import Journal
from .paging import Page, decode_cursor, paginate
from .standing import refuse_if_suspended
from .views import rfc3339

HMAC_GRACE = timedelta(hours=24)
NAME_MAX = 100
# Every id this app hands out; anything else is unknown without asking the database (and a NUL byte,
# which PostgreSQL refuses in text, never reaches it).
ID_PATTERN = re.compile(r"[A-Za-z0-9_]{1,40}")
SIGNATURE_PATTERN = re.compile(r"[0-9A-Fa-f]{64}")
NO_PROJECT = "No such project."


# -- shared checks ------------------------------------------------------------------------------
def is_id(value: object) -> bool:
    return isinstance(value, str) and ID_PATTERN.fullmatch(value) is not None


def clean_name(name: str, what: str = "project") -> str:
    """The name trimmed; refused when empty, over 100 characters, or holding control characters."""
    name = name.strip() if isinstance(name, str) else ""
    # Control characters and lone surrogates cannot be stored (NUL in PostgreSQL, surrogates in UTF-8).
    if not 1 <= len(name) <= NAME_MAX or any(unicodedata.category(c) in ("Cc", "Cs") for c in name):
        raise Invalid(f"name: a {what} name has 1 to {NAME_MAX} characters and no control characters.",
                      code="invalid_name")
    return name


def checked_cursor(cursor: str | None) -> str | None:
    """The cursor when it could have come from this API; a forged one would reach SQL as a bad value."""
    if not cursor:
        return None
    created, row_id = decode_cursor(cursor)
    if created.tzinfo is None or not is_id(row_id):
        raise Invalid("The cursor is not one this API gave out.", code="invalid_cursor")
    return cursor


def require_keyring(billing: Billing) -> Keyring:
    if billing.keyring is None:
        raise RuntimeError("this service holds secrets and needs a Billing built with a keyring")
    return billing.keyring


def owned_project(session: Session, account_id: str, project_id: str, *, lock: bool = False) -> Project:
    """The account's live project; another account's id is as unknown as one never issued."""
    if not is_id(project_id):
        raise NotFound(NO_PROJECT)
    stmt = select(Project).where(Project.id == project_id, Project.account_id == account_id,
                                 Project.deleted_at.is_(None))
    if lock and not is_sqlite(session.get_bind()):
        stmt = stmt.with_for_update()  # SQLite's write transaction already holds the database lock
    project = session.execute(stmt).scalar_one_or_none()
    if project is None:
        raise NotFound(NO_PROJECT)
    return project


# -- views --------------------------------------------------------------------------------------
def _to_millis(value: datetime) -> datetime:
    """Cut to what RFC 3339 output shows, so the grace ends exactly at the time the customer is told."""
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def _time(value: datetime | None) -> str | None:
    return rfc3339(value) if value else None


@dataclass(frozen=True)
class ProjectView:
    id: str
    name: str
    created_at: str
    hmac_key: dict | None  # None for a project made without a keyring (its first rotation issues one)
    provider_keys: list

    def to_dict(self) -> dict:
        return asdict(self)


def hmac_key_view(project: Project) -> dict | None:
    if project.hmac_ciphertext is None:
        return None
    return {"prefix": project.hmac_prefix, "last4": project.hmac_last4,
            "rotated_at": _time(project.hmac_rotated_at),
            "previous_valid_until": _time(project.previous_hmac_valid_until)}


def provider_key_view(row: ProviderKey) -> dict:
    return {"provider": row.provider, "masked": row.masked, "updated_at": rfc3339(row.updated_at)}


def project_view(project: Project, provider_keys: list[ProviderKey] = ()) -> ProjectView:
    return ProjectView(id=project.id, name=project.name, created_at=rfc3339(project.created_at),
                       hmac_key=hmac_key_view(project),
                       provider_keys=[provider_key_view(k) for k in sorted(provider_keys, key=lambda k: k.provider)])


def _provider_keys_by_project(session: Session, project_ids: list[str]) -> dict[str, list[ProviderKey]]:
    found: dict[str, list[ProviderKey]] = {pid: [] for pid in project_ids}
    if project_ids:
        for row in session.execute(select(ProviderKey).where(ProviderKey.project_id.in_(project_ids))).scalars():
            found[row.project_id].append(row)
    return found


# -- the HMAC key ---------------------------------------------------------------------------------
def _hmac_aad(project: Project) -> bytes:
    return hmac_aad(project.account_id, project.id)


def _install_hmac_key(keyring: Keyring, project: Project, secret: str) -> None:
    project.hmac_ciphertext = keyring.seal(secret, _hmac_aad(project))
    project.hmac_prefix = secret[: len(HMAC_KEY_PREFIX) + 4]
    project.hmac_last4 = secret[-4:]


def new_project(keyring: Keyring | None, *, account_id: str, name: str, now: datetime) -> Project:
    """A project row with its first HMAC key sealed, when the billing context holds a keyring."""
    project = Project(id=new_id("prj"), account_id=account_id, name=name, created_at=now)
    if keyring is not None:
        _install_hmac_key(keyring, project, generate(HMAC_KEY_PREFIX))
    return project


def note_hmac_key_created(journal: Journal, project: Project) -> None:
    if project.hmac_ciphertext is not None:
        journal.activity("hmac_key_created", project.id,
                         f"HMAC key {project.hmac_prefix}...{project.hmac_last4} created for project {project.name}.")


@dataclass(frozen=True)
class RotatedKey:
    secret: str  # shown once
    hmac_key: dict


def reveal_hmac_key(billing: Billing, account_id: str, project_id: str) -> str:
    """The project's current HMAC key in clear, for its owner to copy."""
    keyring = require_keyring(billing)
    with read_session(billing.engine) as session:
        project = owned_project(session, account_id, project_id)
    if project.hmac_ciphertext is None:
        raise NotFound("This project has no HMAC key yet; rotate to issue one.", code="no_hmac_key")
    return keyring.open(project.hmac_ciphertext, _hmac_aad(project))


@notify.after_commit
def rotate_hmac_key(billing: Billing, account_id: str, project_id: str, *, now: datetime) -> RotatedKey:
    """A new current key; the old one keeps verifying for 24 h (a second rotation within them ends it)."""
    keyring = require_keyring(billing)
    with write_session(billing.engine) as session:
        # Locked so two rotations at once cannot both demote the same key and lose the first new one.
        project = owned_project(session, account_id, project_id, lock=True)
        refuse_if_suspended(session, account_id)
        if project.hmac_ciphertext is not None:
            # Both columns are sealed with the same associated data, so the old ciphertext moves as it is.
            project.previous_hmac_ciphertext = project.hmac_ciphertext
            project.previous_hmac_valid_until = _to_millis(now + HMAC_GRACE)
        secret = generate(HMAC_KEY_PREFIX)
        _install_hmac_key(keyring, project, secret)
        project.hmac_rotated_at = now
        note_changed(session, now, project_item(project.id))  # the edge's list of valid HMAC keys
        journal = Journal(account_id, now)
        journal.activity("hmac_key_rotated", project.id,
                         f"HMAC key of project {project.name} rotated; the previous one works for 24 hours.")
        journal.flush(session)
        return RotatedKey(secret, hmac_key_view(project))


def _valid_hmac_secrets(keyring: Keyring, project: Project, now: datetime) -> list[str]:
    secrets = []
    if project.hmac_ciphertext is not None:
        secrets.append(keyring.open(project.hmac_ciphertext, _hmac_aad(project)))
    if project.previous_hmac_ciphertext is not None and project.previous_hmac_valid_until is not None \
            and now < project.previous_hmac_valid_until:
        secrets.append(keyring.open(project.previous_hmac_ciphertext, _hmac_aad(project)))
    return secrets


def verify_hmac_signature(billing: Billing, project_id: str, message: bytes, signature_hex: str,
                          now: datetime) -> bool:
    """True when signature_hex is HMAC-SHA256 of message under the project's current key, or under its
    previous key until the grace period ends. The key is the full `hk_live_...` string as UTF-8."""
    keyring = require_keyring(billing)
    if not is_id(project_id) or not isinstance(signature_hex, str) \
            or not SIGNATURE_PATTERN.fullmatch(signature_hex):
        return False
    with read_session(billing.engine) as session:
        project = session.execute(select(Project).where(Project.id == project_id,
                                                        Project.deleted_at.is_(None))).scalar_one_or_none()
    if project is None:
        return False
    expected = bytes.fromhex(signature_hex)
    matched = False
    for secret in _valid_hmac_secrets(keyring, project, now):
        # No early exit: the time taken does not tell which key (if any) matched.
        matched |= hmac.compare_digest(hmac.new(secret.encode(), message, hashlib.sha256).digest(), expected)
    return matched


# -- projects -----------------------------------------------------------------------------------
@notify.after_commit
def create_project(billing: Billing, account_id: str, *, name: str, now: datetime) -> Project:
    """A new project with its HMAC key, refused with a clear error once the plan's project limit is reached."""
    name = clean_name(name)
    with write_session(billing.engine) as session:
        account = lock_account(session, account_id)
        if account is None:
            raise NotFound("No such account.")
        refuse_if_suspended(session, account_id, account)
        limit = billing.catalog.plan(account.plan).max_projects
        count = session.execute(select(func.count()).select_from(Project).where(
            Project.account_id == account_id, Project.deleted_at.is_(None))).scalar_one()
        if limit is not None and count >= limit:
            raise Conflict(f"The {account.plan} plan allows {limit} projects; delete one or upgrade.",
                           code="project_limit_reached")
        project = new_project(billing.keyring, account_id=account_id, name=name, now=now)
        session.add(project)
        journal = Journal(account_id, now)
        journal.activity("project_created", project.id, f"Project {name} created.")
        note_hmac_key_created(journal, project)
        session.flush()
        note_changed(session, now, project_item(project.id))
        journal.flush(session)
        return project


def list_projects(billing: Billing, account_id: str, *, limit: int, cursor: str | None) -> Page[ProjectView]:
    """The account's live projects, newest first."""
    cursor = checked_cursor(cursor)
    stmt = select(Project).where(Project.account_id == account_id, Project.deleted_at.is_(None))
    with read_session(billing.engine) as session:
        page = paginate(session, stmt, Project, limit=limit, cursor=cursor)
        keys = _provider_keys_by_project(session, [p.id for p in page.items])
    return Page([project_view(p, keys[p.id]) for p in page.items], page.next_cursor)


def get_project(billing: Billing, account_id: str, project_id: str) -> ProjectView:
    with read_session(billing.engine) as session:
        project = owned_project(session, account_id, project_id)
        return project_view(project, _provider_keys_by_project(session, [project.id])[project.id])


@notify.after_commit
def rename_project(billing: Billing, account_id: str, project_id: str, *, name: str,
                   now: datetime) -> ProjectView:
    name = clean_name(name)
    with write_session(billing.engine) as session:
        project = owned_project(session, account_id, project_id, lock=True)
        refuse_if_suspended(session, account_id)
        if project.name != name:
            journal = Journal(account_id, now)
            journal.activity("project_renamed", project.id, f"Project {project.name} renamed to {name}.")
            project.name = name
            note_changed(session, now, project_item(project.id))
            journal.flush(session)
        return project_view(project, _provider_keys_by_project(session, [project.id])[project.id])


@notify.after_commit
def delete_project(billing: Billing, account_id: str, project_id: str, *, now: datetime) -> None:
    """Soft-delete: usage for the project is refused from now on; its history stays."""
    with write_session(billing.engine) as session:
        project = owned_project(session, account_id, project_id, lock=True)
        refuse_if_suspended(session, account_id)
        project.deleted_at = now
        # A deleted project can never use its secrets again, so none of them is kept at rest.
        project.hmac_ciphertext = project.previous_hmac_ciphertext = None
        project.previous_hmac_valid_until = None
        session.execute(delete(ProviderKey).where(ProviderKey.project_id == project.id))
        journal = Journal(account_id, now)
        journal.activity("project_deleted", project.id, f"Project {project.name} deleted.")
        note_changed(session, now, project_item(project.id))  # the edge drops the project
        journal.flush(session)
