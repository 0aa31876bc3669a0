"""Projects of an account."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select

from ..db.engine import lock_account, write_session
from ..db.models import Project
from ..errors import Conflict, Invalid, NotFound
from ..ids import new_id
from .context import Billing
from .journal import Journal


def create_project(billing: Billing, account_id: str, *, name: str, now: datetime) -> Project:
    """A new project, refused with a clear error once the plan's project limit is reached."""
    name = name.strip()
    if not 1 <= len(name) <= 100:
        raise Invalid("A project name has 1 to 100 characters.", code="invalid_name")
    with write_session(billing.engine) as session:
        account = lock_account(session, account_id)
        if account is None:
            raise NotFound("No such account.")
        limit = billing.catalog.plan(account.plan).max_projects
        count = session.execute(select(func.count()).select_from(Project).where(
            Project.account_id == account_id, Project.deleted_at.is_(None))).scalar_one()
        if limit is not None and count >= limit:
            raise Conflict(f"The {account.plan} plan allows {limit} projects; delete one or upgrade.",
                           code="project_limit_reached")
        project = Project(id=new_id("prj"), account_id=account_id, name=name, created_at=now)
        session.add(project)
        journal = Journal(account_id, now)
        journal.activity("project_created", project.id, f"Project {name} created.")
        journal.flush(session)
        return project
