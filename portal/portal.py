"""Builds the Reflex app: pages, the HTTP API on one server, and the lifespan tasks (live updates, the scheduler)."""

from . import live, routes, scheduling
from .api.app import create_api
from .pages.device import DeviceState, device
from .pages import admin, billing, dashboard, runs, schedules, usage
from .pages import project_detail, projects
from .pages import settings as settings_page  # not portal.settings, the configuration
from .pages.sign_in import SignInState, sign_in
from .pages.sign_up import SignUpState, sign_up
from .payments import top_up_lifespan
from .runtime import get_billing
from .security.reflex_app import SecureApp
from .settings import settings_or_exit
from .state import SessionState

app_settings = settings_or_exit()  # first: bad settings are one line, not a traceback
app = SecureApp(api_transformer=create_api(get_billing(), app_settings))
live.install(app)
app.register_lifespan_task(scheduling.scheduler_lifespan)  # off with TOLLGATE_SCHEDULER_ENABLED=false
app.register_lifespan_task(top_up_lifespan)  # auto top-up within moments of the usage that needs it
app.add_page(dashboard.dashboard, route=routes.HOME, title="Dashboard · Tollgate", on_load=dashboard.ON_LOAD)
app.add_page(sign_in, route=routes.SIGN_IN, title="Sign in · Tollgate", on_load=SignInState.load)
app.add_page(sign_up, route=routes.SIGN_UP, title="Create an account · Tollgate", on_load=SignUpState.load)
app.add_page(device, route=routes.DEVICE, title="Approve a CLI sign-in · Tollgate", on_load=DeviceState.load)
# The dynamic route before the static one that shares its prefix, as Reflex asks.
app.add_page(project_detail.project_detail_page, route=routes.PROJECT, title="Project · Tollgate",
             on_load=project_detail.ON_LOAD)
app.add_page(projects.projects_page, route=routes.PROJECTS, title="Projects · Tollgate", on_load=projects.ON_LOAD)
app.add_page(settings_page.settings_page, route=routes.SETTINGS, title="Settings · Tollgate",
             on_load=settings_page.ON_LOAD)
app.add_page(runs.runs, route=routes.RUNS, title="Runs · Tollgate", on_load=runs.ON_LOAD)
app.add_page(schedules.schedules, route=routes.SCHEDULES, title="Schedules · Tollgate", on_load=schedules.ON_LOAD)
app.add_page(usage.usage, route=routes.USAGE, title="Usage · Tollgate", on_load=usage.ON_LOAD)
app.add_page(billing.billing, route=routes.BILLING, title="Billing · Tollgate", on_load=billing.ON_LOAD)
app.add_page(admin.admin_page, route=routes.ADMIN, title="Admin · Tollgate", on_load=admin.ON_LOAD)

# Everything built so far (modules, pages, the API and its models) lives as long as the process: out of the
# collector's scans, and young collections less often (portal/heap.py; docs/benchmarks.md).
from .heap import settle  # noqa: E402

settle()
