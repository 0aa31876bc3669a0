"""The API alone as an ASGI app (`uvicorn portal.api.asgi:app`), for tests and API-only deployments."""

import gc

from ..runtime import get_billing
from ..settings import get_settings
from .app import create_api

app = create_api(get_billing(), get_settings())

# Everything built so far (modules, the app, its routes and models) lives as long as the process; keep
# it out of the garbage collector's scans. Without this, the collections that a 1000-event batch's
# allocations trigger walk those objects again and again: about a quarter of the CPU of a batch
# (docs/benchmarks.md). Objects made later are collected as before.
gc.freeze()
