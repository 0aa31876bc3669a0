"""The provider's settings: a provider without its keys stops the start with one line naming them; the sandbox
needs nothing and keeps a generated secret."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from portal.settings import Settings, describe


@pytest.mark.parametrize("provider, missing", [
    ("stripe", "TOLLGATE_STRIPE_SECRET_KEY and TOLLGATE_STRIPE_WEBHOOK_SECRET"),
    ("dodo", "TOLLGATE_DODO_API_KEY and TOLLGATE_DODO_WEBHOOK_SECRET and TOLLGATE_DODO_PRODUCT_ID")])
def test_a_provider_without_its_keys_is_refused_naming_them(tmp_path, provider, missing):
    with pytest.raises(ValidationError) as caught:
        Settings(data_dir=tmp_path, payments_provider=provider)
    assert describe(caught.value).startswith(f"{missing} must be set for TOLLGATE_PAYMENTS_PROVIDER={provider}")


def test_an_unknown_provider_or_chaos_out_of_range_is_refused(tmp_path):
    for bad in (dict(payments_provider="paypal"), dict(sandbox_chaos=1.5)):
        with pytest.raises(ValidationError):
            Settings(data_dir=tmp_path, **bad)


def test_the_sandbox_secret_is_generated_once_and_kept_private(tmp_path):
    first = Settings(data_dir=tmp_path).sandbox_webhook_secret
    assert first.startswith("whsec_") and Settings(data_dir=tmp_path).sandbox_webhook_secret == first
    assert (tmp_path / "sandbox-webhook-secret").stat().st_mode & 0o077 == 0
