"""GET /api/health: 200 when the database answers, 503 naming what is down."""

from __future__ import annotations

from fastapi import APIRouter, Request
from .responses import FastJSON
from sqlalchemy import text

from .deps import billing_of

router = APIRouter(tags=["health"])


def _database_ok(request: Request) -> bool:
    try:
        with billing_of(request).engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except Exception:
        return False


@router.get("/api/health", summary="Liveness of the app and its database")
def health(request: Request):
    database = "ok" if _database_ok(request) else "down"
    body = {"status": "ok" if database == "ok" else "degraded", "database": database,
            "catalog": {"plans": sorted(billing_of(request).catalog.plans)}}
    return FastJSON(body, status_code=200 if database == "ok" else 503)
