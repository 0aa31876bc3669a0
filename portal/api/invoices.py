"""/api/v1/invoices: the account's invoices, one with its lines, and its PDF."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from billing_core.payments import views

from .deps import billing_of
from .projects import owner

router = APIRouter(prefix="/api/v1", tags=["invoices"])


@router.get("/invoices", summary="The account's invoices, newest first")
def list_invoices(request: Request, account_id: str = Depends(owner)) -> dict:
    return {"data": views.list_invoices(billing_of(request), account_id)}


@router.get("/invoices/{invoice_id}", summary="One invoice with its lines; status open, paid, past_due or void")
def read_invoice(request: Request, invoice_id: str, account_id: str = Depends(owner)) -> dict:
    return views.get_invoice(billing_of(request), account_id, invoice_id)
