"""Settings refuse a weak secret key outside dev, and production without its secrets."""

from __future__ import annotations

import os

import pytest
from pydantic import ValidationError

from billing_core.crypto import new_key_spec

from portal.settings import Settings

STRONG = "Vq3xN8pL2mR7tY4wZ9bC6dF1gH5jK0sA-e_uQ"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch, tmp_path):
    """Only what a test sets: no TOLLGATE_ variables from the shell, no .env file from the checkout."""
    for name in list(os.environ):
        if name.upper().startswith("TOLLGATE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TOLLGATE_DATA_DIR", str(tmp_path / "data"))


@pytest.mark.parametrize("secret", [
    "short-Secret-1",                    # too short
    "a" * 64,                            # long but one character repeated
    "abcabcabcabcabcabcabcabcabcabcabcabc",  # long but only three characters
    "abcdefgabcdefgabcdefgabcdefgabcdefg",   # long enough but only seven distinct characters
])
@pytest.mark.parametrize("env", ["prod", "test"])
def test_a_weak_secret_key_outside_dev_is_refused_naming_the_variable(monkeypatch, env, secret):
    monkeypatch.setenv("TOLLGATE_ENV", env)
    monkeypatch.setenv("TOLLGATE_SECRET_KEY", secret)
    monkeypatch.setenv("TOLLGATE_ENCRYPTION_KEYS", new_key_spec("k1"))
    with pytest.raises(ValidationError) as caught:
        Settings()
    assert "TOLLGATE_SECRET_KEY" in str(caught.value)


@pytest.mark.parametrize("secret", ["abcdefgh" * 4, "0123456789abcdef" * 2])
def test_a_long_key_made_of_one_short_pattern_repeated_is_refused_in_prod(monkeypatch, secret):
    monkeypatch.setenv("TOLLGATE_ENV", "prod")
    monkeypatch.setenv("TOLLGATE_SECRET_KEY", secret)
    monkeypatch.setenv("TOLLGATE_ENCRYPTION_KEYS", new_key_spec("k1"))
    with pytest.raises(ValidationError, match="TOLLGATE_SECRET_KEY"):
        Settings()


def test_prod_without_a_secret_key_is_refused(monkeypatch):
    monkeypatch.setenv("TOLLGATE_ENV", "prod")
    monkeypatch.setenv("TOLLGATE_ENCRYPTION_KEYS", new_key_spec("k1"))
    with pytest.raises(ValidationError, match="TOLLGATE_SECRET_KEY must be set"):
        Settings()


def test_a_strong_secret_key_passes_in_prod(monkeypatch):
    monkeypatch.setenv("TOLLGATE_ENV", "prod")
    monkeypatch.setenv("TOLLGATE_SECRET_KEY", STRONG)
    monkeypatch.setenv("TOLLGATE_ENCRYPTION_KEYS", new_key_spec("k1"))
    settings = Settings()
    assert settings.env == "prod"
    assert settings.secret_key == STRONG


def test_public_url_follows_the_port_when_unset(monkeypatch):
    monkeypatch.setenv("TOLLGATE_PORT", "3100")
    assert Settings().public_url == "http://localhost:3100"
    monkeypatch.setenv("TOLLGATE_PUBLIC_URL", "https://tollgate.example.com")
    assert Settings().public_url == "https://tollgate.example.com"


def test_an_unknown_environment_is_refused(monkeypatch):
    monkeypatch.setenv("TOLLGATE_ENV", "production")
    monkeypatch.setenv("TOLLGATE_SECRET_KEY", STRONG)
    with pytest.raises(ValidationError, match="TOLLGATE_ENV"):
        Settings()


def test_a_short_edge_token_is_refused(monkeypatch):
    monkeypatch.setenv("TOLLGATE_ENV", "prod")
    monkeypatch.setenv("TOLLGATE_SECRET_KEY", STRONG)
    monkeypatch.setenv("TOLLGATE_ENCRYPTION_KEYS", new_key_spec("k1"))
    monkeypatch.setenv("TOLLGATE_EDGE_TOKEN", "short")
    with pytest.raises(ValidationError, match="TOLLGATE_EDGE_TOKEN"):
        Settings()
