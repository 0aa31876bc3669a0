"""/admin: the operator view of scheduled work — the scheduler's leader and last tick, each job's last run,
and per edge target its backlog, lag, last success and parked items.

Only users flagged as operators (`tollgate admin make-operator EMAIL`) see it; anyone else signed in gets
the same "page not found" as for a path that does not exist, so the page does not announce itself.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone

import reflex as rx

from billing_core.scheduler.view import OperatorView, operator_view

from ..components.data_table import cell, data_table, no_rows
from ..components.format import number, relative_time, timestamp
from ..components.panel import panel, stat
from ..components.shell import empty_state, error_banner, page_shell
from ..components.status_badge import plain_badge
from ..runtime import get_billing
from ..scheduling import registered_jobs, target_names
from ..settings import get_settings
from ..state import SessionState

log = logging.getLogger("portal.pages.admin")
FAILED_TO_LOAD = "The operator view could not be loaded just now. Try again in a moment."
SUMMARY_SHOWN_CHARS = 160
JOB_COLUMNS = (("Job", "left", True), ("Schedule", "left", False), ("Last run", "left", True),
               ("Last success", "left", False), ("Runs", "right", False), ("Result", "left", True),
               ("Instance", "left", False))
TARGET_COLUMNS = (("Target", "left", True), ("Backlog", "right", True), ("Lag", "right", True),
                  ("Last success", "left", True), ("Failing", "right", False), ("Parked", "right", True),
                  ("Last reconciled", "left", False), ("Last error", "left", False))
PARKED_COLUMNS = (("Target", "left", True), ("Item", "left", True), ("Attempts", "right", False),
                  ("Parked", "left", True), ("Last error", "left", False))


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _time(value: str | datetime | None, now: datetime) -> tuple[str, str]:
    """(relative, exact) texts for a time given as a datetime or an RFC 3339 string."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return relative_time(value, now), timestamp(value)


def _near(value: datetime | None, now: datetime) -> tuple[str, str]:
    """Like _time, to the second when it is within two minutes of now (lease expiry, last tick)."""
    if value is None:
        return _time(None, now)
    seconds = round((value - now).total_seconds())
    if abs(seconds) >= 120:
        return _time(value, now)
    text = "now" if seconds == 0 else (f"in {seconds} s" if seconds > 0 else f"{-seconds} s ago")
    return text, timestamp(value)


def _lag(seconds: float | int | None) -> str:
    if not seconds:
        return "0 s"
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _summary_text(summary: dict) -> str:
    text = " ".join(f"{k}={v if isinstance(v, (int, float, str)) else json.dumps(v, default=str)}"
                    for k, v in summary.items())
    return text if len(text) <= SUMMARY_SHOWN_CHARS else text[: SUMMARY_SHOWN_CHARS - 1] + "…"


def present(view: OperatorView) -> dict:
    """The view as display strings, for the page's state (pure: tested without a browser)."""
    now, s = view.now, view.scheduler
    tick, tick_exact = _near(s.last_tick_at, now)
    expires, expires_exact = _near(s.lease_expires_at, now)
    scheduler = {"leader": s.leader or "nobody", "leading": "yes" if s.leader else "",
                 "last_holder": s.holder or "—", "lease_expires": expires, "lease_expires_exact": expires_exact,
                 "last_tick": tick, "last_tick_exact": tick_exact, "as_of": timestamp(now)}
    jobs = []
    for j in view.jobs:
        started, started_exact = _time(j.last_started_at, now)
        ok, ok_exact = _time(j.last_ok_at, now)
        state = "never run" if j.last_started_at is None else (
            "failed" if j.last_error else ("running" if j.last_finished_at is None
                                           or j.last_finished_at < j.last_started_at else "ok"))
        jobs.append({"name": j.name, "schedule": j.schedule or "not registered", "last_run": started,
                     "last_run_exact": started_exact, "last_ok": ok, "last_ok_exact": ok_exact,
                     "runs": number(j.runs), "state": state,
                     "result": j.last_error or _summary_text(j.summary) or "—", "holder": j.holder or "—"})
    targets = []
    for t in view.targets:
        success, success_exact = _time(t.get("last_success_at"), now)
        reconciled, reconciled_exact = _time(t.get("last_reconciled_at"), now)
        targets.append({"name": str(t.get("name", "")), "backlog": number(t.get("backlog") or 0),
                        "lag": _lag(t.get("lag_s")), "last_success": success, "last_success_exact": success_exact,
                        "failing": number(t.get("failing") or 0), "parked": number(t.get("parked") or 0),
                        "parked_any": "yes" if t.get("parked") else "",
                        "last_reconciled": reconciled, "last_reconciled_exact": reconciled_exact,
                        "last_error": str(t.get("last_error") or "—")})
    parked = []
    for p in view.parked:
        when, when_exact = _time(p.parked_at, now)
        parked.append({"target": p.target, "item": p.item, "attempts": number(p.attempts), "parked": when,
                       "parked_exact": when_exact, "last_error": p.last_error or "—"})
    return {"scheduler": scheduler, "jobs": jobs, "targets": targets, "parked": parked,
            "sync_error": view.sync_error or ""}


