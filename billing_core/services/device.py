"""RFC 8628 device authorization: start a request, let a signed-in person approve or deny it, and
hand the polling device a fresh account key exactly once."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from authlib.oauth2.base import OAuth2Error
from authlib.oauth2.rfc6749.errors import (AccessDeniedError, InvalidClientError, InvalidGrantError,
                                           InvalidRequestError)
from authlib.oauth2.rfc8628 import AuthorizationPendingError, ExpiredTokenError, SlowDownError
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from ..db.engine import read_session, write_session
from ..db.identity import DeviceGrant
from ..db.models import Account
from ..errors import Conflict, NotFound, ServiceError
from ..ids import new_id
from ..keys import masked
from .accounts import issue_account_key
from .context import Billing
from .journal import Journal
from .standing import refuse_if_suspended

CLI_CLIENT_ID = "tollgate-cli"
REGISTERED_CLIENTS = frozenset({CLI_CLIENT_ID})  # public clients: they prove nothing but their id
# RFC 8628 section 6.1: consonants only, so no words and no 0/O or 1/I look-alikes; 20^8 is about 34 bits.
USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"
USER_CODE_HALF = 4
EXPIRES_IN_S = 600
INTERVAL_S = 5
SLOW_DOWN_STEP_S = 5  # RFC 8628 section 3.5: slow_down adds 5 s for this and all later polls
MAX_DEVICE_CODE_LEN = 128
MAX_DEVICE_NAME_LEN = 100
PRUNE_AFTER = timedelta(days=1)  # long-dead requests go, so the table and its user codes stay small


class DeviceError(ServiceError):
    """A token or device-code answer other than success; `code` is the RFC 6749/8628 error name."""

    status = 400

    def __init__(self, oauth_error: type[OAuth2Error], message: str) -> None:
        super().__init__(message, code=oauth_error.error)


class UnknownUserCode(NotFound):
    code = "unknown_user_code"


class UserCodeExpired(Conflict):
    code = "user_code_expired"


class UserCodeUsed(Conflict):
    code = "user_code_used"


@dataclass(frozen=True)
class DeviceStart:
    device_code: str  # shown once to the device; only its SHA-256 is stored
    user_code: str
    expires_in: int
    interval: int


@dataclass(frozen=True)
class DeviceRequest:
    """What the approval page shows. `status` is pending|approved|denied|used, or expired for a
    pending request past its `expires_at`."""

    user_code: str
    client_id: str
    requester_ip: str
    requester_agent: str
    device_name: str
    created_at: datetime
    expires_at: datetime
    status: str


def generate_user_code() -> str:
    letters = "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(2 * USER_CODE_HALF))
    return f"{letters[:USER_CODE_HALF]}-{letters[USER_CODE_HALF:]}"


def normalize_user_code(text: object) -> str | None:
    """`XXXX-XXXX` from what a person typed (any case, spaces or dashes anywhere), or None."""
    if not isinstance(text, str) or len(text) > 64:
        return None
    letters = "".join(c for c in text if c.isalnum()).upper()  # RFC 8628 section 6.1: ignore punctuation
    if len(letters) != 2 * USER_CODE_HALF or any(c not in USER_CODE_ALPHABET for c in letters):
        return None
    return f"{letters[:USER_CODE_HALF]}-{letters[USER_CODE_HALF:]}"


def _hash(device_code: str) -> str:
    return hashlib.sha256(device_code.encode("utf-8", "replace")).hexdigest()


def _printable(text: object, limit: int) -> str:
    return "".join(c for c in str(text or "") if c.isprintable())[:limit]


def _require_client(client_id: object) -> str:
    if not isinstance(client_id, str) or client_id not in REGISTERED_CLIENTS:
        raise DeviceError(InvalidClientError, "Unknown client_id; the Tollgate CLI uses tollgate-cli.")
    return client_id


def _device_name(value: object) -> str:
    name = " ".join(str(value or "").split())
    if len(name) > MAX_DEVICE_NAME_LEN:
        raise DeviceError(InvalidRequestError, f"device_name may be at most {MAX_DEVICE_NAME_LEN} characters.")
    if not name.isprintable():
        raise DeviceError(InvalidRequestError, "device_name may not contain control characters.")
    return name


def _locked_grant(session: Session, column, value: str) -> DeviceGrant | None:
    stmt = select(DeviceGrant).where(column == value)
    if session.get_bind().dialect.name != "sqlite":
        stmt = stmt.with_for_update()  # SQLite already holds the database write lock (BEGIN IMMEDIATE)
    return session.execute(stmt).scalar_one_or_none()


def start_device_authorization(billing: Billing, *, client_id: str, requester_ip: str, requester_agent: str,
                               device_name: str, now: datetime) -> DeviceStart:
    """Record a pending request and return its codes; raises DeviceError for an unknown client."""
    _require_client(client_id)
    name = _device_name(device_name)
    device_code = secrets.token_urlsafe(32)
    for _ in range(5):  # a user-code collision is about one in 10^10 per live request: retry, don't fail
        user_code = generate_user_code()
        try:
            with write_session(billing.engine) as session:
                session.execute(delete(DeviceGrant).where(DeviceGrant.expires_at < now - PRUNE_AFTER))
                session.add(DeviceGrant(
                    id=new_id("dev"), device_code_hash=_hash(device_code), user_code=user_code, client_id=client_id,
                    status="pending", interval_s=INTERVAL_S, expires_at=now + timedelta(seconds=EXPIRES_IN_S),
                    requester_ip=_printable(requester_ip, 64), requester_agent=_printable(requester_agent, 300),
                    device_name=name, created_at=now))
        except IntegrityError:
            continue
        return DeviceStart(device_code, user_code, EXPIRES_IN_S, INTERVAL_S)
    raise ServiceError("Could not start the sign-in; try again.", code="server_error", status=503)


def lookup_user_code(billing: Billing, user_code: str, now: datetime) -> DeviceRequest | None:
    """The request behind a typed user code, or None when there is none."""
    code = normalize_user_code(user_code)
    if code is None:
        return None
    with read_session(billing.engine) as session:
        grant = session.execute(select(DeviceGrant).where(DeviceGrant.user_code == code)).scalar_one_or_none()
    if grant is None:
        return None
    status = "expired" if grant.status == "pending" and now >= grant.expires_at else grant.status
    return DeviceRequest(grant.user_code, grant.client_id, grant.requester_ip, grant.requester_agent,
                         grant.device_name, grant.created_at, grant.expires_at, status)


def _pending_grant(session: Session, user_code: str, now: datetime) -> DeviceGrant:
    code = normalize_user_code(user_code)
    grant = _locked_grant(session, DeviceGrant.user_code, code) if code else None
    if grant is None:
        raise UnknownUserCode("No sign-in request has this code. Check the code shown in your terminal.")
    if grant.status in ("approved", "used"):
        raise UserCodeUsed("This code has already been used.")
    if grant.status == "denied":
        raise UserCodeUsed("This sign-in request was already denied.")
    if now >= grant.expires_at:
        raise UserCodeExpired("This code has expired. Run `tollgate login` again for a new one.")
    return grant


def approve_device(billing: Billing, user_code: str, *, user_id: str, account_id: str, now: datetime) -> None:
    """Let the device behind `user_code` collect a key for `account_id` on its next poll."""
    with write_session(billing.engine) as session:
        grant = _pending_grant(session, user_code, now)
        account = session.get(Account, account_id)
        if account is None:
            raise NotFound("No such account.")
        refuse_if_suspended(session, account_id, account)  # approving makes a new account key
        grant.status, grant.user_id, grant.account_id = "approved", user_id, account_id
        journal = Journal(account_id, now)
        where = f" from {grant.requester_ip}" if grant.requester_ip else ""
        journal.activity("device_approved", grant.id,
                         f"CLI sign-in approved for {grant.device_name or 'a device'}{where}.", actor=user_id)
        journal.flush(session)


def deny_device(billing: Billing, user_code: str, *, now: datetime) -> None:
    """Refuse the request; the device's next poll answers access_denied."""
    with write_session(billing.engine) as session:
        _pending_grant(session, user_code, now).status = "denied"


