"""Invoices and receipts as documents (DESIGN.md, Payments): numbers from gapless sequences under concurrency
on SQLite and PostgreSQL, what an invoice and a receipt say, the PDF, and the pages and PDFs over HTTP with an
account key, with a real session cookie, with neither, and for another account's ids."""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from http.cookies import SimpleCookie

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from billing_core.crypto import Keyring, new_key_spec
from billing_core.db.engine import read_session, write_session
from billing_core.db.models import Invoice
from billing_core.db.payments import DocumentNumber, Payment
from billing_core.errors import NotFound
from billing_core.payments import provider as p
from billing_core.payments.apply import apply_event
from billing_core.payments.documents import (Line, Seller, details, invoice_document, receipt_document, totals)
from billing_core.payments.numbers import next_number
from billing_core.payments.pdf import render_pdf
from billing_core.services import accounts
from billing_core.services.context import Billing
from billing_core.services.periods import run_due_work
from billing_core.services.usage import record_usage
from portal.api.app import create_api
from portal.settings import Settings

from ..conftest import T0
from ..factories import compute, make_account
from .helpers import checkout, event, sandbox

HOUR = 3_600_000
SELLER = Seller(url="https://billing.example.com")
VISA = p.SavedMethod("sbcard_4242", None, "visa", "4242")
CLOSED = T0 + timedelta(days=31)  # T0's first period (15 Jan - 15 Feb 2026) has ended


def _invoices(billing: Billing) -> list[Invoice]:
    with read_session(billing.engine) as session:
        return list(session.execute(select(Invoice).order_by(Invoice.number)).scalars())


def _pay(billing: Billing, account_id: str, body: dict, at: datetime, method=VISA) -> str:
    """A payment made through a checkout and the provider's success event; returns its id."""
    started = checkout(billing, sandbox(billing), account_id, body, at)
    paid = event(p.PAYMENT_SUCCEEDED, f"evt_{started.id}", checkout_id=started.id, account_id=account_id,
                 provider_payment_id=f"sbp_{started.id}", amount_micros=started.amount_micros, at=at, method=method)
    assert apply_event(billing, paid, now=at).outcome == "applied"
    return started.payment_id


def _refund(billing: Billing, payment_id: str, amount_micros: int, at: datetime) -> None:
    refunded = event(p.REFUND_SUCCEEDED, f"evt_refund_{payment_id}_{amount_micros}", payment_id=payment_id,
                     provider_payment_id=None, amount_micros=amount_micros, provider_refund_id=f"sbr_{payment_id}",
                     at=at)
    assert apply_event(billing, refunded, now=at).outcome == "applied"


# -- gapless numbers ----------------------------------------------------------------------------------
def test_invoice_numbers_from_concurrent_period_closes_are_gapless_and_in_each_accounts_order(billing):
    ids = [make_account(billing, plan="starter").account_id for _ in range(6)]
    # Eight closers at once, half of them late enough to close two periods of every account.
    moments = [CLOSED, T0 + timedelta(days=62)] * 4
    barrier = threading.Barrier(len(moments))

    def close(at):
        barrier.wait()
        return run_due_work(billing, at).periods_closed

    with ThreadPoolExecutor(max_workers=len(moments)) as pool:
        closed = sum(pool.map(close, moments))
    invoices = _invoices(billing)
    assert closed == len(invoices) == 2 * len(ids)
    assert [invoice.number for invoice in invoices] == list(range(1, 2 * len(ids) + 1))
    for account_id in ids:  # an account's periods close in order under its lock: their numbers follow
        mine = sorted((i for i in invoices if i.account_id == account_id), key=lambda i: i.period_start)
        assert mine[0].number < mine[1].number
    with read_session(billing.engine) as session:
        assert session.get(DocumentNumber, "invoice").last == 2 * len(ids)


