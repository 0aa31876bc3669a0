"""An account's alert thresholds, where its alerts go (email, signed webhook), and its user's profile
(name; the email is the sign-in and stays)."""

from __future__ import annotations

import base64
import ipaddress
import os
import re
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlmodel import Session

from .. import notify
from ..db.engine import read_session, write_session
from ..db.identity import User
from ..db.models import Account
from ..db.sealed import webhook_aad
from ..db.settings import AccountSettings
from ..errors import Invalid, NotFound
from ..money import MAX_MICROS, usd_to_micros
from .context import Billing
from .journal import Journal
from .projects import require_keyring

ALLOWANCE_STEPS = (50, 80, 100)  # percent of the period's allowance
DEFAULT_THRESHOLDS = ALLOWANCE_STEPS
NAME_MAX = 100
EMAIL_MAX, URL_MAX = 320, 500  # the columns' widths
# ASCII addresses only: what every SMTP server accepts without SMTPUTF8.
EMAIL_PATTERN = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@"
                           r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}")
WEBHOOK_SECRET_PREFIX = "whsec_"
WEBHOOK_SECRET_BYTES = 24


@dataclass(frozen=True)
class AlertSettings:
    allowance_thresholds: tuple[int, ...] = DEFAULT_THRESHOLDS
    daily_spend_micros: int | None = None  # alert when a UTC day's spend reaches this; None: off
    low_credit_micros: int | None = None  # alert when the credit balance falls below this; None: off
    updated_at: datetime | None = None  # None: never saved, these are the defaults


@dataclass(frozen=True)
class Profile:
    user_id: str
    email: str
    name: str


@dataclass(frozen=True)
class AlertDelivery:
    alert_email: str | None  # None: alerts go to default_email
    default_email: str  # the owner's sign-in email (else the account's)
    webhook_url: str | None  # None: no webhook
    has_webhook_secret: bool  # a secret exists (made with the first webhook URL; revealed on request)


@dataclass(frozen=True)
class SettingsView:
    profile: Profile
    alerts: AlertSettings
    delivery: AlertDelivery | None = None


# -- input ----------------------------------------------------------------------------------------
def parse_usd_limit(text: str, field: str) -> int | None:
    """A USD amount typed by a person ("25", "$1,250.50") as micros, exactly; blank means off (None)."""
    typed = (text or "").strip()
    if typed == "":
        return None
    try:
        micros = usd_to_micros(typed.replace(",", "").removeprefix("$").strip())
    except ValueError:
        raise Invalid(f"{field}: give an amount in USD such as 25 or 12.50.", code="invalid_amount") from None
    return check_limit(micros, field)


def check_limit(micros: int | None, field: str) -> int | None:
    if micros is None:
        return None
    if not isinstance(micros, int) or isinstance(micros, bool) or not 0 < micros <= MAX_MICROS:
        raise Invalid(f"{field}: must be more than $0 and at most $1,000,000,000.", code="invalid_amount")
    return micros


def check_thresholds(thresholds) -> tuple[int, ...]:
    """The chosen allowance steps, ascending, each once; anything but 50, 80 and 100 is refused."""
    chosen = set(thresholds)
    if not chosen <= set(ALLOWANCE_STEPS):
        raise Invalid("allowance_thresholds: choose among 50, 80 and 100 percent.", code="invalid_thresholds")
    return tuple(sorted(chosen))


def decode_thresholds(stored: str) -> tuple[int, ...]:
    return tuple(int(part) for part in stored.split(",") if part.strip().isdigit())


def _alerts(row: AccountSettings | None) -> AlertSettings:
    if row is None:
        return AlertSettings()
    return AlertSettings(decode_thresholds(row.allowance_thresholds), row.daily_spend_micros, row.low_credit_micros,
                         row.updated_at)


# -- alert thresholds -----------------------------------------------------------------------------
def get_alert_settings(billing: Billing, account_id: str) -> AlertSettings:
    """The account's thresholds; the defaults (50/80/100 %, no spend or credit alert) until first saved."""
    with read_session(billing.engine) as session:
        return _alerts(session.get(AccountSettings, account_id))


