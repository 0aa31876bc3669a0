"""The process-wide billing context, built once from settings (engine and validated catalog)."""

from __future__ import annotations

from functools import lru_cache

from billing_core.crypto import Keyring
from billing_core.db.engine import make_engine
from billing_core.plans import load_catalog
from billing_core.services.context import Billing

from .settings import Settings, get_settings


def keyring_of(settings: Settings) -> Keyring:
    return Keyring.parse(settings.encryption_keys,
                         derive_from=settings.legacy_secret_key or settings.secret_key)


def build_billing(settings: Settings) -> Billing:
    return Billing(engine=make_engine(settings.database_url), catalog=load_catalog(settings.catalog_path),
                   keyring=keyring_of(settings))


@lru_cache
def get_billing() -> Billing:
    return build_billing(get_settings())
