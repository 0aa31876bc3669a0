"""Settings refuse a weak secret key outside dev."""

from __future__ import annotations

import os

import pytest
from pydantic import ValidationError

from portal.settings import DEV_SECRET_KEY, Settings

STRONG = "Vq3xN8pL2mR7tY4wZ9bC6dF1gH5jK0sA-e_uQ"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch, tmp_path):
    """Only what a test sets: no TOLLGATE_ variables from the shell, no .env file from the checkout."""
    for name in list(os.environ):
        if name.upper().startswith("TOLLGATE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize("secret", [
    DEV_SECRET_KEY,                      # the default
    "short-Secret-1",                    # too short
    "a" * 64,                            # long but one character repeated
    "abcabcabcabcabcabcabcabcabcabcabcabc",  # long but only three characters
    "abcdefgabcdefgabcdefgabcdefgabcdefg",   # long enough but only seven distinct characters
])
@pytest.mark.parametrize("env", ["prod", "test"])
def test_a_weak_secret_key_outside_dev_is_refused_naming_the_variable(monkeypatch, env, secret):
    monkeypatch.setenv("TOLLGATE_ENV", env)
    monkeypatch.setenv("TOLLGATE_SECRET_KEY", secret)
    with pytest.raises(ValidationError) as caught:
        Settings()
    assert "TOLLGATE_SECRET_KEY" in str(caught.value)


@pytest.mark.parametrize("secret", ["abcdefgh" * 4, "0123456789abcdef" * 2])
def test_a_long_key_made_of_one_short_pattern_repeated_is_refused_in_prod(monkeypatch, secret):
    monkeypatch.setenv("TOLLGATE_ENV", "prod")
    monkeypatch.setenv("TOLLGATE_SECRET_KEY", secret)
    with pytest.raises(ValidationError, match="TOLLGATE_SECRET_KEY"):
        Settings()


def test_prod_without_a_secret_key_is_refused_because_the_default_is_weak(monkeypatch):
    monkeypatch.setenv("TOLLGATE_ENV", "prod")
    with pytest.raises(ValidationError, match="TOLLGATE_SECRET_KEY"):
        Settings()


def test_a_strong_secret_key_passes_in_prod(monkeypatch):
    monkeypatch.setenv("TOLLGATE_ENV", "prod")
    monkeypatch.setenv("TOLLGATE_SECRET_KEY", STRONG)
    settings = Settings()
    assert settings.env == "prod"
    assert settings.secret_key == STRONG


def test_dev_accepts_the_default_secret_key(monkeypatch):
    monkeypatch.setenv("TOLLGATE_ENV", "dev")
    settings = Settings()
    assert settings.env == "dev"
    assert settings.secret_key == DEV_SECRET_KEY


def test_an_unknown_environment_is_refused(monkeypatch):
    monkeypatch.setenv("TOLLGATE_ENV", "production")
    monkeypatch.setenv("TOLLGATE_SECRET_KEY", STRONG)
    with pytest.raises(ValidationError, match="TOLLGATE_ENV"):
        Settings()


def test_a_short_edge_token_is_refused(monkeypatch):
    monkeypatch.setenv("TOLLGATE_ENV", "prod")
    monkeypatch.setenv("TOLLGATE_SECRET_KEY", STRONG)
    monkeypatch.setenv("TOLLGATE_EDGE_TOKEN", "short")
    with pytest.raises(ValidationError, match="TOLLGATE_EDGE_TOKEN"):
        Settings()
