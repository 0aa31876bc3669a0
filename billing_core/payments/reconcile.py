"""The nightly reconciliation: the provider's records of payments against ours. Any difference (an amount,
a refund, a success we never granted, a grant the provider does not know) is an activity row on the account
and an error in the log for the operator; the job's summary counts them."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select

from ..db.engine import read_session, write_session
from ..db.payments import Payment
from ..money import format_usd
from ..services.context import Billing
from ..services.journal import Journal
from . import provider as p

log = logging.getLogger("billing_core.payments.reconcile")
WINDOW = timedelta(days=35)
# A payment this young may still be on its way (a webhook in flight): it is compared on the next run.
SETTLING = timedelta(minutes=30)


@dataclass
class Reconciliation:
    compared: int = 0
    differences: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        return {"compared": self.compared, "differences": len(self.differences),
                "first": self.differences[:3]}


def _ours_matches(theirs: p.ProviderPayment, ours: Payment) -> str | None:
    if theirs.status == "succeeded" or theirs.status == "disputed":
        if ours.granted_at is None:
            return f"the provider took {format_usd(theirs.amount_micros)} but nothing was granted"
        if theirs.amount_micros != ours.amount_micros:
            return f"the provider took {format_usd(theirs.amount_micros)}, we recorded {format_usd(ours.amount_micros)}"
        if theirs.refunded_micros != ours.refunded_micros:
            return (f"the provider refunded {format_usd(theirs.refunded_micros)}, we recorded "
                    f"{format_usd(ours.refunded_micros)}")
    elif ours.granted_at is not None:
        return f"granted, but the provider says {theirs.status}"
    return None


def reconcile_payments(billing: Billing, provider: p.Provider, now: datetime) -> Reconciliation:
    since, until = now - WINDOW, now - SETTLING
    theirs = provider.list_payments(since=since, until=until)
    with read_session(billing.engine) as session:
        ours = session.execute(select(Payment).where(Payment.provider == provider.name,
                                                     Payment.created_at >= since - SETTLING)).scalars().all()
    by_id = {o.id: o for o in ours}
    by_ref = {o.provider_payment_id: o for o in ours if o.provider_payment_id}
    result = Reconciliation()
    seen: set[str] = set()
    found: list[tuple[str, str]] = []
    for record in theirs:
        mine = by_ref.get(record.provider_payment_id) or by_id.get(record.payment_id or "")
        result.compared += 1
        if mine is None:
            if record.status in ("succeeded", "disputed"):
                found.append(("", f"provider payment {record.provider_payment_id} of "
                                  f"{format_usd(record.amount_micros)} matches no payment of ours"))
            continue
        seen.add(mine.id)
        why = _ours_matches(record, mine)
        if why:
            found.append((mine.account_id, f"payment {mine.id}: {why}"))
    for mine in ours:
        if mine.granted_at is not None and mine.id not in seen and since <= mine.created_at < until:
            found.append((mine.account_id, f"payment {mine.id} was granted but the provider has no record of it"))
    for account_id, text in found:
        log.error("payments reconciliation with %s: %s", provider.name, text)
        result.differences.append(text)
        if account_id:
            with write_session(billing.engine) as session:
                journal = Journal(account_id, now)
                journal.activity("reconciliation_difference", account_id, text)
                journal.flush(session)
    return result
