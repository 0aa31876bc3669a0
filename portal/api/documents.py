"""Invoices and receipts for people: printable pages (GET /invoices/{id}, /receipts/{payment_id}) and PDFs
(GET /api/v1/invoices/{id}/pdf, /api/v1/billing/payments/{payment_id}/receipt.pdf).

Either an account key (`Authorization: Bearer ak_live_...`) or the portal's session cookie says whose they
are. Without either, the pages send the browser to sign in and the PDFs answer 401; another account's id is
404, as an unknown one is, so the answer never tells that it exists. The pages are plain HTML with an inline
style sheet and no script (the pages' CSP allows no inline script), light or dark as the system is, and
print on white.
"""

from __future__ import annotations

import html
from typing import Callable
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from billing_core.errors import NotFound
from billing_core.money import format_usd
from billing_core.payments.documents import (Document, Seller, details, invoice_document, receipt_document,
                                             refund_rows, stamp_word, tone, totals)
from billing_core.payments.pdf import render_pdf

from .. import routes
from ..auth.deps import optional_user
from .deps import authenticate, billing_of
from .errors import ApiError
from .projects import owner

router = APIRouter(tags=["invoices"])
_PRIVATE = {"Cache-Control": "private, no-store"}  # a customer's document: never in a shared cache


def _caller_account(request: Request) -> str | None:
    """The account asking: an account key's (a bad key is 401), else the signed-in person's; None if neither."""
    if request.headers.get("authorization"):
        return owner(authenticate(request))
    user = optional_user(request)
    return user.account_id if user is not None else None


def _seller(request: Request) -> Seller:
    return Seller(url=request.app.state.settings.public_url)


def _pdf(doc: Document) -> Response:
    return Response(render_pdf(doc), media_type="application/pdf",
                    headers={**_PRIVATE, "Content-Disposition": f'attachment; filename="{doc.filename}"'})


def _api_account(request: Request) -> str:
    account_id = _caller_account(request)
    if account_id is None:
        raise ApiError(401, "unauthorized", "Send an account key as 'Authorization: Bearer ak_live_...' or sign in.",
                       {"WWW-Authenticate": "Bearer"})
    return account_id


@router.get("/api/v1/invoices/{invoice_id}/pdf", summary="The invoice as a PDF (A4)",
            response_class=Response, responses={200: {"content": {"application/pdf": {}}}})
def invoice_pdf(request: Request, invoice_id: str) -> Response:
    return _pdf(invoice_document(billing_of(request), _api_account(request), invoice_id, _seller(request)))


@router.get("/api/v1/billing/payments/{payment_id}/receipt.pdf", summary="A succeeded payment's receipt as a PDF",
            response_class=Response, responses={200: {"content": {"application/pdf": {}}}})
def receipt_pdf(request: Request, payment_id: str) -> Response:
    return _pdf(receipt_document(billing_of(request), _api_account(request), payment_id, _seller(request)))


@router.get("/invoices/{invoice_id}", include_in_schema=False, response_model=None)
def invoice_page(request: Request, invoice_id: str) -> Response:
    return _page_for(request, invoice_document, invoice_id, "invoice")


@router.get("/receipts/{payment_id}", include_in_schema=False, response_model=None)
def receipt_page(request: Request, payment_id: str) -> Response:
    return _page_for(request, receipt_document, payment_id, "receipt")


def _page_for(request: Request, build: Callable[..., Document], ref: str, what: str) -> Response:
    """The printable page of `build(billing, account, ref, seller)`; sign in first; 404 for another's."""
    account_id = _caller_account(request)
    if account_id is None:
        return RedirectResponse(f"{routes.SIGN_IN}?next={quote(request.url.path, safe='')}", status_code=303)
    try:
        doc = build(billing_of(request), account_id, ref, _seller(request))
    except NotFound:
        body = (f"<h1>No such {what}</h1><p>This {what} does not exist, or it belongs to another account.</p>"
                f"<nav class='actions'><a href='{routes.BILLING}'>Back to billing</a></nav>")
        return _html(f"No such {what} · Tollgate", body, 404)
    return _html(f"{doc.title} {doc.number} · Tollgate", render_page(doc))