def save_alert_settings(billing: Billing, account_id: str, *, allowance_thresholds, daily_spend_micros: int | None,
                        low_credit_micros: int | None, now: datetime) -> AlertSettings:
    """Replace the account's thresholds as a whole; bad input changes nothing."""
    thresholds = check_thresholds(allowance_thresholds)
    daily = check_limit(daily_spend_micros, "daily_spend")
    low = check_limit(low_credit_micros, "low_credit")
    with write_session(billing.engine) as session:
        row = session.get(AccountSettings, account_id)
        if row is None:
            row = AccountSettings(account_id=account_id, updated_at=now)
            session.add(row)
        row.allowance_thresholds = ",".join(str(t) for t in thresholds)
        row.daily_spend_micros, row.low_credit_micros, row.updated_at = daily, low, now
        session.flush()
        return _alerts(row)


# -- profile --------------------------------------------------------------------------------------
def clean_display_name(name: str) -> str:
    """Runs of whitespace made one space; refused when over 100 characters or holding control characters."""
    text = " ".join((name or "").split())
    if len(text) > NAME_MAX or any(ord(c) < 32 or ord(c) == 127 or 0xD800 <= ord(c) <= 0xDFFF for c in text):
        raise Invalid(f"name: at most {NAME_MAX} characters, without control characters.", code="invalid_name")
    return text


def _owned_user(session, account_id: str, user_id: str) -> User:
    user = session.execute(select(User).where(User.id == user_id, User.account_id == account_id)).scalar_one_or_none()
    if user is None:
        raise NotFound("No such user.")
    return user


def load_settings(billing: Billing, account_id: str, user_id: str) -> SettingsView:
    """What the settings page shows: the signed-in user's profile, the account's thresholds and where its
    alerts go."""
    with read_session(billing.engine) as session:
        user = _owned_user(session, account_id, user_id)
        row = session.get(AccountSettings, account_id)
        return SettingsView(Profile(user.id, user.email, user.name), _alerts(row), _delivery(session, account_id, row))


def rename_user(billing: Billing, account_id: str, user_id: str, *, name: str) -> Profile:
    """Set the user's display name (may be blank: the email is shown instead)."""
    name = clean_display_name(name)
    with write_session(billing.engine) as session:
        user = _owned_user(session, account_id, user_id)
        user.name = name
        return Profile(user.id, user.email, user.name)


# -- where alerts go ------------------------------------------------------------------------------
def check_alert_email(text: str | None) -> str | None:
    """The address trimmed; blank means "the owner's email" (None)."""
    email = (text or "").strip()
    if email == "":
        return None
    if len(email) > EMAIL_MAX or not EMAIL_PATTERN.fullmatch(email):
        raise Invalid("alert_email: give an email address such as ops@example.com, or leave it empty.",
                      code="invalid_email")
    return email


def _literal_ip(host: str):
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def check_webhook_url(text: str | None, *, allow_loopback: bool = False) -> str | None:
    """An https:// URL of a public host; blank means no webhook (None). http:// and loopback hosts (localhost,
    127.0.0.1, ::1) only with `allow_loopback`, which development and tests set; a literal private or
    link-local address is always refused, so alerts cannot be aimed at the operator's own network."""
    url = (text or "").strip()
    if url == "":
        return None
    bad = "webhook_url: give a URL starting with https://, at most 500 characters, without spaces."
    if len(url) > URL_MAX or not url.isascii() or any(ord(c) <= 32 or ord(c) == 127 for c in url):
        raise Invalid(bad, code="invalid_url")
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 (a port that is not a number, or out of range, raises here)
    except ValueError:
        raise Invalid("webhook_url: the port is not a number between 1 and 65535.", code="invalid_url") from None
    host = parts.hostname or ""
    if parts.scheme.lower() not in ("http", "https") or not host:
        raise Invalid(bad, code="invalid_url")
    if parts.username is not None or parts.password is not None:
        raise Invalid("webhook_url: no user name or password in the URL; the signature authenticates us.",
                      code="invalid_url")
    ip = _literal_ip(host)
    loopback = host == "localhost" or host.endswith(".localhost") or (ip is not None and ip.is_loopback)
    if loopback:
        if not allow_loopback:
            raise Invalid("webhook_url: must be reachable from the internet, not localhost.", code="invalid_url")
        return url
    if ip is not None and not ip.is_global:
        raise Invalid("webhook_url: a private, link-local or reserved address is not allowed.", code="invalid_url")
    if parts.scheme.lower() != "https":
        raise Invalid("webhook_url: use https:// (plain http:// is only for localhost while developing).",
                      code="invalid_url")
    return url


