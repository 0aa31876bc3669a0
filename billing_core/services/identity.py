"""People signing in: sign-up, password and OpenID Connect sign-in, browser sessions, attempt limits."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import exists, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from ..db.engine import read_session, write_connection, write_session
from ..db.identity import User, WebSession
from ..db.models import Account
from ..errors import Conflict, Invalid, NotFound, ServiceError
from ..ids import new_id
from ..passwords import DUMMY_HASH, check_password, hash_password, needs_rehash, verify_password
from . import accounts
from .attempts import (CODE_ENTRY_PER_IP, CODE_ENTRY_PER_USER, SIGN_IN_PER_DEVICE, SIGN_IN_PER_EMAIL,  # noqa: F401
                       SIGN_IN_PER_EMAIL_IP, SIGN_IN_PER_IP, SIGN_UP_PER_IP, Limit, MemoryRateLimiter,
                       RateLimited, RateLimiter, take)  # the limits are re-exported: callers know them from here
from .context import Billing
from .journal import Journal

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
LAST_SEEN_RESOLUTION = timedelta(minutes=1)  # like account keys: no write on every page load


# -- attempt limits (billing_core/services/attempts.py) -------------------------------------------
class BadCredentials(ServiceError):
    status, code = 401, "invalid_credentials"


def code_entry_attempt(limiter: RateLimiter, *, user_id: str, ip: str, now: datetime) -> None:
    """Count one device-code entry before the lookup; raises RateLimited when the user or the address has
    made too many."""
    take(limiter, [(f"code:user:{user_id}", CODE_ENTRY_PER_USER), (f"code:ip:{ip}", CODE_ENTRY_PER_IP)], now,
         "codes entered")


# -- who is signed in ---------------------------------------------------------------------------
@dataclass(frozen=True)
class SignedIn:
    user_id: str
    account_id: str
    email: str
    name: str
    is_operator: bool


@dataclass(frozen=True)
class StartedSession:
    token: str  # for the cookie only; the database keeps its SHA-256
    expires_at: datetime
    user: SignedIn
    new_device: bool


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _signed_in(user: User) -> SignedIn:
    return SignedIn(user.id, user.account_id, user.email, user.name, user.is_operator)


def describe_agent(user_agent: str) -> str:
    """'Firefox on Linux' from a User-Agent header; the raw start of it when unrecognised."""
    browser = next((name for mark, name in (("Edg/", "Edge"), ("Firefox/", "Firefox"), ("Chrome/", "Chrome"),
                                             ("Safari/", "Safari")) if mark in user_agent), None)
    system = next((name for mark, name in (("Windows", "Windows"), ("iPhone", "iOS"), ("iPad", "iOS"),
                                            ("Mac OS X", "macOS"), ("Android", "Android"), ("Linux", "Linux"))
                   if mark in user_agent), None)
    if browser:
        return f"{browser} on {system}" if system else browser
    return user_agent[:60] or "an unknown client"


def _open_session(session: Session, user: User, *, ip: str, user_agent: str, now: datetime,
                  ttl: timedelta) -> StartedSession:
    token, user_agent = secrets.token_urlsafe(32), user_agent[:300]
    seen = session.execute(select(exists().where(WebSession.user_id == user.id,
                                                 WebSession.user_agent == user_agent))).scalar()
    session.add(WebSession(token_hash=_token_hash(token), user_id=user.id, account_id=user.account_id,
                           created_at=now, expires_at=now + ttl, last_seen_at=now, ip=ip[:64],
                           user_agent=user_agent))
    if not seen:  # DESIGN.md: a sign-in from a new device is worth a line in the activity feed
        journal = Journal(user.account_id, now)
        journal.activity("signed_in", user.id, f"New sign-in from {describe_agent(user_agent)}"
                         + (f" ({ip})." if ip else "."), actor=user.email)
        journal.flush(session)
    return StartedSession(token, now + ttl, _signed_in(user), new_device=not seen)


def _start(billing: Billing, user: User, *, ip: str, user_agent: str, now: datetime,
           ttl: timedelta) -> StartedSession:
    with write_session(billing.engine) as session:
        return _open_session(session, user, ip=ip, user_agent=user_agent, now=now, ttl=ttl)


def authenticate_session(billing: Billing, token: str, *, now: datetime) -> SignedIn | None:
    """The user of a live session token; None when unknown, expired or revoked."""
    if not token:
        return None
    digest = _token_hash(token)
    with read_session(billing.engine) as session:
        row = session.execute(select(WebSession, User).join(User, User.id == WebSession.user_id)
                              .where(WebSession.token_hash == digest)).first()
    if row is None:
        return None
    web, user = row
    if not hmac.compare_digest(web.token_hash, digest) or web.revoked_at is not None or web.expires_at <= now:
        return None
    if now - web.last_seen_at > LAST_SEEN_RESOLUTION:
        with write_session(billing.engine) as session:
            session.execute(update(WebSession).where(WebSession.token_hash == digest).values(last_seen_at=now))
    return _signed_in(user)


def end_session(billing: Billing, token: str, *, now: datetime) -> None:
    """Revoke the session (sign-out); an unknown or already revoked token is no error."""
    if not token:
        return
    with write_session(billing.engine) as session:
        session.execute(update(WebSession).where(WebSession.token_hash == _token_hash(token),
                                                 WebSession.revoked_at.is_(None)).values(revoked_at=now))


# -- local accounts -----------------------------------------------------------------------------
def _clean_email(email: str) -> str:
    email = (email or "").strip().lower()
    if len(email) > 320 or not EMAIL.match(email):
        raise Invalid("Give a valid email address, such as ada@example.com.", code="invalid_email")
    return email


def _clean_name(name: str) -> str:
    return " ".join((name or "").split())[:100]


def _insert_user(billing: Billing, user: User) -> User:
    try:
        with write_session(billing.engine) as session:
            session.add(user)
    except IntegrityError:
        raise Conflict(f"{user.email} already has a sign-in; sign in instead.", code="email_taken") from None
    return user


def create_user(billing: Billing, *, account_id: str, email: str, password: str, name: str = "",
                now: datetime) -> SignedIn:
    """Give an existing account a user who signs in with this password (operators, the demo)."""
    email = _clean_email(email)
    problem = check_password(password, email=email)
    if problem:
        raise Invalid(problem.message, code=problem.code)
    user = User(id=new_id("usr"), account_id=account_id, email=email, name=_clean_name(name),
                password_hash=hash_password(password), created_at=now)
    return _signed_in(_insert_user(billing, user))


def login_email(email: str) -> str:
    """The email as sign-in compares it (and counts attempts against it)."""
    return (email or "").strip().lower()[:320]


def sign_up(billing: Billing, limiter: RateLimiter, *, email: str, password: str, name: str = "", ip: str,
            user_agent: str, now: datetime, ttl: timedelta) -> StartedSession:
    """A new hobby account, its first project and key, its user and a first session, in one transaction."""
    email = _clean_email(email)
    problem = check_password(password, email=email)
    if problem:
        raise Invalid(problem.message, code=problem.code)
    take(limiter, [(f"sign-up:ip:{ip}", SIGN_UP_PER_IP)], now, "sign-ups from your address")
    taken = Conflict(f"{email} already has an account; sign in instead.", code="email_taken")
    with read_session(billing.engine) as session:
        if session.execute(select(exists().where(User.email == email))).scalar():
            raise taken
    password_hash = hash_password(password)  # before the transaction: Argon2 must not hold the write lock
    try:
        with write_session(billing.engine) as session:
            created = accounts.open_account(session, billing, email=email, plan="hobby", now=now)
            user = User(id=new_id("usr"), account_id=created.account_id, email=email, name=_clean_name(name),
                        password_hash=password_hash, created_at=now)
            session.add(user)
            session.flush()
            return _open_session(session, user, ip=ip, user_agent=user_agent, now=now, ttl=ttl)
    except IntegrityError:  # the same email signed up in between: nothing of this one is left
        raise taken from None


def sign_in(billing: Billing, limiter: RateLimiter, *, email: str, password: str, ip: str, user_agent: str,
            now: datetime, ttl: timedelta, device: str | None = None) -> StartedSession:
    """A session for the right email and password.

    Every attempt is counted before the password is checked: per email and address, and per address and per
    email across addresses, or instead of those two per browser when `device` (the id of a device cookie
    issued to this email) says the browser signed in to it before, so strangers cannot lock its owner out.
    """
    email = login_email(email)
    pair = (f"sign-in:email-ip:{email}|{ip}", SIGN_IN_PER_EMAIL_IP)
    # A browser that proved this email's password before is counted on its own (and its successes clear
    # the count); the address's and the email's counts are for browsers nobody knows.
    shared = [(f"sign-in:device:{device}", SIGN_IN_PER_DEVICE)] if device else [
        (f"sign-in:ip:{ip}", SIGN_IN_PER_IP), (f"sign-in:email:{email}", SIGN_IN_PER_EMAIL)]
    take(limiter, [pair, *shared], now, "sign-in attempts")
    with read_session(billing.engine) as session:
        user = session.execute(select(User).where(User.email == email)).scalar_one_or_none()
    stored = user.password_hash if user is not None and user.password_hash else None
    # An unknown email (or an OIDC-only user) still pays for one Argon2 verification: same time, same answer.
    matches = verify_password(stored or DUMMY_HASH, password or "") and stored is not None
    if not matches:
        raise BadCredentials("That email and password do not match an account.")
    # The right password clears the counts it proves (this address at this email, this browser); the
    # address's and the email's stay, or anyone with an account of their own could reset them between guesses.
    limiter.clear(*pair)
    if device:
        limiter.clear(*shared[0])
    if needs_rehash(stored):
        with write_session(billing.engine) as session:
            session.execute(update(User).where(User.id == user.id).values(password_hash=hash_password(password)))
    return _start(billing, user, ip=ip, user_agent=user_agent, now=now, ttl=ttl)


# -- OpenID Connect -----------------------------------------------------------------------------
def sign_in_with_oidc(billing: Billing, *, issuer: str, subject: str, email: str | None, email_verified: bool,
                      name: str = "", ip: str, user_agent: str, now: datetime, ttl: timedelta) -> StartedSession:
    """Sign in the user linked to this provider identity, linking or creating one on first sign-in.

    Linking and creating need an email the provider says it verified: otherwise anyone could claim
    someone else's account by typing their address at a provider.
    """
    if not issuer or not subject:
        raise Invalid("The provider did not say who you are.", code="oidc_no_subject")
    with read_session(billing.engine) as session:
        user = session.execute(select(User).where(User.oidc_issuer == issuer, User.oidc_subject == subject)
                               ).scalar_one_or_none()
    if user is None:
        if not email or email_verified is not True:
            raise Invalid("Your provider did not confirm your email address, so it cannot be used to sign in.",
                          code="oidc_email_unverified")
        user = _link_or_create(billing, issuer=issuer, subject=subject, email=_clean_email(email),
                               name=_clean_name(name), now=now)
    return _start(billing, user, ip=ip, user_agent=user_agent, now=now, ttl=ttl)


def _link_or_create(billing: Billing, *, issuer: str, subject: str, email: str, name: str, now: datetime) -> User:
    try:
        with write_session(billing.engine) as session:
            user = session.execute(select(User).where(User.email == email)).scalar_one_or_none()
            if user is not None:
                if user.oidc_subject is not None:
                    raise Conflict(f"{email} is already linked to another single sign-on identity.",
                                   code="oidc_identity_conflict")
                user.oidc_issuer, user.oidc_subject = issuer, subject
                return user
            account_id = session.execute(select(Account.id).where(Account.email == email)).scalar_one_or_none()
            if account_id is None:  # in the same transaction as the user: a failure leaves neither
                account_id = accounts.open_account(session, billing, email=email, plan="hobby", now=now).account_id
            elif session.execute(select(exists().where(User.account_id == account_id))).scalar():
                raise Conflict(f"The account of {email} belongs to someone else.", code="email_taken")
            # An account an operator made for this address, with nobody in it yet, is claimed by its verified owner.
            user = User(id=new_id("usr"), account_id=account_id, email=email, name=name, oidc_issuer=issuer,
                        oidc_subject=subject, created_at=now)
            session.add(user)
            return user
    except IntegrityError:
        raise Conflict(f"{email} already has a sign-in; sign in instead.", code="email_taken") from None


def set_operator(billing: Billing, email: str, is_operator: bool = True) -> str:
    """Flag (or unflag) the user with this email as an operator; returns the user's id. Emails match
    without regard to case: they are stored in lower case."""
    address = email.strip()
    with write_connection(billing.engine) as conn:
        row = conn.execute(update(User).where(User.email == address.lower())
                           .values(is_operator=is_operator).returning(User.id)).first()
    if row is None:
        raise NotFound(f"No user with email {address}.")
    return row.id