def test_a_number_taken_by_a_transaction_that_rolls_back_goes_to_the_next_invoice(billing):
    account_id = make_account(billing, plan="starter").account_id
    taken, holding = [], threading.Event()

    def take_then_fail():
        with pytest.raises(RuntimeError):
            with write_session(billing.engine) as session:
                taken.append(next_number(session, "invoice"))
                holding.set()
                threading.Event().wait(0.3)  # the closer below waits on the counter meanwhile
                raise RuntimeError("the document is not issued after all")

    failing = threading.Thread(target=take_then_fail)
    failing.start()
    assert holding.wait(5)
    assert run_due_work(billing, CLOSED).periods_closed == 1
    failing.join()
    (invoice,) = _invoices(billing)
    assert taken == [1] and invoice.number == 1 and invoice.account_id == account_id
    with read_session(billing.engine) as session:
        assert session.get(DocumentNumber, "invoice").last == 1


def test_receipt_numbers_of_payments_succeeding_at_once_are_gapless(billing):
    account_id = make_account(billing, plan="starter").account_id
    provider, at = sandbox(billing), T0 + timedelta(days=1)
    started = [checkout(billing, provider, account_id, {"item": "credit", "amount_micros": 5_000_000 + i * 10_000},
                        at) for i in range(6)]
    events = [event(p.PAYMENT_SUCCEEDED, f"evt_{s.id}", checkout_id=s.id, account_id=account_id,
                    provider_payment_id=f"sbp_{s.id}", amount_micros=s.amount_micros, at=at) for s in started]
    with ThreadPoolExecutor(max_workers=len(events)) as pool:
        assert set(pool.map(lambda e: apply_event(billing, e, now=at).outcome, events)) == {"applied"}
    with read_session(billing.engine) as session:
        numbers = sorted(session.execute(select(Payment.receipt_number)).scalars())
    assert numbers == [1, 2, 3, 4, 5, 6]


# -- what the documents say ---------------------------------------------------------------------------
@pytest.fixture
def invoiced(sqlite_billing):
    """A starter account upgraded to pro on day 10 with no credit (the proration goes on the invoice), that
    then used 2,000 s beyond pro's 200 h: its first period's invoice."""
    acc = make_account(sqlite_billing, plan="starter", email="ada@example.com")
    accounts.set_plan(sqlite_billing, acc.account_id, "pro", now=T0 + timedelta(days=10))
    record_usage(sqlite_billing, acc.account_id, [compute(acc.project_id, 200 * HOUR),
                                                  compute(acc.project_id, 2_000_000)], now=T0 + timedelta(days=11))
    run_due_work(sqlite_billing, CLOSED)
    (invoice,) = _invoices(sqlite_billing)
    return sqlite_billing, acc, invoice.id


def test_an_invoice_shows_plan_fee_overage_and_proration_lines_and_their_total(invoiced):
    billing, acc, invoice_id = invoiced
    doc = invoice_document(billing, acc.account_id, invoice_id, SELLER)
    proration = 80_000_000 * 21 // 31  # pro - starter, for 21 of the period's 31 days (rounded down: .387)
    assert doc.kind == "invoice" and doc.number == "INV-000001" and doc.status == "open"
    assert doc.lines == (Line("Pro plan, 15 January 2026 \u2013 15 February 2026", 100_000_000),
                         Line("Overage: compute and tokens beyond the allowance and credit", 200_000),
                         Line("Plan upgrade during the period (prorated)", proration))
    assert doc.total_micros == 100_000_000 + 200_000 + proration == 154_393_548
    assert (doc.amount_paid_micros, doc.amount_due_micros) == (0, 154_390_000)  # charged in whole cents
    assert doc.seller == ("Tollgate", "https://billing.example.com")
    assert (doc.buyer_email, doc.buyer_account_id) == ("ada@example.com", acc.account_id)
    assert doc.issued_at == CLOSED and doc.period_start == T0
    assert totals(doc) == (("Total", "$154.393548"), ("Rounded to whole cents", "$154.39"),
                           ("Amount paid", "$0.00"), ("Amount due", "$154.39"))
    assert ("Billing period", "15 January 2026 \u2013 15 February 2026") in details(doc)


def test_a_paid_invoice_names_its_payment_and_owes_nothing(invoiced):
    billing, acc, invoice_id = invoiced
    at = CLOSED + timedelta(hours=2)
    payment_id = _pay(billing, acc.account_id, {"item": "invoice", "invoice_id": invoice_id}, at)
    doc = invoice_document(billing, acc.account_id, invoice_id, SELLER)
    assert (doc.status, doc.payment_id, doc.paid_at) == ("paid", payment_id, at)
    assert (doc.amount_paid_micros, doc.amount_due_micros) == (154_390_000, 0)
    receipt = receipt_document(billing, acc.account_id, payment_id, SELLER)
    assert receipt.lines == (Line("Invoice INV-000001", 154_390_000),)


