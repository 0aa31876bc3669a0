"""An account's alert thresholds and its user's profile (name; the email is the sign-in and stays)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from ..db.engine import read_session, write_session
from ..db.identity import User
from ..db.settings import AccountSettings
from ..errors import Invalid, NotFound
from ..money import MAX_MICROS, usd_to_micros
from .context import Billing

ALLOWANCE_STEPS = (50, 80, 100)  # percent of the period's allowance
DEFAULT_THRESHOLDS = ALLOWANCE_STEPS
NAME_MAX = 100


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
class SettingsView:
    profile: Profile
    alerts: AlertSettings


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


def _decode(stored: str) -> tuple[int, ...]:
    return tuple(int(part) for part in stored.split(",") if part.strip().isdigit())


def _alerts(row: AccountSettings | None) -> AlertSettings:
    if row is None:
        return AlertSettings()
    return AlertSettings(_decode(row.allowance_thresholds), row.daily_spend_micros, row.low_credit_micros,
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
    """What the settings page shows: the signed-in user's profile and the account's thresholds."""
    with read_session(billing.engine) as session:
        user = _owned_user(session, account_id, user_id)
        return SettingsView(Profile(user.id, user.email, user.name),
                            _alerts(session.get(AccountSettings, account_id)))


def rename_user(billing: Billing, account_id: str, user_id: str, *, name: str) -> Profile:
    """Set the user's display name (may be blank: the email is shown instead)."""
    name = clean_display_name(name)
    with write_session(billing.engine) as session:
        user = _owned_user(session, account_id, user_id)
        user.name = name
        return Profile(user.id, user.email, user.name)
