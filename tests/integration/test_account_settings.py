"""Alert thresholds and the user's name, stored per account on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest

from billing_core.errors import Invalid, NotFound
from billing_core.services import account_settings as settings
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
