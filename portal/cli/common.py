"""What every command shares: the billing context, `now`, and one-line failures."""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from functools import wraps
from typing import Callable, NoReturn

import typer
from pydantic import ValidationError

from billing_core.db.migrate import upgrade_to_head
from billing_core.errors import ServiceError
from billing_core.plans import CatalogError
from billing_core.services.context import Billing

from ..runtime import build_billing
from ..settings import describe, get_settings


def fail(message: str, code: int = 1) -> NoReturn:
    print(f"tollgate: {message}", file=sys.stderr)
    raise typer.Exit(code)


def one_line_errors(func: Callable) -> Callable:
    """Turn every expected failure into one line on stderr and a non-zero exit."""

    @wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except ServiceError as exc:
            fail(exc.message)
        except CatalogError as exc:
            fail(f"bad plan catalog: {exc}")
        except ValidationError as exc:
            fail(f"bad settings: {describe(exc)}")
        except ValueError as exc:
            fail(str(exc))

    return wrapper


def open_billing() -> Billing:
    """Settings, catalog and a database migrated to head."""
    settings = get_settings()
    upgrade_to_head(settings.database_url)
    return build_billing(settings)


def parse_now(value: str | None) -> datetime:
    if value is None:
        return datetime.now(timezone.utc)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        fail(f"--now must be an RFC 3339 time such as 2026-01-31T00:00:00Z, got {value!r}")
    if parsed.tzinfo is None:
        fail("--now must carry a timezone (Z or an offset)")
    return parsed.astimezone(timezone.utc)
