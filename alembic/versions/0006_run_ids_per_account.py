"""runs: the primary key is (account_id, id), so a run id is unique within its account only

The edge names its runs. With the id alone as the key, one account's `edge-run-x` made another account's
POST of the same id answer 409, which also told the second account that the first one had it. Nothing
references runs by foreign key (usage events carry the run id beside their account id), so only the key
changes: no new column, and every read by (account, id) uses the key's index.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-08 10:00:00
"""
from typing import Sequence, Union

import sqlalchemy as sa
import sqlmodel
from alembic import op

import billing_core.db.types


revision: str = '0006'
down_revision: Union[str, None] = '0005'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

PK = "runs_pkey"  # PostgreSQL's own name for the old key, so both keys carry the same name


def _runs(key: list[str]) -> sa.Table:
    """The runs table as 0002 made it, with `key` as its primary key (what SQLite's batch mode copies into)."""
    text = sqlmodel.sql.sqltypes.AutoString
    return sa.Table(
        "runs", sa.MetaData(),
        sa.Column("id", text(length=128), nullable=False),
        sa.Column("account_id", text(length=40), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("project_id", text(length=40), sa.ForeignKey("projects.id"), nullable=False),
        sa.Column("agent", text(length=100), nullable=False),
        sa.Column("status", text(length=16), nullable=False),
        sa.Column("trigger", text(length=16), nullable=False),
        sa.Column("schedule_id", text(length=40), nullable=True),
        sa.Column("error", text(length=500), nullable=True),
        sa.Column("started_at", billing_core.db.types.UTCDateTime(), nullable=True),
        sa.Column("finished_at", billing_core.db.types.UTCDateTime(), nullable=True),
        sa.Column("created_at", billing_core.db.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint(*key, name=PK),
        sa.Index("ix_runs_account_created", "account_id", "created_at", "id"),
    )


def _replace_primary_key(key: list[str]) -> None:
    if op.get_bind().dialect.name == "sqlite":
        # SQLite cannot alter a key: batch mode copies the rows into a table declared with the new one.
        with op.batch_alter_table("runs", copy_from=_runs(key), recreate="always"):
            pass
        return
    op.drop_constraint(PK, "runs", type_="primary")
    op.create_primary_key(PK, "runs", key)


def upgrade() -> None:
    _replace_primary_key(["account_id", "id"])


def downgrade() -> None:
    shared = op.get_bind().execute(sa.text(
        "SELECT id FROM runs GROUP BY id HAVING count(*) > 1 ORDER BY id LIMIT 5")).scalars().all()
    if shared:
        raise RuntimeError(f"cannot go below 0006: run ids used by more than one account ({', '.join(shared)}); "
                           "rename or delete those runs first")
    _replace_primary_key(["id"])