def test_a_receipt_shows_the_card_and_lists_its_refunds(sqlite_billing):
    acc = make_account(sqlite_billing, plan="starter", email="bob@example.com")
    at = T0 + timedelta(days=2)
    payment_id = _pay(sqlite_billing, acc.account_id, {"item": "credit", "amount_micros": 25_000_000}, at)
    _refund(sqlite_billing, payment_id, 10_000_000, at + timedelta(days=1))
    doc = receipt_document(sqlite_billing, acc.account_id, payment_id, SELLER)
    assert doc.kind == "receipt" and doc.number == "RCT-000001" and doc.status == "partially_refunded"
    assert doc.lines == (Line("Credit top-up", 25_000_000),) and doc.total_micros == 25_000_000
    assert doc.payment_method == "Visa \u2022\u2022\u2022\u2022 4242" and doc.payment_id == payment_id
    assert doc.issued_at == doc.paid_at == at
    assert [(r.refunded_at, r.amount_micros, r.reason) for r in doc.refunds] == [
        (at + timedelta(days=1), 10_000_000, "refund")]
    assert totals(doc) == (("Total", "$25.00"), ("Amount paid", "$25.00"), ("Refunded", "-$10.00"),
                           ("Net paid", "$15.00"))


def test_documents_of_another_account_or_of_an_unpaid_payment_are_not_found(invoiced):
    billing, acc, invoice_id = invoiced
    other = make_account(billing, plan="starter").account_id
    paid = _pay(billing, other, {"item": "credit", "amount_micros": 5_000_000}, CLOSED)
    pending = checkout(billing, sandbox(billing), other, {"item": "credit", "amount_micros": 6_000_000}, CLOSED)
    for call in (lambda: invoice_document(billing, other, invoice_id, SELLER),
                 lambda: receipt_document(billing, acc.account_id, paid, SELLER),
                 lambda: receipt_document(billing, other, pending.payment_id, SELLER),
                 lambda: invoice_document(billing, acc.account_id, "inv_unknown", SELLER)):
        with pytest.raises(NotFound):
            call()
    assert invoice_document(billing, None, invoice_id, SELLER).buyer_account_id == acc.account_id  # operator


# -- the PDF --------------------------------------------------------------------------------------------
def _assert_valid_pdf(data: bytes) -> None:
    """The file's structure holds: header, trailer, and an xref table whose every offset starts its object."""
    assert data.startswith(b"%PDF-1.") and data.rstrip().endswith(b"%%EOF")
    assert b"trailer" in data and b"/Root" in data
    start = int(re.search(rb"startxref\s+(\d+)\s+%%EOF\s*$", data).group(1))
    assert data[start:start + 4] == b"xref"
    first, count = map(int, re.match(rb"xref\s+(\d+) (\d+)\s+", data[start:]).groups())
    entries = re.findall(rb"(\d{10}) (\d{5}) ([nf])", data[start:])[:count]
    assert len(entries) == count > 5
    for number, (offset, _, kind) in enumerate(entries, start=first):
        if kind == b"n":
            assert re.match(rb"%d 0 obj" % number, data[int(offset):]), number


def test_the_invoice_pdf_is_a_valid_a4_file_with_its_number_total_and_date(invoiced):
    billing, acc, invoice_id = invoiced
    doc = invoice_document(billing, acc.account_id, invoice_id, SELLER)
    plain = render_pdf(doc, compress=False)
    _assert_valid_pdf(plain)
    for text in (b"INV-000001", b"$154.393548", b"$154.39", b"ada@example.com", b"https://billing.example.com",
                 b"Amount due", b"INVOICE"):
        assert text in plain, text
    assert b"/MediaBox [0 0 595.28 841.89]" in plain  # A4 in points
    assert b"/CreationDate (D:20260215120000Z" in plain  # the date of issue, so the bytes are reproducible
    assert render_pdf(doc, compress=False) == plain
    packed = render_pdf(doc)
    _assert_valid_pdf(packed)
    assert b"$154.393548" not in packed and len(packed) < len(plain)  # the page's text is deflated


