"""/projects/[project_id]: one project's HMAC key, provider keys, compute over 30 days and latest runs."""

from __future__ import annotations

import logging
from datetime import datetime, timezone

import plotly.graph_objects as go
import reflex as rx

from billing_core.errors import Invalid, NotFound, ServiceError
from billing_core.services.project_usage import ProjectDetail, project_detail
from billing_core.services.projects import HMAC_GRACE, reveal_hmac_key, rotate_hmac_key
from billing_core.services.provider_keys import (PROVIDER_NAMES, PROVIDERS, check_key, delete_provider_key,
                                                 set_provider_key)

from .. import live, routes
from ..components.compute_bars import build_compute_figure
from ..components.data_table import WIDE_ONLY, cell, data_table, phone_only
from ..components.format import duration, number, relative_time, short_date, timestamp, usd, usd_cents
from ..components.panel import field_text, panel, stat
from ..components.project_keys import hmac_card, provider_key_row
from ..components.secret_field import copy_button
from ..components.status_badge import run_status_badge
from ..components.shell import empty_state, error_banner, page_shell
from ..runtime import get_billing
from ..state import UNEXPECTED, SessionState

log = logging.getLogger("portal.pages.project_detail")


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def project_id_in(path: str) -> str:
    """The [project_id] segment of /projects/[project_id] ("" for any other path); the service checks it."""
    head, _, tail = (path or "").rstrip("/").rpartition("/")
    return tail[:64] if head == routes.PROJECTS else ""


def hmac_masked(hmac_key: dict | None) -> str:
    return f"{hmac_key['prefix']}{'•' * 10}{hmac_key['last4']}" if hmac_key else "No key yet: rotate to issue one"


def hmac_note(hmac_key: dict | None, now: datetime) -> str:
    if not hmac_key:
        return ""
    until = _parse(hmac_key.get("previous_valid_until"))
    if until is not None and until > now:
        return f"Rotated {relative_time(_parse(hmac_key['rotated_at']), now)}; the previous key works until " \
               f"{timestamp(until)}."
    rotated = _parse(hmac_key.get("rotated_at"))
    return f"Last rotated {relative_time(rotated, now)}." if rotated else "Never rotated."


def run_row(run, now: datetime) -> dict[str, str]:
    started = _parse(run.started_at) or _parse(run.created_at)
    return {"id": run.id, "agent": run.agent, "status": run.status, "trigger": run.trigger,
            "started": relative_time(started, now), "started_exact": timestamp(started),
            "duration": duration(run.duration_ms), "cost": usd(run.cost_micros)}


def key_problem(provider: str, key: str) -> str:
    if key == "" or provider not in PROVIDERS:
        return ""
    try:
        check_key(provider, key.strip())
    except ServiceError as exc:
        return field_text(exc.message, "key")
    return ""