def pdf_url(doc: Document) -> str:
    if doc.kind == "invoice":
        return f"/api/v1/invoices/{quote(doc.id, safe='')}/pdf"
    return f"/api/v1/billing/payments/{quote(doc.id, safe='')}/receipt.pdf"


def render_page(doc: Document) -> str:
    """The body of the printable page: the same facts and totals as the PDF."""
    e = html.escape
    word = stamp_word(doc)
    stamp = f"<p class='stamp {tone(doc)}'>{e(word)}</p>" if word else ""
    buyer = "Bill to" if doc.kind == "invoice" else "Paid by"
    facts = "".join(f"<div><dt>{e(label)}</dt><dd{_status_class(doc, label)}>{e(value)}</dd></div>"
                    for label, value in details(doc))
    lines = "".join(f"<tr><td>{e(line.description)}</td><td class='num'>{e(format_usd(line.amount_micros))}</td></tr>"
                    for line in doc.lines)
    rows = totals(doc)
    sums = "".join(f"<tr class='{'grand' if i == len(rows) - 1 else 'sum'}'><th scope='row'>{e(label)}</th>"
                   f"<td class='num'>{e(value)}</td></tr>" for i, (label, value) in enumerate(rows))
    refunds = ""
    if doc.refunds:
        refunds = ("<h2>Refunds</h2><table class='lines'><thead><tr><th>Date</th><th>What</th>"
                   "<th class='num'>Amount</th></tr></thead><tbody>"
                   + "".join(f"<tr><td>{e(d)}</td><td>{e(w)}</td><td class='num'>{e(a)}</td></tr>"
                             for d, w, a in refund_rows(doc)) + "</tbody></table>")
    footer = " \u00b7 ".join(e(line) for line in doc.seller)
    seller = "<br>".join(f"<strong>{e(line)}</strong>" if i == 0 else e(line) for i, line in enumerate(doc.seller))
    return (
        f"<header class='top'><p class='brand'>{e(doc.seller[0])}</p>"
        f"<div class='title'><h1>{e(doc.title)}</h1><p class='number'>{e(doc.number)}</p></div></header>"
        f"<section class='parties'><div><h2>From</h2><p>{seller}</p></div>"
        f"<div><h2>{buyer}</h2><p><strong>{e(doc.buyer_email)}</strong><br>Account {e(doc.buyer_account_id)}</p>"
        f"</div></section><section class='facts'><dl>{facts}</dl>{stamp}</section>"
        "<table class='lines'><thead><tr><th>Description</th><th class='num'>Amount</th></tr></thead>"
        f"<tbody>{lines}</tbody></table><table class='totals'><tbody>{sums}</tbody></table>{refunds}"
        f"<nav class='actions'><a class='button' href='{e(pdf_url(doc))}'>Download PDF</a>"
        f"<a href='{routes.BILLING}'>Back to billing</a>"
        "<span class='hint'>To print, use your browser's Print (Ctrl+P or \u2318P).</span></nav>"
        f"<footer>{footer} \u00b7 Amounts in US dollars (USD).</footer>")


def _status_class(doc: Document, label: str) -> str:
    return f" class='status {tone(doc)}'" if label == "Status" else ""