def test_the_receipt_pdf_shows_the_paid_stamp_the_card_and_the_refund(sqlite_billing):
    acc = make_account(sqlite_billing, plan="starter")
    at = T0 + timedelta(days=2)
    payment_id = _pay(sqlite_billing, acc.account_id, {"item": "credit", "amount_micros": 25_000_000}, at)
    _refund(sqlite_billing, payment_id, 10_000_000, at)
    plain = render_pdf(receipt_document(sqlite_billing, acc.account_id, payment_id, SELLER), compress=False)
    _assert_valid_pdf(plain)
    for text in (b"RCT-000001", b"PAID", b"Visa \x95\x95\x95\x95 4242", b"-$10.00", b"$15.00", b"Refunds"):
        assert text in plain, text


# -- over HTTP ------------------------------------------------------------------------------------------
@pytest.fixture
def site(sqlite_billing, tmp_path):
    """The API on a test client, an account with a key (with an invoice and a refunded payment), and a
    person signed up through /auth/sign-up (with a payment), holding the real session cookie."""
    billing = Billing(sqlite_billing.engine, sqlite_billing.catalog, Keyring.parse(new_key_spec("k1")))
    settings = Settings(_env_file=None, env="test", data_dir=tmp_path, public_url="http://localhost")
    api = create_api(billing, settings)
    with TestClient(api, base_url="http://localhost") as browser:
        signed_up = browser.post("/auth/sign-up", headers={"Accept": "application/json"},
                                 data={"email": "cookie@example.com", "password": "correct horse 1843"})
        assert signed_up.status_code == 200, signed_up.text
        cookie = SimpleCookie(signed_up.headers["set-cookie"])["tollgate_session"].value
        person = browser.get("/auth/session").json()["user"]["account_id"]
    keyed = make_account(billing, plan="starter", email="key@example.com")
    run_due_work(billing, CLOSED)
    (invoice,) = [i for i in _invoices(billing) if i.account_id == keyed.account_id]
    # The person signed up today: their first period ends within a month or so of today.
    run_due_work(billing, max(datetime.now(timezone.utc), CLOSED) + timedelta(days=40))
    person_invoice = next(i for i in _invoices(billing) if i.account_id == person)
    keyed_payment = _pay(billing, keyed.account_id, {"item": "credit", "amount_micros": 25_000_000}, CLOSED)
    _refund(billing, keyed_payment, 5_000_000, CLOSED)
    person_payment = _pay(billing, person, {"item": "pool_pack", "quantity": 2}, CLOSED)
    with TestClient(api, base_url="http://localhost", follow_redirects=False) as client:
        yield dict(client=client, key={"Authorization": f"Bearer {keyed.api_key}"},
                   cookie={"Cookie": f"tollgate_session={cookie}"}, invoice=invoice.id, keyed_payment=keyed_payment,
                   person=person, person_payment=person_payment, person_invoice=person_invoice.id)


def test_an_account_key_gets_its_invoice_page_and_pdf(site):
    client, key, invoice_id = site["client"], site["key"], site["invoice"]
    page = client.get(f"/invoices/{invoice_id}", headers=key)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "INV-0000" in page.text and "key@example.com" in page.text and "Download PDF" in page.text
    assert f"href='/api/v1/invoices/{invoice_id}/pdf'" in page.text
    assert "<script" not in page.text.lower() and "@media print" in page.text
    assert "prefers-color-scheme: dark" in page.text
    assert "'unsafe-inline'" not in page.headers["content-security-policy"].split("script-src")[1].split(";")[0]
    assert "no-store" in page.headers["cache-control"]
    pdf = client.get(f"/api/v1/invoices/{invoice_id}/pdf", headers=key)
    number = re.search(r"INV-\d{6}", page.text).group(0)
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["content-disposition"] == f'attachment; filename="{number}.pdf"'
    _assert_valid_pdf(pdf.content)


