"""Entry point of the `tollgate` console script."""

from __future__ import annotations

import typer

from billing_core.db.migrate import upgrade_to_head

from ..settings import get_settings
from . import billing_cmd, customer, payments_admin
from .admin import admin
from .common import one_line_errors
from .demo import demo
from .scheduler import scheduler

app = typer.Typer(help="Tollgate: usage metering and billing for agent clouds.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
app.add_typer(admin, name="admin")
payments_admin.register(admin)  # refund, payments, dispute
app.command("demo")(demo)
app.command("scheduler")(scheduler)
customer.register(app)  # login, logout, whoami, usage, runs, keys: over HTTP
app.command("billing")(billing_cmd.billing)


@app.command("migrate")
@one_line_errors
def migrate() -> None:
    """Apply database migrations up to the newest schema."""
    settings = get_settings()
    upgrade_to_head(settings.database_url)
    typer.echo("database is at the newest schema")


def main() -> None:
    app()
