"""(f) Payment webhooks: deliveries applied per second, and 100 concurrent duplicates of one event.

    .venv/bin/python bench/webhooks.py [sqlite] [postgresql] [--payments 2000] [--accounts 50] [--clients 8]

The API runs in its own process (bench/common.py) with the sandbox provider. Checkouts are started in this
process through the real service (one pending payment each, spread over --accounts accounts); then each
payment's `payment.succeeded` event, signed with Standard Webhooks as the sandbox signs it, is POSTed to
/webhooks/sandbox by --clients concurrent HTTP clients. Figures:
  * many accounts: distinct deliveries applied per second (signature check, event row, account lock, grant,
    ledger entry, receipt number, status), with p50/p95 latency;
  * one hot account: the same for 500 payments of one account (they queue on its lock);
  * duplicates: one event POSTed 100 times at once; wall time until all are answered, and how many applied
    (must be 1).
After each run the database is checked: every payment granted exactly once, credit = sum of grants.
No target: the figure is for knowing (issue 13).
"""

from __future__ import annotations

import base64
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

SECRET = "whsec_" + base64.b64encode(b"tollgate bench sandbox secret 32b").decode()
os.environ["TOLLGATE_SANDBOX_WEBHOOK_SECRET"] = SECRET  # the server's copy of the environment gets it

import httpx  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from common import (arg_value, billing_for, create_account, database, load_average, parse_dbs,  # noqa: E402
                    percentiles, record, running_server)


def now() -> datetime:
    return datetime.now(timezone.utc)


def start_checkouts(billing, accounts, n: int) -> list[tuple[str, dict]]:
    """n pending payments by checkout, round-robin over the accounts: [(account_id, started)]."""
    from billing_core.payments.checkout import start_checkout
    from billing_core.payments.sandbox import SandboxProvider

    provider = SandboxProvider(billing, webhook_secret=SECRET, public_url="http://127.0.0.1")
    out = []
    for i in range(n):
        account = accounts[i % len(accounts)]
        started = start_checkout(billing, provider, account.account_id, {"item": "credit", "amount_micros": 5_000_000},
                                 success_url="http://127.0.0.1/billing", cancel_url="http://127.0.0.1/billing",
                                 now=now())
        out.append((account.account_id, started.public()))
    return out


def signed(account_id: str, started: dict, msg_id: str) -> tuple[bytes, dict]:
    from billing_core.services.notifications import webhook_headers

    body = json.dumps({"type": "payment.succeeded", "timestamp": now().isoformat(),
                       "data": {"payment_id": f"sbp_{started['id']}", "checkout_id": started["id"],
                                "amount_micros": started["amount_micros"], "currency": "usd",
                                "metadata": {"payment_id": started["payment_id"], "account_id": account_id}}})
    return body.encode(), webhook_headers(msg_id, SECRET, body, now())


def post_all(server: str, deliveries: list[tuple[bytes, dict]], clients: int) -> tuple[float, list[float], list]:
    latencies: list[float] = []
    outcomes: list = []
    with httpx.Client(limits=httpx.Limits(max_connections=clients), timeout=60) as http:
        def one(item):
            body, headers = item
            t0 = time.perf_counter()
            answer = http.post(f"{server}/webhooks/sandbox", content=body, headers=headers)
            latencies.append(time.perf_counter() - t0)
            outcomes.append(answer.json().get("outcome") if answer.status_code == 200 else answer.status_code)

        t0 = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            list(pool.map(one, deliveries))
        return time.perf_counter() - t0, latencies, outcomes


def granted_once(billing, payment_ids: list[str]) -> bool:
    from billing_core.db.engine import read_session
    from billing_core.db.models import LedgerEntry
    from billing_core.db.payments import Payment

    with read_session(billing.engine) as session:
        granted = session.execute(select(func.count()).select_from(Payment).where(
            Payment.id.in_(payment_ids), Payment.granted_at.is_not(None))).scalar_one()
        entries = session.execute(select(func.count()).select_from(LedgerEntry).where(
            LedgerEntry.ref_type == "payment", LedgerEntry.ref_id.in_(payment_ids))).scalar_one()
    return granted == entries == len(payment_ids)


def run(kind: str, payments: int, n_accounts: int, clients: int) -> None:
    db = database(kind, f"bench_webhooks_{kind}")
    accounts = [create_account(db) for _ in range(n_accounts)]  # migrates the database first
    billing = billing_for(db)
    many = start_checkouts(billing, accounts, payments)
    hot = start_checkouts(billing, accounts[:1], 500)
    storm = start_checkouts(billing, accounts[1:2], 1)
    with running_server(db) as server:
        for label, batch in (("many_accounts", many), ("hot_account", hot)):
            deliveries = [signed(a, s, f"msg_{s['id']}") for a, s in batch]
            seconds, lat, outcomes = post_all(server, deliveries, clients)
            ok = outcomes.count("applied") == len(batch) and granted_once(billing, [s["payment_id"] for _, s in batch])
            record("webhooks", kind, case=label, deliveries=len(batch), clients=clients,
                   applied_per_s=round(len(batch) / seconds, 1), **percentiles(lat), load=round(load_average(), 2),
                   target="know the figure", **{"pass": ok})
        account_id, started = storm[0]
        one = signed(account_id, started, "msg_storm")
        seconds, lat, outcomes = post_all(server, [one] * 100, 100)
        ok = outcomes.count("applied") == 1 and outcomes.count("duplicate") == 99 and granted_once(
            billing, [started["payment_id"]])
        record("webhooks", kind, case="100_duplicates", deliveries=100, clients=100,
               all_answered_s=round(seconds, 3), applied=outcomes.count("applied"), **percentiles(lat),
               target="applied once", **{"pass": ok})
    billing.engine.dispose()


def main(argv: list[str]) -> None:
    payments = int(arg_value(argv, "--payments", "2000"))
    n_accounts = int(arg_value(argv, "--accounts", "50"))
    clients = int(arg_value(argv, "--clients", "8"))
    for kind in parse_dbs(argv):
        run(kind, payments, n_accounts, clients)


if __name__ == "__main__":
    main(sys.argv[1:])
