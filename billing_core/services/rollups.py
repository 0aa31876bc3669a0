"""Daily rollups per account, day, project and meter (with agent and model), upserted in the same transaction."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timezone

from sqlalchemy import bindparam
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session

from ..db.models import DailyRollup
from ..db.raw import RawStatement

KEY_COLUMNS = ("account_id", "day", "project_id", "meter", "agent", "model")
SUM_COLUMNS = ("events", "compute_ms", "input_tokens", "output_tokens", "cost_micros", "list_cost_micros")


class RollupBatch:
    def __init__(self, account_id: str) -> None:
        self.account_id = account_id
        self.sums: dict[tuple, list[int]] = defaultdict(lambda: [0] * len(SUM_COLUMNS))

    def add(self, event, occurred: datetime, cost_micros: int, list_cost_micros: int) -> None:
        # Days are UTC days, whatever offset the reporter wrote the timestamp in.
        key = (occurred.astimezone(timezone.utc).date(), event.project_id, event.kind, event.agent or "",
               (event.model or "") if event.kind == "tokens" else "")
        s = self.sums[key]
        s[0] += 1
        s[1] += event.duration_ms if event.kind == "compute" else 0
        s[2] += event.input_tokens if event.kind == "tokens" else 0
        s[3] += event.output_tokens if event.kind == "tokens" else 0
        s[4] += cost_micros
        s[5] += list_cost_micros

    def write(self, db: Session | Connection) -> None:
        """Upsert the sums, in the caller's transaction (a Session or a Core Connection)."""
        if not self.sums:
            return
        rows = [dict(zip(KEY_COLUMNS, (self.account_id, *key)), **dict(zip(SUM_COLUMNS, sums)))
                for key, sums in self.sums.items()]
        conn = db if isinstance(db, Connection) else db.connection()
        _upsert(conn.dialect.name).execute(conn, rows)


_UPSERTS: dict[str, RawStatement] = {}


def _upsert(dialect_name: str) -> RawStatement:
    """INSERT ... ON CONFLICT DO UPDATE adding the sums; built once per dialect (building it costs more than
    running it for a small batch)."""
    stmt = _UPSERTS.get(dialect_name)
    if stmt is None:
        table = DailyRollup.__table__
        insert = sqlite_insert if dialect_name == "sqlite" else pg_insert
        stmt = insert(table)
        stmt = _UPSERTS[dialect_name] = RawStatement(stmt.on_conflict_do_update(
            index_elements=list(KEY_COLUMNS),
            set_={c: table.c[c] + stmt.excluded[c] for c in SUM_COLUMNS},
        ).values({c: bindparam(c) for c in (*KEY_COLUMNS, *SUM_COLUMNS)}))
    return stmt
