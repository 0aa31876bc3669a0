"""What every service needs: the database engine and the validated catalog."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from ..crypto import Keyring
from ..plans import Catalog


@dataclass(frozen=True)
class Billing:
    engine: Engine
    catalog: Catalog
    keyring: Keyring | None = None  # seals HMAC and provider keys; required by the services that hold secrets