class AdminState(SessionState):
    checked: bool = False  # the operator check has run for this load
    allowed: bool = False
    loading: bool = False
    error: str = ""
    scheduler: dict[str, str] = {}
    jobs: list[dict[str, str]] = []
    targets: list[dict[str, str]] = []
    parked: list[dict[str, str]] = []
    parked_total: int = 0
    sync_error: str = ""

    def _fetch(self) -> None:
        settings, billing = get_settings(), get_billing()
        try:
            view = operator_view(billing, _utcnow(), registered_jobs(settings, billing), target_names(settings))
        except Exception:
            log.exception("reading the operator view failed")
            self.error = FAILED_TO_LOAD
            return
        shown = present(view)
        self.error = ""
        self.scheduler, self.jobs, self.targets = shown["scheduler"], shown["jobs"], shown["targets"]
        self.parked, self.sync_error = shown["parked"], shown["sync_error"]
        self.parked_total = sum(int(t.get("parked") or 0) for t in view.targets)

    @rx.event
    def load(self):
        """on_load: signed in, then an operator, re-checked against the database every time."""
        user = self._signed_in_user()
        if user is None:
            return self._sign_in_redirect()
        self.allowed, self.checked = bool(user.is_operator), True
        if self.allowed:
            self._fetch()

    @rx.event
    def refresh(self):
        user = self._signed_in_user()
        if user is None:
            return self._sign_in_redirect()
        self.allowed = bool(user.is_operator)
        if self.allowed:
            self._fetch()


ON_LOAD = [AdminState.load]


# -- the page -------------------------------------------------------------------------------------------
def _with_exact(text: rx.Var, exact: rx.Var, **props) -> rx.Component:
    return rx.text(text, title=exact, size="2", white_space="nowrap", **props)


def _scheduler_panel() -> rx.Component:
    s = AdminState.scheduler
    leader = rx.hstack(rx.cond(s["leading"] != "", plain_badge("leading", "grass"), plain_badge("no leader", "red")),
                       rx.text(s["leader"], size="2", font_family="var(--code-font-family)", id="admin-leader",
                               word_break="break-all"), align="center", spacing="2", wrap="wrap")
    return panel(
        "Scheduler", leader,
        rx.flex(stat("Last tick", s["last_tick"], id="admin-last-tick"),
                stat("Lease expires", s["lease_expires"], id="admin-lease-expires"),
                rx.cond(s["leading"] == "", stat("Last leader", s["last_holder"], size="2")), spacing="6",
                wrap="wrap"),
        hint=rx.text("As of ", s["as_of"], size="1", color_scheme="gray"), id="admin-scheduler")


