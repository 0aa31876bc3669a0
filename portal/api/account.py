"""GET /api/v1/account."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request

from billing_core.services.views import get_account

from .deps import Caller, account_for, authenticate, billing_of

router = APIRouter(prefix="/api/v1", tags=["account"])


@router.get("/account", summary="The account, its period, allowance, pools, credit and overage")
def read_account(request: Request, caller: Caller = Depends(authenticate),
                 account_id: str | None = Query(None, max_length=40, description="edge token only")) -> dict:
    return get_account(billing_of(request), account_for(caller, account_id)).to_dict()
