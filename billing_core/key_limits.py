"""The limits an account key carries (API.md "Key limits"): what each may be, their stored form, and what a
stored key allows. Pure: the service checks the project in the database and applies what this returns.

Stored forms: `scopes` is "*" (everything, every key made before limits existed) or the names separated by
spaces; `models` is a JSON list of `provider/model` names ("[]": any model); times are aware UTC datetimes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime

from .errors import Invalid, InvalidKey, ServiceError
from .gateway.models import ModelAmbiguous, ModelNotFound, resolve
from .gateway.windows import BUDGET_RESETS
from .plans import Catalog
from .validate import parse_rfc3339

SCOPES = ("usage:write", "read", "gateway", "manage")
ALL_SCOPES = "*"
MAX_BUDGET_MICROS = 10**15  # a billion dollars: beyond any honest key, and far inside BIGINT
MAX_RATE = 10**9
MAX_MODELS = 100
DEFAULT_RESET = "monthly"
# The fields a create or a change may name, and what null (PATCH) restores: no limit, or the default.
LIMIT_FIELDS = ("scopes", "budget_micros", "budget_reset", "models", "rpm", "tpm", "expires_at", "project_id")
CLEARED = {"scopes": ALL_SCOPES, "budget_micros": None, "budget_reset": DEFAULT_RESET, "models": "[]", "rpm": None,
           "tpm": None, "expires_at": None, "project_id": None}


class ScopeMissing(ServiceError):
    """A key used for something its scopes do not include."""

    status, code = 403, "scope_missing"

    def __init__(self, scope: str) -> None:
        super().__init__(f"This key lacks the scope {scope!r}; create or change a key with it.")
        self.scope = scope


class KeyExpired(InvalidKey):
    """A key past its expires_at: refused like a revoked one (401 invalid_key), with a message that says so."""

    def __init__(self, expires_at: datetime) -> None:
        super().__init__(f"The key expired at {expires_at.strftime('%Y-%m-%dT%H:%M:%SZ')}; create a new one.")


def refuse_if_expired(expires_at: datetime | None, now: datetime) -> None:
    if is_expired(expires_at, now):
        raise KeyExpired(expires_at)


def scope_set(stored: str | None) -> frozenset[str]:
    """The scopes a stored value grants; "*" (or nothing stored) grants all of them."""
    names = (stored or ALL_SCOPES).split()
    return frozenset(SCOPES) if ALL_SCOPES in names else frozenset(names)


def require(stored: str | None, scope: str) -> None:
    """Nothing when the stored scopes include `scope`; ScopeMissing otherwise."""
    if scope not in scope_set(stored):
        raise ScopeMissing(scope)


def scope_list(stored: str | None) -> list[str]:
    """The scopes as the API shows them: the names granted, in the documented order."""
    granted = scope_set(stored)
    return [s for s in SCOPES if s in granted]


def model_list(stored: str | None) -> list[str]:
    return json.loads(stored) if stored else []


def is_expired(expires_at: datetime | None, now: datetime) -> bool:
    return expires_at is not None and now >= expires_at


def budget_remaining(budget_micros: int | None, spend_micros: int) -> int | None:
    """What is left of the budget in the current window (never negative); None when the key has no budget."""
    return None if budget_micros is None else max(0, budget_micros - spend_micros)


# -- checking what a customer sends ------------------------------------------------------------------
def _int_in(field: str, value: object, high: int, code: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
        raise Invalid(f"{field}: must be a whole number from 1 to {high}.", code=code)
    return value


def _scopes(value: object) -> str:
    if not isinstance(value, (list, tuple)) or not value:
        raise Invalid(f"scopes: must be a non-empty list of {', '.join(SCOPES)}.", code="invalid_scopes")
    unknown = [v for v in value if v not in SCOPES]
    if unknown:
        raise Invalid(f"scopes: {unknown[0]!r} is not one of {', '.join(SCOPES)}.", code="invalid_scopes")
    return " ".join(s for s in SCOPES if s in value)


def _reset(value: object) -> str:
    if value not in BUDGET_RESETS:
        raise Invalid(f"budget_reset: must be one of {', '.join(BUDGET_RESETS)}.", code="invalid_budget_reset")
    return value


def _models(value: object, catalog: Catalog) -> str:
    if not isinstance(value, (list, tuple)) or len(value) > MAX_MODELS:
        raise Invalid(f"models: must be a list of at most {MAX_MODELS} provider/model names.", code="invalid_models")
    names: list[str] = []
    for name in value:
        try:
            route = resolve(catalog, name) if isinstance(name, str) else None
        except (ModelNotFound, ModelAmbiguous):
            route = None
        if route is None or route.qualified_name != name:  # the exact name, so what is stored is what is shown
            raise Invalid(f"models: {name!r} is not a provider/model of the price table (GET /v1/models).",
                          code="unknown_model")
        if name not in names:
            names.append(name)
    return json.dumps(names, separators=(",", ":"))


def _expiry(value: object, now: datetime) -> datetime:
    try:
        moment = parse_rfc3339(value)
    except ValueError as exc:
        raise Invalid(f"expires_at: {exc}.", code="invalid_expires_at") from None
    if moment <= now:
        raise Invalid("expires_at: must be in the future.", code="invalid_expires_at")
    return moment


def _project(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise Invalid("project_id: must be the id of one of the account's projects.", code="invalid_project")
    return value


def checked_limits(given: Mapping[str, object], *, catalog: Catalog, now: datetime) -> dict[str, object]:
    """The stored form of each limit named in `given` (None: restore the field's default); Invalid with a
    code naming the field otherwise. Whether the project is the account's own is the caller's to check."""
    out: dict[str, object] = {}
    for field, value in given.items():
        if field not in LIMIT_FIELDS:
            raise Invalid(f"{field}: is not a key limit.", code="invalid_request")
        if value is None:
            out[field] = CLEARED[field]
        elif field == "scopes":
            out[field] = _scopes(value)
        elif field == "budget_micros":
            out[field] = _int_in(field, value, MAX_BUDGET_MICROS, "invalid_budget")
        elif field == "budget_reset":
            out[field] = _reset(value)
        elif field == "models":
            out[field] = _models(value, catalog)
        elif field in ("rpm", "tpm"):
            out[field] = _int_in(field, value, MAX_RATE, f"invalid_{field}")
        elif field == "expires_at":
            out[field] = _expiry(value, now)
        else:
            out[field] = _project(value)
    return out
