"""Customer commands that read the account over HTTP (`tollgate whoami|usage|runs|keys`), with the key
that `tollgate login` (customer_auth) stored; `register` adds them and login/logout to the CLI."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from billing_core.keys import masked
from billing_core.money import format_usd

from .customer_auth import URL_OPTION, CliError, login, logout, one_line, show_key, signed_in


def compute(ms: int) -> str:
    """Milliseconds as a person reads them: 2 h 05 min, 3 min 07 s, 12.3 s."""
    if ms >= 3_600_000:
        return f"{ms // 3_600_000} h {ms % 3_600_000 // 60_000:02d} min"
    if ms >= 60_000:
        return f"{ms // 60_000} min {ms % 60_000 // 1000:02d} s"
    return "0 s" if ms == 0 else f"{ms // 1000}.{ms % 1000 // 100} s"


def when(value: object, missing: str = "-") -> str:
    return value.replace("T", " ")[:16] if isinstance(value, str) else missing


def day(value: str | None, option: str, default: date) -> date:
    try:
        return default if value is None else date.fromisoformat(value)
    except ValueError:
        raise CliError(f"{option} must be a date such as 2026-01-31, got {value!r}") from None


def show(title: str, columns: str, rows: list[list[str] | None], right: int = 0) -> None:
    """A rich table; None starts a new section; the last `right` columns (numbers) align right."""
    names = columns.split("|")
    table = Table(title=title)
    for i, name in enumerate(names):
        table.add_column(name, justify="right" if i >= len(names) - right else "left", no_wrap=name == "Key")
    for row in rows:
        if row is None:
            table.add_section()
        else:
            table.add_row(*(Text(cell) for cell in row))  # Text: names like "[/x]" are not rich markup
    Console().print(table)


@one_line
def whoami(url: Optional[str] = URL_OPTION) -> None:
    """Show the account the stored key belongs to."""
    _, api = signed_in(url)
    account = api.get("/api/v1/account")
    typer.echo(f"{account.get('email')}\n  account  {account.get('id')}\n  plan     {account.get('plan')}\n"
               f"  status   {account.get('status')}\n  server   {api.url}")


@one_line
def usage(url: Optional[str] = URL_OPTION,
          start: Optional[str] = typer.Option(None, "--from", help="First day, YYYY-MM-DD (default: 6 days ago)."),
          end: Optional[str] = typer.Option(None, "--to", help="Last day, inclusive (default: today, UTC)."),
          group_by: str = typer.Option("day", "--group-by", help="day, project, agent or model.")) -> None:
    """Compute, tokens and cost per day, project, agent or model."""
    if group_by not in ("day", "project", "agent", "model"):
        raise CliError(f"--group-by must be day, project, agent or model, got {group_by!r}")
    last = day(end, "--to", datetime.now(timezone.utc).date())
    first = day(start, "--from", last - timedelta(days=6))
    _, api = signed_in(url)
    found = api.get("/api/v1/usage/summary", **{"from": str(first), "to": str(last), "group_by": group_by})
    rows, totals = [], [0, 0, 0, 0]

    def line(label: str, ms: int, tokens_in: int, tokens_out: int, micros: int) -> list[str]:
        return [label, compute(ms), f"{tokens_in:,}", f"{tokens_out:,}", format_usd(micros)]

    for row in found.get("data") or []:
        values = [int(row.get(f) or 0) for f in ("compute_ms", "input_tokens", "output_tokens", "cost_micros")]
        totals = [t + v for t, v in zip(totals, values)]
        rows.append(line(str(row.get("key") or "-"), *values))
    show(f"Usage {first} to {last}", f"{group_by.capitalize()}|Compute|Input tokens|Output tokens|Cost",
         [*rows, None, line("Total", *totals)], right=4)


@one_line
def runs(url: Optional[str] = URL_OPTION,
         limit: int = typer.Option(20, "--limit", min=1, max=500, help="How many runs, newest first."),
         status: Optional[str] = typer.Option(None, "--status", help="queued, running, succeeded, failed, cancelled."),
         project: Optional[str] = typer.Option(None, "--project", help="Only this project's runs (its id).")) -> None:
    """The account's recent agent runs."""
    if status is not None and status not in ("queued", "running", "succeeded", "failed", "cancelled"):
        raise CliError(f"--status must be queued, running, succeeded, failed or cancelled, got {status!r}")
    _, api = signed_in(url)
    found = api.get("/api/v1/runs", limit=limit, status=status, project_id=project).get("data") or []
    if not found:
        typer.echo("No runs.")
        return
    show("Runs", "Run|Project|Agent|Status|Trigger|Started|Duration|Cost", [
        [str(r.get("id")), str(r.get("project_id")), str(r.get("agent") or "-"), str(r.get("status")),
         str(r.get("trigger")), when(r.get("started_at")), compute(int(r.get("duration_ms") or 0)),
         format_usd(int(r.get("cost_micros") or 0))] for r in found], right=2)


@one_line
def keys(url: Optional[str] = URL_OPTION) -> None:
    """The account's keys (never their secrets)."""
    creds, api = signed_in(url)
    rows = []
    for key in api.get("/api/v1/keys", limit=500).get("data") or []:
        shown = masked(str(key.get("prefix")), str(key.get("last4")))
        state = "revoked" if key.get("revoked_at") else "active"
        rows.append([str(key.get("name")), shown, when(key.get("created_at")), when(key.get("last_used_at"), "never"),
                     state + (" (this CLI)" if shown == show_key(creds.api_key) else "")])
    show("Account keys", "Name|Key|Created|Last used|Status", rows)


def register(app: typer.Typer) -> None:
    for command in (login, logout, whoami, usage, runs, keys):
        app.command(command.__name__)(command)
