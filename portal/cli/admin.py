"""Operator commands (`tollgate admin ...`), working on the configured database directly."""

from __future__ import annotations

import json
from typing import Optional

import typer
from rich.console import Console
from rich.progress import Progress

from billing_core.money import format_usd, usd_to_micros
from billing_core.scheduler.lease import new_holder
from billing_core.services.identity import set_operator
from billing_core.scheduler.runner import run_due
from billing_core.scheduler.view import iso
from billing_core.services import accounts
from billing_core.services.secrets_rotation import reseal_all
from billing_core.services.views import AccountView

from ..scheduling import new_http_client, registered_jobs
from ..settings import get_settings
from .common import fail, one_line_errors, open_billing, parse_now
from .scheduler import format_summary

admin = typer.Typer(help="Operator commands on the configured database.", no_args_is_help=True)


def _usd(value: str) -> int:
    try:
        return usd_to_micros(value)
    except ValueError as exc:
        fail(str(exc))


def _print_account(view: AccountView) -> None:
    a = view.allowance
    pools_ms = sum(p["remaining_ms"] for p in view.pools)
    typer.echo(f"{view.id}  {view.email}  plan={view.plan}  status={view.status}  "
               f"allowance={a['remaining_ms'] / 3_600_000:.2f}h left of {a['included_ms'] / 3_600_000:g}h  "
               f"pools={pools_ms / 3_600_000:.2f}h  credit={format_usd(view.credit['balance_micros'])}")


@admin.command("create-account")
@one_line_errors
def create_account(email: str = typer.Option(..., help="The owner's email."),
                   plan: str = typer.Option("hobby", help="hobby, starter or pro."),
                   credit_usd: str = typer.Option("0", help="Credit granted at creation, in USD."),
                   as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Create an account with a first project named `default` and an account key (shown once)."""
    billing = open_billing()
    created = accounts.create_account(billing, email=email, plan=plan, credit_micros=_usd(credit_usd),
                                      now=parse_now(None))
    if as_json:
        typer.echo(json.dumps({"account_id": created.account_id, "project_id": created.project_id,
                               "api_key": created.api_key}))
    else:
        typer.echo(f"account {created.account_id}\nproject {created.project_id}\n"
                   f"api key {created.api_key}  (shown once: store it now)")


@admin.command("grant-credit")
@one_line_errors
def grant_credit(account_id: str, usd: str = typer.Option(..., help="Amount in USD, e.g. 25 or 12.50.")) -> None:
    """Add credit to an account; debt is paid off first."""
    _print_account(accounts.grant_credit(open_billing(), account_id, amount_micros=_usd(usd), now=parse_now(None)))


@admin.command("add-pool")
@one_line_errors
def add_pool(account_id: str, hours: int = typer.Option(..., min=1, help="Compute hours in the pool."),
             days: int = typer.Option(365, min=1, help="Days until the pool expires.")) -> None:
    """Add a pre-paid pool of compute time."""
    view = accounts.add_pool(open_billing(), account_id, size_ms=hours * 3_600_000, valid_days=days,
                             now=parse_now(None))
    _print_account(view)


@admin.command("set-plan")
@one_line_errors
def set_plan(account_id: str, plan: str) -> None:
    """Upgrade now (prorated) or downgrade at the next period close."""
    _print_account(accounts.set_plan(open_billing(), account_id, plan, now=parse_now(None)))


@admin.command("suspend")
@one_line_errors
def suspend(account_id: str) -> None:
    """Suspend an account: `check` answers no until it is resumed."""
    _print_account(accounts.set_suspended(open_billing(), account_id, True, now=parse_now(None)))


@admin.command("resume")
@one_line_errors
def resume(account_id: str) -> None:
    """Lift a suspension."""
    _print_account(accounts.set_suspended(open_billing(), account_id, False, now=parse_now(None)))


@admin.command("tick")
@one_line_errors
def tick(now: Optional[str] = typer.Option(None, help="Run what is due at this RFC 3339 time (default: now)."),
         job: Optional[list[str]] = typer.Option(None, "--job", help="Run only this job, due or not (repeatable).")
         ) -> None:
    """Run all scheduled work due at that time (period close, invoices, pool expiry, alerts, notifications,
    schedule dispatch, edge sync; the nightly reconciliation when its time has come), then exit.

    It does not take the scheduler's lease: an operator's command runs whatever the scheduler is doing,
    and every job is idempotent, so running one while the scheduler runs it too is safe."""
    settings, billing, at = get_settings(), open_billing(), parse_now(now)
    with new_http_client() as http:
        jobs = registered_jobs(settings, billing, http)
        chosen = list(dict.fromkeys(job or ()))
        unknown = [name for name in chosen if name not in {j.name for j in jobs}]
        if unknown:
            fail(f"no job named {unknown[0]!r}; the jobs are: {', '.join(j.name for j in jobs)}")
        selected = [j for j in jobs if j.name in chosen] if chosen else jobs
        runs = run_due(billing, selected, at, new_holder("tick:"), manual=True, forced=chosen)
    ran = {run.job.name: run for run in runs}
    periods = ran.get("periods")
    if periods is not None and periods.ok:  # the line this command has always printed first
        s = periods.summary
        typer.echo(f"checked {s['accounts_checked']} accounts: closed {s['periods_closed']} periods, "
                   f"expired {s['pools_expired']} pools")
    for j in selected:
        run = ran.get(j.name)
        if run is None:
            upcoming = j.next_fire_after(at)
            typer.echo(f"{j.name}: not due" + (f" (next {iso(upcoming)})" if upcoming else ""))
        elif run.ok:
            typer.echo(f"{j.name}: ok {format_summary(run.summary)}".rstrip())
        else:
            typer.echo(f"{j.name}: failed: {run.error}")
    failed = [run.job.name for run in runs if not run.ok]
    if failed:
        fail(f"{len(failed)} job{'s' * (len(failed) != 1)} failed: {', '.join(failed)}")


@admin.command("make-operator")
@one_line_errors
def make_operator(email: str, revoke: bool = typer.Option(False, "--revoke", help="Take the flag away.")) -> None:
    """Let the user with this email see the operator view (/admin), or no longer with --revoke."""
    user_id = set_operator(open_billing(), email, not revoke)
    typer.echo(f"{email.strip().lower()} ({user_id}) {'is no longer' if revoke else 'is now'} an operator")


@admin.command("rotate-secrets")
@one_line_errors
def rotate_secrets() -> None:
    """Re-seal every stored secret with the first key of TOLLGATE_ENCRYPTION_KEYS (safe to run again)."""
    billing = open_billing()
    # The bar goes to stderr so stdout carries only the summary line, for scripts.
    with Progress(console=Console(stderr=True)) as progress:
        task = progress.add_task("Re-sealing secrets", total=None)
        result = reseal_all(billing, on_total=lambda total: progress.update(task, total=total),
                            on_progress=lambda done: progress.advance(task, done))
    typer.echo(f"re-sealed {result.resealed} of {result.total} secrets with key {billing.keyring.primary_id}; "
               f"{result.current} already current, {len(result.failed)} failed")
    if result.failed:
        fail(f"cannot open {len(result.failed)} of {result.total} secrets with any key in "
             f"TOLLGATE_ENCRYPTION_KEYS (first: {result.failed[0]}); keep the old key in the ring (`s0:derived` "
             "for an install that began without one, docs/security.md) and run again")