def default_alert_email(session: Session, account_id: str) -> str:
    """The owner's (first user's) sign-in email, else the email the account was created with."""
    owner = session.execute(select(User.email).where(User.account_id == account_id)
                            .order_by(User.created_at, User.id).limit(1)).scalar_one_or_none()
    if owner:
        return owner
    return session.execute(select(Account.email).where(Account.id == account_id)).scalar_one_or_none() or ""


def _delivery(session: Session, account_id: str, row: AccountSettings | None) -> AlertDelivery:
    return AlertDelivery(alert_email=row.alert_email if row else None,
                         default_email=default_alert_email(session, account_id),
                         webhook_url=row.webhook_url if row else None,
                         has_webhook_secret=bool(row and row.webhook_secret_ciphertext))


def new_webhook_secret() -> str:
    """`whsec_` + base64 of 24 random bytes: the Standard Webhooks secret format."""
    return WEBHOOK_SECRET_PREFIX + base64.b64encode(os.urandom(WEBHOOK_SECRET_BYTES)).decode("ascii")


def _settings_row(session: Session, account_id: str, now: datetime) -> AccountSettings:
    row = session.get(AccountSettings, account_id)
    if row is None:
        if session.get(Account, account_id) is None:
            raise NotFound("No such account.")
        row = AccountSettings(account_id=account_id, updated_at=now)
        session.add(row)
    return row


def get_alert_delivery(billing: Billing, account_id: str) -> AlertDelivery:
    with read_session(billing.engine) as session:
        return _delivery(session, account_id, session.get(AccountSettings, account_id))


@notify.after_commit
def save_alert_delivery(billing: Billing, account_id: str, *, alert_email: str | None, webhook_url: str | None,
                        now: datetime, allow_loopback: bool = False) -> AlertDelivery:
    """Set both destinations at once; the first webhook URL also makes the signing secret. Bad input changes
    nothing. Removing the URL keeps the secret, so a receiver set up for it still verifies when it returns."""
    email = check_alert_email(alert_email)
    url = check_webhook_url(webhook_url, allow_loopback=allow_loopback)
    keyring = require_keyring(billing) if url else billing.keyring
    with write_session(billing.engine) as session:
        row = _settings_row(session, account_id, now)
        changed = (row.alert_email, row.webhook_url) != (email, url)
        row.alert_email, row.webhook_url, row.updated_at = email, url, now
        journal = Journal(account_id, now)
        if url and not row.webhook_secret_ciphertext:
            row.webhook_secret_ciphertext = keyring.seal(new_webhook_secret(), webhook_aad(account_id))
        if changed:
            to = email or "the owner's email"
            hook = f" and to the webhook {url}." if url else ", with no webhook."
            journal.activity("alert_delivery_changed", account_id, f"Alerts now go to {to}{hook}")
        session.flush()
        journal.flush(session)
        return _delivery(session, account_id, row)


def reveal_webhook_secret(billing: Billing, account_id: str) -> str:
    """The account's webhook signing secret in clear, for its owner and for the sender that signs."""
    keyring = require_keyring(billing)
    with read_session(billing.engine) as session:
        row = session.get(AccountSettings, account_id)
    if row is None or not row.webhook_secret_ciphertext:
        raise NotFound("This account has no webhook secret yet; save a webhook URL first.", code="no_webhook_secret")
    return keyring.open(row.webhook_secret_ciphertext, webhook_aad(account_id))


@notify.after_commit
def rotate_webhook_secret(billing: Billing, account_id: str, *, now: datetime) -> str:
    """A new secret, in force at once (webhooks sent from now on are signed with it); returned to show."""
    keyring = require_keyring(billing)
    secret = new_webhook_secret()
    with write_session(billing.engine) as session:
        row = _settings_row(session, account_id, now)
        row.webhook_secret_ciphertext = keyring.seal(secret, webhook_aad(account_id))
        row.updated_at = now
        journal = Journal(account_id, now)
        journal.activity("webhook_secret_rotated", account_id, "Webhook signing secret rotated.")
        session.flush()
        journal.flush(session)
    return secret
