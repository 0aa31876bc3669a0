"""GET /api/health: 200 when the database answers, 503 naming what is down.

Beside the database it reports the scheduled work: the scheduler's leader and last tick, and per edge
target its backlog, lag and failures. Those are reported, never judged: a lagging target or a missing
leader still answers 200, since the app itself serves and restarting it would not help; monitoring reads
`scheduler.last_tick_at` and `sync[].lag_s` and alerts on its own thresholds.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from sqlalchemy import text

from billing_core.scheduler.view import scheduler_status, target_statuses

from ..scheduling import target_names
from .deps import billing_of, utcnow
from .responses import FastJSON

router = APIRouter(tags=["health"])
log = logging.getLogger("portal.api.health")


def _database_ok(request: Request) -> bool:
    try:
        with billing_of(request).engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except Exception:
        return False


def _scheduled_work(request: Request) -> dict:
    """`scheduler` and `sync`, each null when it cannot be read (a bad TOLLGATE_SYNC_TARGETS, say)."""
    billing, now = billing_of(request), utcnow()
    body: dict = {"scheduler": None, "sync": None}
    try:
        body["scheduler"] = scheduler_status(billing.engine, now).to_dict()
    except Exception:
        log.warning("health: could not read the scheduler's lease", exc_info=True)
    try:
        body["sync"] = target_statuses(billing, now, target_names(request.app.state.settings))
    except Exception:
        log.warning("health: could not read the edge targets' status", exc_info=True)
    return body


@router.get("/api/health", summary="Liveness of the app and its database, and the state of scheduled work")
def health(request: Request):
    database = "ok" if _database_ok(request) else "down"
    body = {"status": "ok" if database == "ok" else "degraded", "database": database,
            "catalog": {"plans": sorted(billing_of(request).catalog.plans)}}
    if database == "ok":
        body.update(_scheduled_work(request))
    return FastJSON(body, status_code=200 if database == "ok" else 503)
