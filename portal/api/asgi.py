"""The API alone as an ASGI app (`uvicorn portal.api.asgi:app`), for tests and API-only deployments."""

from ..runtime import get_billing
from ..settings import get_settings
from .app import create_api

app = create_api(get_billing(), get_settings())