def _job_row(row: rx.Var) -> rx.Component:
    color = rx.match(row["state"], ("ok", "grass"), ("failed", "red"), ("running", "blue"), "gray")
    return rx.table.row(
        rx.table.cell(rx.hstack(rx.badge(row["state"], color_scheme=color, variant="soft", radius="full"),
                                rx.text(row["name"], size="2", weight="medium"), spacing="2", align="center")),
        cell(row["schedule"], muted=True, wide_only=True),
        cell(row["last_run"], title=row["last_run_exact"]),
        cell(row["last_ok"], title=row["last_ok_exact"], wide_only=True),
        cell(row["runs"], align="right", wide_only=True),
        rx.table.cell(rx.text(row["result"], size="1", font_family="var(--code-font-family)",
                              color_scheme=rx.cond(row["state"] == "failed", "red", "gray"), max_width="28rem",
                              word_break="break-word")),
        cell(row["holder"], mono=True, muted=True, wide_only=True),
        custom_attrs={"data-job": row["name"]})


def _target_row(row: rx.Var) -> rx.Component:
    return rx.table.row(
        cell(row["name"], mono=True),
        cell(row["backlog"], align="right"),
        cell(row["lag"], align="right"),
        cell(row["last_success"], title=row["last_success_exact"]),
        cell(row["failing"], align="right", wide_only=True),
        rx.table.cell(rx.cond(row["parked_any"] != "", plain_badge(row["parked"], "red"),
                              rx.text(row["parked"], size="2")), text_align="right"),
        cell(row["last_reconciled"], title=row["last_reconciled_exact"], wide_only=True),
        cell(row["last_error"], muted=True, wide_only=True),
        custom_attrs={"data-target": row["name"]})


def _parked_row(row: rx.Var) -> rx.Component:
    return rx.table.row(
        cell(row["target"], mono=True),
        rx.table.cell(rx.text(row["item"], size="1", font_family="var(--code-font-family)", word_break="break-all")),
        cell(row["attempts"], align="right", wide_only=True),
        cell(row["parked"], title=row["parked_exact"]),
        cell(row["last_error"], muted=True, wide_only=True))


def _body() -> rx.Component:
    a = AdminState
    parked_hint = rx.cond(a.parked_total > a.parked.length(),
                          rx.text("Oldest shown: ", a.parked.length(), " of ", a.parked_total, size="1",
                                  color_scheme="gray"), "")
    return rx.vstack(
        error_banner(a.error),
        _scheduler_panel(),
        panel("Jobs", data_table(JOB_COLUMNS, a.jobs, _job_row, loading=a.loading, table_id="admin-jobs",
                                 empty=no_rows("No jobs", "The scheduler has no jobs configured.", "timer")),
              hint="Run by the leader; tollgate admin tick runs what is due at once."),
        panel("Edge targets",
              rx.cond(a.sync_error != "", rx.callout(a.sync_error, icon="triangle_alert", color_scheme="amber",
                                                     width="100%")),
              data_table(TARGET_COLUMNS, a.targets, _target_row, loading=a.loading, table_id="admin-targets",
                         empty=no_rows("No edge targets", "Set TOLLGATE_SYNC_TARGETS to sync to the edge.",
                                       "radio-tower")),
              hint="Backlog: changes not yet delivered; lag: the oldest one's age."),
        panel("Parked items",
              data_table(PARKED_COLUMNS, a.parked, _parked_row, loading=a.loading, table_id="admin-parked",
                         empty=no_rows("Nothing parked", "Items a target kept refusing would appear here.",
                                       "circle-check")),
              hint=parked_hint),
        spacing="4", width="100%")


def _not_found() -> rx.Component:
    return empty_state("search-x", "Page not found", "There is nothing at this address.")


def admin_page() -> rx.Component:
    a = AdminState
    refresh = rx.cond(a.allowed, rx.button(rx.icon("refresh-cw", size=14), "Refresh", variant="soft", size="2",
                                           on_click=a.refresh, id="admin-refresh"))
    return page_shell(
        "Admin",
        rx.cond(a.checked, rx.cond(a.allowed, _body(), _not_found()),
                rx.center(rx.spinner(size="3"), min_height="30vh")),
        signed_in=SessionState.signed_in, display_name=SessionState.display_name, actions=refresh)