def poll_device_token(billing: Billing, *, device_code: str, client_id: str, now: datetime) -> str:
    """A new account key once the request is approved, exactly once; otherwise raises DeviceError
    with the RFC 8628 section 3.5 code (authorization_pending, slow_down, access_denied, expired_token)
    or invalid_grant / invalid_client."""
    _require_client(client_id)
    if not isinstance(device_code, str) or not 0 < len(device_code) <= MAX_DEVICE_CODE_LEN:
        raise DeviceError(InvalidGrantError, "Unknown device code; run tollgate login again.")
    digest = _hash(device_code)
    with write_session(billing.engine) as session:
        grant = _locked_grant(session, DeviceGrant.device_code_hash, digest)
        if grant is not None and not hmac.compare_digest(grant.device_code_hash, digest):
            grant = None
        outcome = _poll(session, grant, client_id, now)
    # Raised only after the commit: slow_down's longer interval and the poll time must persist.
    if isinstance(outcome, DeviceError):
        raise outcome
    return outcome


def _poll(session: Session, grant: DeviceGrant | None, client_id: str, now: datetime) -> str | DeviceError:
    if grant is None:
        return DeviceError(InvalidGrantError, "Unknown device code; run tollgate login again.")
    if grant.status == "used":
        return DeviceError(InvalidGrantError, "This device code was already exchanged for a key.")
    if grant.client_id != client_id:  # RFC 6749 section 5.2: a grant issued to another client is invalid_grant
        return DeviceError(InvalidGrantError, "This device code was issued to another client.")
    if now >= grant.expires_at:
        return DeviceError(ExpiredTokenError, "The code expired before it was approved; run tollgate login again.")
    if grant.status == "denied":
        return DeviceError(AccessDeniedError, "The sign-in request was denied in the browser.")
    if grant.status == "approved":
        return _issue_key(session, grant, now)
    too_soon = grant.last_polled_at is not None and now - grant.last_polled_at < timedelta(seconds=grant.interval_s)
    grant.last_polled_at = now
    if too_soon:
        grant.interval_s += SLOW_DOWN_STEP_S
        return DeviceError(SlowDownError, f"Polling too fast; wait at least {grant.interval_s} s between polls.")
    return DeviceError(AuthorizationPendingError, "Waiting for the request to be approved in the browser.")


def _issue_key(session: Session, grant: DeviceGrant, now: datetime) -> str:
    name = f"CLI on {grant.device_name}" if grant.device_name else "CLI"
    secret, key = issue_account_key(session, account_id=grant.account_id, name=name[:100], now=now)
    grant.status, grant.account_key_id, grant.last_polled_at = "used", key.id, now
    journal = Journal(grant.account_id, now)
    journal.activity("key_created", key.id, f"Key '{name}' ({masked(key.prefix, key.last4)}) created by CLI sign-in.",
                     actor=grant.user_id or "system")
    journal.flush(session)
    return secret
