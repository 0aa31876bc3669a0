"""Every column that holds a secret sealed at rest, and what each row's ciphertext is bound to.

The one registry the services seal and open with and the rotation walks: a sealed column missing here would
be skipped by `tollgate admin rotate-secrets` and stop opening once the old key is dropped, so a test fails
on any column named `*ciphertext` (or holding a ciphertext) that is not registered.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from sqlalchemy import inspect

from ..crypto import associated_data
from .models import Project
from .settings import AccountSettings
from .workloads import ProviderKey


def hmac_aad(account_id: str, project_id: str) -> bytes:
    """A project's HMAC keys, current and previous (the previous one moves over as it is)."""
    return associated_data("hmac", account_id, project_id)


def provider_aad(account_id: str, project_id: str, provider: str) -> bytes:
    """Bound to tenant, project and provider: a ciphertext moved to any other row fails to open."""
    return associated_data(f"provider:{provider}", account_id, project_id)


def webhook_aad(account_id: str) -> bytes:
    """The account's alert webhook signing secret (whsec_...)."""
    return associated_data("webhook", account_id, "-")


@dataclass(frozen=True)
class SealedColumn:
    model: type
    column: str
    aad_of: Callable[[object], bytes]  # the associated data of one row's ciphertext

    @property
    def label(self) -> str:
        return f"{self.model.__tablename__}.{self.column}"

    @property
    def key_column(self):
        """The row's primary key (one column in every sealed table)."""
        (key,) = inspect(self.model).primary_key
        return getattr(self.model, key.name)


SEALED_COLUMNS = (
    SealedColumn(Project, "hmac_ciphertext", lambda row: hmac_aad(row.account_id, row.id)),
    SealedColumn(Project, "previous_hmac_ciphertext", lambda row: hmac_aad(row.account_id, row.id)),
    SealedColumn(ProviderKey, "ciphertext", lambda row: provider_aad(row.account_id, row.project_id, row.provider)),
    SealedColumn(AccountSettings, "webhook_secret_ciphertext", lambda row: webhook_aad(row.account_id)),
)