def _html(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse("<!doctype html><html lang='en'><head><meta charset='utf-8'>"
                        f"<title>{html.escape(title)}</title>"
                        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
                        "<meta name='color-scheme' content='light dark'><link rel='icon' href='data:,'>"
                        f"<style>{_STYLE}</style></head><body><main class='sheet'>{body}</main></body></html>",
                        status_code=status, headers=_PRIVATE)


_STYLE = """
:root{--bg:#f4f5f7;--paper:#fff;--ink:#1c2024;--muted:#60646c;--rule:#e0e1e6;--head:#f3f4f7;--accent:#3e63dd;
--good:#18794e;--bad:#c42030;--neutral:#60646c;color-scheme:light dark}
@media (prefers-color-scheme: dark){:root{--bg:#111113;--paper:#18191b;--ink:#edeef0;--muted:#b0b4ba;
--rule:#2e3135;--head:#212225;--accent:#9eb1ff;--good:#3dd68c;--bad:#ff9592;--neutral:#b0b4ba}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,
sans-serif;-webkit-font-smoothing:antialiased}
.sheet{max-width:820px;margin:2.5rem auto;background:var(--paper);border-radius:12px;padding:2.75rem 3rem;
box-shadow:0 1px 3px rgba(0,0,0,.12),0 8px 24px rgba(0,0,0,.06)}
.top{display:flex;justify-content:space-between;align-items:flex-start;gap:1rem}
.brand{margin:0;font-size:1.6rem;font-weight:700;color:var(--accent)}
.title{text-align:right}h1{margin:0;font-size:1.9rem;letter-spacing:.06em;text-transform:uppercase}
.number{margin:.1rem 0 0;color:var(--muted);font-variant-numeric:tabular-nums}
h2{font-size:.72rem;letter-spacing:.08em;text-transform:uppercase;color:var(--muted);margin:0 0 .3rem}
.parties{display:grid;grid-template-columns:1fr 1fr;gap:1.5rem;margin:2.25rem 0 1.5rem}
.parties p{margin:0;overflow-wrap:anywhere}
.facts{display:flex;justify-content:space-between;align-items:center;gap:1rem;margin-bottom:1.75rem}
dl{margin:0;display:grid;gap:.2rem}dl div{display:grid;grid-template-columns:10rem 1fr;gap:.75rem}
dt{color:var(--muted);font-size:.88rem}dd{margin:0;overflow-wrap:anywhere}
.status{font-weight:600}.good{color:var(--good)}.bad{color:var(--bad)}.neutral{color:var(--neutral)}
.stamp{margin:0 .5rem 0 0;padding:.3rem .9rem;border:3px solid currentColor;border-radius:6px;font-weight:800;
font-size:1.3rem;letter-spacing:.1em;transform:rotate(-8deg);white-space:nowrap;opacity:.85}
table{width:100%;border-collapse:collapse;font-variant-numeric:tabular-nums}
.lines th{background:var(--head);color:var(--muted);font-size:.8rem;text-align:left;padding:.55rem .75rem}
.lines td{padding:.65rem .75rem;border-bottom:1px solid var(--rule)}
.num{text-align:right !important;white-space:nowrap}
.totals{width:auto;margin:1rem 0 0 auto;min-width:19rem}
.totals th{font-weight:400;color:var(--muted);text-align:right;padding:.2rem 1.5rem .2rem 0}
.totals td{padding:.2rem .75rem}.totals .grand th,.totals .grand td{font-weight:700;color:var(--ink);
font-size:1.1rem;padding-top:.5rem}
.sheet > h2{margin-top:2rem;font-size:.8rem}
.actions{display:flex;flex-wrap:wrap;align-items:center;gap:1rem;margin-top:2.25rem}
a{color:var(--accent)}.button{background:var(--accent);color:var(--paper);text-decoration:none;font-weight:600;
padding:.55rem 1.1rem;border-radius:6px}.hint{color:var(--muted);font-size:.85rem}
footer{margin-top:2.5rem;padding-top:.75rem;border-top:1px solid var(--rule);color:var(--muted);font-size:.8rem}
@media (max-width:640px){.sheet{margin:0;border-radius:0;padding:1.5rem 1.1rem;box-shadow:none}
.parties{grid-template-columns:1fr}.facts{flex-direction:column;align-items:flex-start}
dl div{grid-template-columns:8.5rem 1fr}.totals{min-width:0;width:100%}h1{font-size:1.5rem}}
@media print{:root{--bg:#fff;--paper:#fff;--ink:#000;--muted:#444;--rule:#ccc;--head:#f1f1f1;--accent:#1f3fae;
--good:#0f5c3a;--bad:#a1161d;--neutral:#444;color-scheme:light}
@page{size:A4;margin:16mm}body{font-size:11pt;background:#fff}
.sheet{max-width:none;margin:0;padding:0;box-shadow:none;border-radius:0}.actions{display:none}
.lines th{-webkit-print-color-adjust:exact;print-color-adjust:exact}tr{break-inside:avoid}}
"""
