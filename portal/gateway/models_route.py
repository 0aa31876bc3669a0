"""GET /v1/models: the models the gateway serves, in OpenAI's list format with Tollgate's prices."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from billing_core.gateway.models import public_models

from ..api.deps import billing_of
from .auth import gateway_account

router = APIRouter(tags=["gateway"])


@router.get("/v1/models", summary="The models the gateway serves, with their prices (OpenAI's list format)")
def list_models(request: Request, _account_id: str = Depends(gateway_account)) -> dict:
    return {"object": "list", "data": public_models(billing_of(request).catalog)}
