"""Alert thresholds and the user's name, stored per account on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
from sqlalchemy import select

from billing_core.crypto import Keyring, SecretError, new_key_spec
from billing_core.db.engine import make_engine, read_session, write_session
from billing_core.db.models import Activity
from billing_core.db.settings import AccountSettings
from billing_core.errors import Invalid, NotFound
from billing_core.services import account_settings as settings
from billing_core.services.context import Billing
from billing_core.services.identity import create_user

from ..conftest import T0
from ..factories import make_account

PASSWORD = "correct horse battery staple"


def _user(billing, account_id: str, email: str, name: str = "Ada"):
    return create_user(billing, account_id=account_id, email=email, password=PASSWORD, name=name, now=T0)


def test_an_account_that_never_saved_gets_the_defaults(billing):
    account = make_account(billing)
    alerts = settings.get_alert_settings(billing, account.account_id)
    assert alerts == settings.AlertSettings((50, 80, 100), None, None, None)


def test_saved_thresholds_are_read_back_exactly_and_replace_the_previous_ones(billing):
    account = make_account(billing)
    saved = settings.save_alert_settings(billing, account.account_id, allowance_thresholds=[100, 50],
                                         daily_spend_micros=12_500_000, low_credit_micros=1, now=T0)
    assert saved == settings.get_alert_settings(billing, account.account_id)
    assert saved.allowance_thresholds == (50, 100) and saved.daily_spend_micros == 12_500_000
    assert saved.low_credit_micros == 1 and saved.updated_at == T0
    later = T0 + timedelta(hours=1)
    settings.save_alert_settings(billing, account.account_id, allowance_thresholds=[], daily_spend_micros=None,
                                 low_credit_micros=None, now=later)
    assert settings.get_alert_settings(billing, account.account_id) == settings.AlertSettings((), None, None, later)


@pytest.mark.parametrize("thresholds, daily, low", [
    ([75], None, None), ([50, 120], None, None), ([50], 0, None), ([50], -1, None), ([50], None, 10**16),
    ([50], 2.5, None), ([50], True, None)])
def test_bad_thresholds_are_refused_and_change_nothing(billing, thresholds, daily, low):
    account = make_account(billing)
    settings.save_alert_settings(billing, account.account_id, allowance_thresholds=[80], daily_spend_micros=5,
                                 low_credit_micros=None, now=T0)
    with pytest.raises(Invalid):
        settings.save_alert_settings(billing, account.account_id, allowance_thresholds=thresholds,
                                     daily_spend_micros=daily, low_credit_micros=low, now=T0 + timedelta(hours=1))
    assert settings.get_alert_settings(billing, account.account_id) == settings.AlertSettings((80,), 5, None, T0)


def test_one_accounts_thresholds_never_touch_another_accounts(billing):
    first, second = make_account(billing), make_account(billing)
    settings.save_alert_settings(billing, first.account_id, allowance_thresholds=[50], daily_spend_micros=7,
                                 low_credit_micros=9, now=T0)
    assert settings.get_alert_settings(billing, second.account_id) == settings.AlertSettings()


@pytest.mark.parametrize("typed, micros", [
    ("25", 25_000_000), (" $1,250.50 ", 1_250_500_000), ("0.000001", 1), ("0.1", 100_000), ("", None),
    ("   ", None)])
def test_usd_as_typed_is_parsed_exactly(typed, micros):
    assert settings.parse_usd_limit(typed, "Daily spend") == micros


@pytest.mark.parametrize("typed", ["abc", "1.0000001", "0", "-5", "1e3x", "NaN", "Infinity", "$", "1,000,000,001"])
def test_usd_that_is_not_a_positive_amount_is_refused_with_the_fields_name(typed):
    with pytest.raises(Invalid) as refused:
        settings.parse_usd_limit(typed, "Low credit")
    assert refused.value.message.startswith("Low credit: ")


def test_the_settings_page_reads_the_users_profile_and_the_accounts_alerts(billing):
    account = make_account(billing)
    user = _user(billing, account.account_id, "ada@example.com")
    found = settings.load_settings(billing, account.account_id, user.user_id)
    assert found.profile == settings.Profile(user.user_id, "ada@example.com", "Ada")
    assert found.alerts == settings.AlertSettings()


def test_renaming_a_user_tidies_the_spaces_and_keeps_the_email(billing):
    account = make_account(billing)
    user = _user(billing, account.account_id, "grace@example.com")
    profile = settings.rename_user(billing, account.account_id, user.user_id, name="  Grace   Hopper ")
    assert profile == settings.Profile(user.user_id, "grace@example.com", "Grace Hopper")
    assert settings.load_settings(billing, account.account_id, user.user_id).profile.name == "Grace Hopper"
    assert settings.rename_user(billing, account.account_id, user.user_id, name="").name == ""


@pytest.mark.parametrize("name", ["x" * 101, "a\x00b", "bell\x07", "\ud800"])
def test_a_bad_name_is_refused_and_the_old_one_stays(billing, name):
    account = make_account(billing)
    user = _user(billing, account.account_id, "linus@example.com")
    with pytest.raises(Invalid):
        settings.rename_user(billing, account.account_id, user.user_id, name=name)
    assert settings.load_settings(billing, account.account_id, user.user_id).profile.name == "Ada"


def test_another_accounts_user_is_not_found_for_reading_or_renaming(billing):
    first, second = make_account(billing), make_account(billing)
    user = _user(billing, first.account_id, "owner@example.com")
    with pytest.raises(NotFound):
        settings.load_settings(billing, second.account_id, user.user_id)
    with pytest.raises(NotFound):
        settings.rename_user(billing, second.account_id, user.user_id, name="taken over")
    assert settings.load_settings(billing, first.account_id, user.user_id).profile.name == "Ada"


# -- where alerts go ------------------------------------------------------------------------------
@pytest.fixture
def keyed(database_url, catalog):
    """A billing context that can seal the webhook secret, on SQLite and PostgreSQL."""
    engine = make_engine(database_url)
    yield Billing(engine, catalog, Keyring.parse(new_key_spec("k1")))
    engine.dispose()


def test_alerts_go_to_the_owner_until_an_address_and_a_webhook_are_saved(keyed):
    account = make_account(keyed, email="signup@example.com")
    assert settings.get_alert_delivery(keyed, account.account_id) == settings.AlertDelivery(
        None, "signup@example.com", None, False)
    user = _user(keyed, account.account_id, "owner@example.com")
    assert settings.load_settings(keyed, account.account_id, user.user_id).delivery == settings.AlertDelivery(
        None, "owner@example.com", None, False)
    saved = settings.save_alert_delivery(keyed, account.account_id, alert_email=" ops@example.com ",
                                         webhook_url="https://hooks.example.com/tollgate?team=7", now=T0)
    assert saved == settings.AlertDelivery("ops@example.com", "owner@example.com",
                                           "https://hooks.example.com/tollgate?team=7", True)
    assert settings.get_alert_delivery(keyed, account.account_id) == saved
    secret = settings.reveal_webhook_secret(keyed, account.account_id)
    assert secret.startswith("whsec_") and len(base64.b64decode(secret.removeprefix("whsec_"))) == 24
    # Saving the thresholds keeps the destinations, and the destinations keep the thresholds.
    settings.save_alert_settings(keyed, account.account_id, allowance_thresholds=[80], daily_spend_micros=None,
                                 low_credit_micros=None, now=T0)
    assert settings.get_alert_delivery(keyed, account.account_id) == saved
    assert settings.get_alert_settings(keyed, account.account_id).allowance_thresholds == (80,)


def test_the_webhook_secret_survives_removing_the_url_and_rotates_on_request(keyed):
    account = make_account(keyed)
    settings.save_alert_delivery(keyed, account.account_id, alert_email=None, webhook_url="https://a.example/h",
                                 now=T0)
    first = settings.reveal_webhook_secret(keyed, account.account_id)
    off = settings.save_alert_delivery(keyed, account.account_id, alert_email=None, webhook_url="  ", now=T0)
    assert (off.webhook_url, off.has_webhook_secret) == (None, True)
    settings.save_alert_delivery(keyed, account.account_id, alert_email=None, webhook_url="https://b.example/h",
                                 now=T0)
    assert settings.reveal_webhook_secret(keyed, account.account_id) == first
    rotated = settings.rotate_webhook_secret(keyed, account.account_id, now=T0 + timedelta(minutes=1))
    assert rotated != first and settings.reveal_webhook_secret(keyed, account.account_id) == rotated
    with read_session(keyed.engine) as session:
        kinds = [a.kind for a in session.execute(select(Activity).where(
            Activity.account_id == account.account_id).order_by(Activity.id)).scalars()]
    assert kinds[-4:] == ["alert_delivery_changed", "alert_delivery_changed", "alert_delivery_changed",
                          "webhook_secret_rotated"]


def test_a_secret_copied_to_another_account_does_not_open(keyed):
    first, second = make_account(keyed), make_account(keyed)
    for account in (first, second):
        settings.save_alert_delivery(keyed, account.account_id, alert_email=None, webhook_url="https://a.example/h",
                                     now=T0)
    with write_session(keyed.engine) as session:
        stolen = session.get(AccountSettings, first.account_id).webhook_secret_ciphertext
        session.get(AccountSettings, second.account_id).webhook_secret_ciphertext = stolen
    with pytest.raises(SecretError):
        settings.reveal_webhook_secret(keyed, second.account_id)


def test_an_account_without_a_webhook_has_no_secret_to_reveal(keyed):
    account = make_account(keyed)
    with pytest.raises(NotFound):
        settings.reveal_webhook_secret(keyed, account.account_id)


@pytest.mark.parametrize("url, fragment", [
    ("http://hooks.example.com/x", "use https://"),
    ("ftp://hooks.example.com/x", "starting with https://"),
    ("https://", "starting with https://"),
    ("hooks.example.com/x", "starting with https://"),
    ("https://hooks.example.com/" + "x" * 480, "at most 500"),
    ("https://hooks.example.com/a b", "without spaces"),
    ("https://hooks.exämple.com/x", "starting with https://"),
    ("https://user:pw@hooks.example.com/x", "no user name or password"),
    ("https://hooks.example.com:99999/x", "port"),
    ("https://localhost/x", "not localhost"),
    ("http://127.0.0.1:8080/x", "not localhost"),
    ("https://[::1]/x", "not localhost"),
    ("https://10.1.2.3/x", "private"),
    ("https://169.254.169.254/latest/meta-data", "private"),
    ("https://192.168.0.10/x", "private"),
])
def test_a_bad_webhook_url_is_refused_with_the_reason(url, fragment):
    with pytest.raises(Invalid) as refused:
        settings.check_webhook_url(url)
    assert refused.value.message.startswith("webhook_url: ") and fragment in refused.value.message


@pytest.mark.parametrize("email, url", [("b@example.com", "https://10.1.2.3/x"), ("not an email", "https://b.example/h")])
def test_a_bad_destination_changes_neither_destination(keyed, email, url):
    account = make_account(keyed)
    before = settings.save_alert_delivery(keyed, account.account_id, alert_email="a@example.com",
                                          webhook_url="https://ok.example/h", now=T0)
    with pytest.raises(Invalid):
        settings.save_alert_delivery(keyed, account.account_id, alert_email=email, webhook_url=url,
                                     now=T0 + timedelta(hours=1))
    assert settings.get_alert_delivery(keyed, account.account_id) == before


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/hook", "http://localhost:3000/x", "https://[::1]:9/x"])
def test_loopback_urls_are_accepted_only_where_the_caller_allows_them(url):
    assert settings.check_webhook_url(url, allow_loopback=True) == url


@pytest.mark.parametrize("email", ["no-at-sign", "a@b", "a b@example.com", "a@exa mple.com", "ä@example.com",
                                   "a@example.com\r\nBcc: x@example.com", "x" * 65 + "@example.com", "@example.com"])
def test_a_bad_alert_email_is_refused_with_the_fields_name(email):
    with pytest.raises(Invalid) as refused:
        settings.check_alert_email(email)
    assert refused.value.message.startswith("alert_email: ")


def test_delivery_settings_of_an_unknown_account_are_not_found(keyed):
    with pytest.raises(NotFound):
        settings.save_alert_delivery(keyed, "acc_missing", alert_email=None, webhook_url=None, now=T0)