def test_an_account_key_gets_a_receipt_page_and_pdf_with_the_refund(site):
    client, key, payment_id = site["client"], site["key"], site["keyed_payment"]
    page = client.get(f"/receipts/{payment_id}", headers=key)
    assert page.status_code == 200
    assert "RCT-" in page.text and "Refunds" in page.text and "-$5.00" in page.text and "$20.00" in page.text
    assert f"href='/api/v1/billing/payments/{payment_id}/receipt.pdf'" in page.text
    pdf = client.get(f"/api/v1/billing/payments/{payment_id}/receipt.pdf", headers=key)
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert re.fullmatch(r'attachment; filename="RCT-\d{6}\.pdf"', pdf.headers["content-disposition"])
    _assert_valid_pdf(pdf.content)


def test_the_session_cookie_of_a_signed_in_person_gets_their_receipt_and_invoice(site):
    client, cookie, payment_id = site["client"], site["cookie"], site["person_payment"]
    page = client.get(f"/receipts/{payment_id}", headers=cookie)
    assert page.status_code == 200 and "cookie@example.com" in page.text and "2 pool packs" in page.text
    pdf = client.get(f"/api/v1/billing/payments/{payment_id}/receipt.pdf", headers=cookie)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-")
    page = client.get(f"/invoices/{site['person_invoice']}", headers=cookie)
    assert page.status_code == 200 and "cookie@example.com" in page.text and "Hobby plan" in page.text
    pdf = client.get(f"/api/v1/invoices/{site['person_invoice']}/pdf", headers=cookie)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-")


def test_without_a_key_or_a_session_pages_go_to_sign_in_and_pdfs_are_401(site):
    client, invoice_id, payment_id = site["client"], site["invoice"], site["keyed_payment"]
    page = client.get(f"/invoices/{invoice_id}")
    assert page.status_code == 303 and page.headers["location"] == f"/sign-in?next=%2Finvoices%2F{invoice_id}"
    page = client.get(f"/receipts/{payment_id}")
    assert page.status_code == 303 and page.headers["location"] == f"/sign-in?next=%2Freceipts%2F{payment_id}"
    for path in (f"/api/v1/invoices/{invoice_id}/pdf", f"/api/v1/billing/payments/{payment_id}/receipt.pdf"):
        answer = client.get(path)
        assert answer.status_code == 401 and answer.json()["error"]["code"] == "unauthorized", path
        assert client.get(path, headers={"Cookie": "tollgate_session=forged"}).status_code == 401
        assert client.get(path, headers={"Authorization": "Bearer ak_live_nope"}).status_code == 401


def test_another_accounts_ids_are_404_exactly_like_unknown_ones(site):
    client, key, cookie = site["client"], site["key"], site["cookie"]
    theirs_and_unknown = [
        (key, f"/receipts/{site['person_payment']}", "/receipts/pay_unknown"),
        (key, f"/api/v1/billing/payments/{site['person_payment']}/receipt.pdf",
         "/api/v1/billing/payments/pay_unknown/receipt.pdf"),
        (cookie, f"/invoices/{site['invoice']}", "/invoices/inv_unknown"),
        (cookie, f"/api/v1/invoices/{site['invoice']}/pdf", "/api/v1/invoices/inv_unknown/pdf"),
        (cookie, f"/receipts/{site['keyed_payment']}", "/receipts/pay_unknown")]
    for auth, theirs, unknown in theirs_and_unknown:
        a, b = client.get(theirs, headers=auth), client.get(unknown, headers=auth)
        assert a.status_code == b.status_code == 404, theirs
        strip = re.compile(r"(pay|inv)_\w+")
        assert strip.sub("ID", a.text) == strip.sub("ID", b.text), theirs
        assert "key@example.com" not in a.text and "cookie@example.com" not in a.text


def test_a_payment_that_has_not_succeeded_has_no_receipt_page(site):
    client, cookie = site["client"], site["cookie"]
    started = checkout(client.app.state.billing, sandbox(client.app.state.billing), site["person"],
                       {"item": "credit", "amount_micros": 7_000_000}, datetime.now(timezone.utc))
    assert client.get(f"/receipts/{started.payment_id}", headers=cookie).status_code == 404
    pdf = client.get(f"/api/v1/billing/payments/{started.payment_id}/receipt.pdf", headers=cookie)
    assert pdf.status_code == 404 and pdf.json()["error"]["code"] == "not_found"