class ProjectState(SessionState):
    status: str = "loading"  # loading | found | missing
    error: str = ""
    project_name: str = ""  # not `name`: SessionState.name is the signed-in user's
    shown_id: str = ""
    created: str = ""
    runs_today: str = ""
    compute: str = ""
    spend: str = ""
    period_text: str = ""
    has_hmac: bool = False
    hmac_masked: str = ""
    hmac_secret: str = ""  # the key in clear while revealed; "" when hidden
    hmac_note: str = ""
    grace_until: str = ""  # shown in the rotate confirmation, set when it opens
    provider_masked: dict[str, str] = {}
    provider_updated: dict[str, str] = {}
    editing: str = ""  # the provider whose key form is open
    key_input: str = ""
    key_error: str = ""
    days: list[str] = []  # 30 days
    compute_ms: list[int] = []
    cost_micros: list[int] = []
    total_30d: str = ""
    runs: list[dict[str, str]] = []  # the latest 20
    _project_id: str = ""

    @rx.var
    def figure(self) -> go.Figure:
        return build_compute_figure(self.days, self.compute_ms, self.cost_micros)

    @rx.var
    def hmac_shown(self) -> str:
        return self.hmac_secret or self.hmac_masked

    @rx.var
    def revealed(self) -> bool:
        return self.hmac_secret != ""

    @rx.var
    def key_problem(self) -> str:
        return key_problem(self.editing, self.key_input)

    def _show(self, found: ProjectDetail, now: datetime) -> None:
        p, n = found.project, found.numbers
        self.status, self.error, self._project_id = "found", "", p.id
        self.project_name, self.shown_id, self.created = p.name, p.id, short_date(_parse(p.created_at))
        self.runs_today, self.compute = number(n.runs_today), duration(n.compute_ms)
        self.spend = usd_cents(n.cost_micros)
        self.period_text = f"this period, since {short_date(found.period_start)}"
        masked = hmac_masked(p.hmac_key)
        if masked != self.hmac_masked:
            self.hmac_secret = ""  # rotated elsewhere: what is revealed is no longer the current key
        self.has_hmac, self.hmac_masked, self.hmac_note = p.hmac_key is not None, masked, hmac_note(p.hmac_key, now)
        self.provider_masked = {k["provider"]: k["masked"] for k in p.provider_keys}
        self.provider_updated = {k["provider"]: relative_time(_parse(k["updated_at"]), now) for k in p.provider_keys}
        self.days = [d.day.isoformat() for d in found.daily]
        self.compute_ms = [d.compute_ms for d in found.daily]
        self.cost_micros = [d.cost_micros for d in found.daily]
        self.total_30d = f"{duration(found.series_compute_ms)} · {usd_cents(found.series_cost_micros)} charged"
        self.runs = [run_row(r, now) for r in found.runs]

    def _fetch(self, account_id: str) -> None:
        now = _utcnow()
        try:
            self._show(project_detail(get_billing(), account_id, self._project_id, now=now), now)
        except NotFound:
            self.status, self._project_id, self.project_name = "missing", "", ""
        except ServiceError as exc:
            self.error = exc.message
        except Exception:
            log.exception("loading a project failed")
            self.error = UNEXPECTED

    @rx.event
    def load(self):
        user = self._signed_in_user()
        if user is None:
            yield self._sign_in_redirect()
            return
        self.status, self.error, self.hmac_secret, self.editing, self.key_input = "loading", "", "", "", ""
        self._project_id = project_id_in(self.router.url.path)
        yield  # the previous project's numbers leave the screen before this one's are read
        self._fetch(user.account_id)

    @rx.event
    def refresh(self):
        """Re-read the project on screen (the live-update hook); a revealed key stays revealed."""
        user = self._signed_in_user()
        if user is not None and self._project_id:
            self._fetch(user.account_id)

    def _act(self, action):
        # A project deleted in another tab: show the page as it now is, with the message.
        return super()._act(action, what="a project action", on_not_found=self._fetch)

    @rx.event
    def toggle_reveal(self):
        if self.hmac_secret:
            self.hmac_secret = ""
            return

        def reveal(account_id):
            self.hmac_secret = reveal_hmac_key(get_billing(), account_id, self._project_id)
        return self._act(reveal)

    @rx.event
    def copy_hmac(self):
        def copy(account_id):
            secret = self.hmac_secret or reveal_hmac_key(get_billing(), account_id, self._project_id)
            return [rx.set_clipboard(secret), rx.toast.success("HMAC key copied")]
        return self._act(copy)

    @rx.event
    def prepare_rotate(self):
        self.grace_until = timestamp(_utcnow() + HMAC_GRACE)

    @rx.event
    def rotate(self):
        def rotate(account_id):
            rotated = rotate_hmac_key(get_billing(), account_id, self._project_id, now=_utcnow())
            self._fetch(account_id)
            self.hmac_secret = rotated.secret
            until = _parse(rotated.hmac_key.get("previous_valid_until"))
            note = f"the previous one works until {timestamp(until)}" if until else "there was no previous key"
            return rx.toast.success(f"New HMAC key issued; {note}.")
        return self._act(rotate)

    @rx.event
    def edit_key(self, provider: str):
        self.editing = provider if provider in PROVIDERS else ""
        self.key_input = self.key_error = ""

    @rx.event
    def set_key_input(self, value: str):
        self.key_input, self.key_error = value[:400], ""

    @rx.event
    def save_key(self, form_data: dict):
        provider, key = self.editing, self.key_input.strip()

        def save(account_id):
            try:
                view = set_provider_key(get_billing(), account_id, self._project_id, provider, key=key, now=_utcnow())
            except Invalid as exc:  # a bad key is said beside the field; anything else is a toast (_act)
                self.key_error = field_text(exc.message, "key")
                return None
            self.editing = self.key_input = ""
            self._fetch(account_id)
            return rx.toast.success(f"{PROVIDER_NAMES[provider]} key {view['masked']} saved")
        return self._act(save)

    @rx.event
    def delete_key(self, provider: str):
        def remove(account_id):
            delete_provider_key(get_billing(), account_id, self._project_id, provider, now=_utcnow())
            self._fetch(account_id)
            return rx.toast.success(f"{PROVIDER_NAMES.get(provider, provider)} key removed")
        return self._act(remove)


