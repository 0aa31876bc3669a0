"""The API alone as an ASGI app (`uvicorn portal.api.asgi:app`), for tests and API-only deployments."""

from ..heap import settle
from ..payments import top_up_lifespan
from ..runtime import get_billing
from ..settings import settings_or_exit
from .app import create_api

settings = settings_or_exit()  # first: bad settings are one line, not a traceback
app = create_api(get_billing(), settings)
app.router.lifespan_context = lambda _app: top_up_lifespan()

# Everything built so far lives as long as the process: out of the collector's scans (about a quarter of a
# 1000-event batch's CPU before, docs/benchmarks.md), and young collections less often (portal/heap.py).
settle()
