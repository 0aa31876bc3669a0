"""Build the FastAPI app that Reflex serves beside the pages (`api_transformer`)."""

from __future__ import annotations

from fastapi import FastAPI
from .responses import FastJSON

from billing_core.services.context import Billing

from ..logs import install_log_redaction
from ..security.middleware import SecurityMiddleware
from ..settings import Settings
from . import account, device, health, invoices, keys, projects, runs, sandbox_checkout, schedules, usage, webhooks
from ..auth import routes as auth
from .errors import install_error_handlers
from . import billing as billing_api
from . import documents
from ..gateway import models_route
from ..gateway.auth import GatewayError
from .guards import NulGuard
from .openapi_docs import document_models
from .schemas import CheckBody, UsageBatchBody


def create_api(billing: Billing, settings: Settings) -> FastAPI:
    install_log_redaction()  # here, so both servers (Reflex's and the API alone) redact their logs
    api = FastAPI(title="Tollgate API", version="1", docs_url="/api/docs", redoc_url=None,
                  openapi_url="/api/openapi.json", default_response_class=FastJSON)
    api.state.billing, api.state.settings = billing, settings
    install_error_handlers(api)
    for module in (health, account, usage, projects, keys, device, auth, runs, schedules, billing_api, invoices,
                   webhooks, sandbox_checkout, documents, models_route):
        api.include_router(module.router)
    api.add_exception_handler(GatewayError, lambda _request, exc: exc.response())
    document_models(api, [UsageBatchBody, CheckBody])
    api.add_middleware(NulGuard)
    api.add_middleware(SecurityMiddleware, settings=settings)  # outermost: Host and origin before the body
    return api
