"""The API alone as an ASGI app (`uvicorn portal.api.asgi:app`), for tests and API-only deployments."""

from ..heap import settle
from ..payments import start_top_up_trigger
from ..runtime import get_billing
from ..settings import settings_or_exit
from .app import create_api

settings = settings_or_exit()  # first: bad settings are one line, not a traceback
app = create_api(get_billing(), settings)
start_top_up_trigger(get_billing(), settings)

# Everything built so far lives as long as the process: out of the collector's scans (about a quarter of a
# 1000-event batch's CPU before, docs/benchmarks.md), and young collections less often (portal/heap.py).
settle()