# -- the page -------------------------------------------------------------------------------------
def _provider(provider: str) -> rx.Component:
    s = ProjectState
    return provider_key_row(
        provider, PROVIDER_NAMES[provider], masked=s.provider_masked[provider], updated=s.provider_updated[provider],
        has_key=s.provider_masked.contains(provider), editing=s.editing == provider, value=s.key_input,
        problem=s.key_problem, error=s.key_error, on_edit=s.edit_key(provider), on_cancel=s.edit_key(""),
        on_change=s.set_key_input, on_submit=s.save_key, on_remove=s.delete_key(provider))


def _keys() -> rx.Component:
    s = ProjectState
    hmac = hmac_card(shown=s.hmac_shown, revealed=s.revealed, has_key=s.has_hmac, note=s.hmac_note,
                     grace_until=s.grace_until, on_toggle=s.toggle_reveal, on_copy=s.copy_hmac,
                     on_prepare_rotate=s.prepare_rotate, on_rotate=s.rotate)
    providers = panel("Provider keys", rx.text(
        "Bring your own Anthropic or OpenAI key: tokens through it cost no credit. Keys are encrypted at rest and "
        "never shown again in full.", size="2", color_scheme="gray"), *[_provider(p) for p in PROVIDERS],
        id="provider-keys")
    return rx.grid(hmac, providers, columns=rx.breakpoints(initial="1", lg="2"), spacing="4", width="100%")


def _chart() -> rx.Component:
    s = ProjectState
    return panel("Compute, last 30 days", rx.plotly(data=s.figure, use_resize_handler=True, width="100%",
                                                       height="240px", config={"displayModeBar": False}),
                    hint=s.total_30d, id="usage-chart")


RUN_COLUMNS = (("Status", "left", False), ("Agent", "left", True), ("Started", "left", False),
               ("Duration", "right", True), ("Cost", "right", False))


def _run(row: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.cell(run_status_badge(row["status"]), display=WIDE_ONLY),
        rx.table.cell(rx.text(row["agent"], size="2", weight="medium"),
                      rx.text(row["id"], size="1", color_scheme="gray", white_space="nowrap", overflow="hidden",
                              text_overflow="ellipsis", max_width=["11rem", "16rem", "18rem"], title=row["id"]),
                      phone_only(rx.box(run_status_badge(row["status"]), margin_top="var(--space-1)"))),
        cell(row["started"], title=row["started_exact"], muted=True, wide_only=True),
        cell(row["duration"], align="right"),
        cell(row["cost"], align="right", wide_only=True),
        class_name="run-row")


def _runs() -> rx.Component:
    s = ProjectState
    return panel("Latest runs", rx.box(data_table(
        RUN_COLUMNS, s.runs, _run, loading=s.status == "loading", table_id="project-runs",
        empty=empty_state("play", "No runs yet", "Runs of this project appear here when the edge reports them.")),
        overflow_x="auto", width="100%"), hint=rx.link("All runs", href=routes.RUNS, size="1"), id="runs")


def _found() -> rx.Component:
    s = ProjectState
    return rx.vstack(
        rx.hstack(rx.code(s.shown_id, variant="ghost", size="1", id="project-id"), copy_button(s.shown_id,
                  label="Copy project id"), rx.text("· created ", s.created, size="1", color_scheme="gray"),
                  align="center", spacing="2", wrap="wrap"),
        rx.grid(stat("Runs today", s.runs_today, id="stat-runs-today"), stat("Compute", s.compute, id="stat-compute"),
                stat("Spend", s.spend, id="stat-spend"), columns="3", spacing="4", width="100%", max_width="36rem"),
        rx.text(s.period_text, size="1", color_scheme="gray"),
        _keys(),
        _chart(), _runs(), spacing="4", width="100%")


def _missing() -> rx.Component:
    return rx.vstack(empty_state("search-x", "Project not found",
                                 "No project of yours has this id. It may have been deleted."),
                     rx.link("Back to projects", href=routes.PROJECTS), spacing="3", width="100%", id="not-found")


def project_detail_page() -> rx.Component:
    s = ProjectState
    return page_shell(
        rx.cond(s.status == "found", s.project_name, "Project"),
        rx.link(rx.hstack(rx.icon("arrow-left", size=14), rx.text("Projects", size="2"), align="center",
                          spacing="1"), href=routes.PROJECTS, color_scheme="gray"),
        error_banner(s.error),
        rx.match(s.status, ("found", _found()), ("missing", _missing()),
                 rx.center(rx.spinner(size="3"), min_height="30vh")),
        signed_in=SessionState.signed_in, display_name=SessionState.display_name)


ON_LOAD = [ProjectState.load, live.LiveState.watch]
live.register_refresh(routes.PROJECT, ProjectState.refresh)
