"""Fixtures for identity tests: a limiter, sign-up helpers, and live servers (see servers.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from billing_core.services.identity import MemoryRateLimiter

from .oidc_provider import OpenIDProvider, new_client_credentials

TTL = timedelta(days=14)
PASSWORD = "correct horse 1843"
UA_FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
UA_SAFARI = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Version/17.0 Safari/604.1"


@pytest.fixture
def limiter() -> MemoryRateLimiter:
    return MemoryRateLimiter()


@pytest.fixture(scope="module")
def provider():
    """A real OpenID provider on 127.0.0.1 (one per test module); register the callback URL on it."""
    client_id, client_secret = new_client_credentials()
    provider = OpenIDProvider(client_id=client_id, client_secret=client_secret)
    provider.start()
    yield provider
    provider.stop()


def oidc_env(provider: OpenIDProvider) -> dict[str, str]:
    return dict(TOLLGATE_OIDC_ISSUER=provider.issuer, TOLLGATE_OIDC_CLIENT_ID=provider.client.client_id,
                TOLLGATE_OIDC_CLIENT_SECRET=provider.client.client_secret, TOLLGATE_OIDC_NAME="Test IdP")
