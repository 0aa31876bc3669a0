"""The migrated schema is exactly what the models describe, on SQLite and PostgreSQL (where the references
from usage_events and ledger_entries to accounts are statement-level triggers instead of foreign keys:
migration 0005, docs/decisions.md), and the migrations go down and up again."""

import importlib.util
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from billing_core.db.engine import make_engine
from billing_core.db.migrate import alembic_config
from billing_core.db.models import SQLModel

_SPEC = importlib.util.spec_from_file_location(
    "m0005", Path(__file__).parents[2] / "alembic" / "versions" / "0005_statement_level_account_references.py")
M0005 = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(M0005)
TRIGGERS = {"usage_events_insert_names_accounts", "usage_events_update_names_accounts",
            "ledger_entries_insert_names_accounts", "ledger_entries_update_names_accounts",
            "accounts_delete_keeps_named", "accounts_id_kept"}


def _by_trigger(diff: list) -> list:
    """The foreign keys that migration 0005 replaced on PostgreSQL (and nothing else)."""
    return [d for d in diff if d[0] == "add_fk" and d[1].parent.name in M0005.TABLES
            and d[1].referred_table.name == "accounts"]


def _triggers(conn) -> set[str]:
    found = conn.execute(text("SELECT tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                              "WHERE c.relnamespace = current_schema()::regnamespace AND NOT t.tgisinternal"))
    return set(found.scalars())


def test_migrating_an_empty_database_to_head_matches_the_models(database_url):
    engine = make_engine(database_url)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, SQLModel.metadata)
        if engine.dialect.name == "postgresql":
            replaced = _by_trigger(diff)
            assert len(replaced) == 2
            diff = [d for d in diff if d not in replaced]
            assert _triggers(conn) == TRIGGERS
    engine.dispose()
    assert diff == []


def test_every_model_table_exists_after_migration(database_url):
    engine = make_engine(database_url)
    tables = set(inspect(engine).get_table_names())
    engine.dispose()
    assert set(SQLModel.metadata.tables) <= tables
    assert "alembic_version" in tables


def test_migration_0005_goes_down_to_foreign_keys_and_up_again(database_url):
    from alembic import command

    engine = make_engine(database_url)
    config = alembic_config(database_url)
    command.downgrade(config, "0004")
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}),
                                    SQLModel.metadata)
            # The foreign keys are back (what later migrations add, tables and columns, is not there yet).
            assert [d for d in _flat(diff) if d[0] in ("add_fk", "remove_fk")] == []
            if engine.dialect.name == "postgresql":
                assert _triggers(conn) == set()
    finally:
        command.upgrade(config, "head")  # the session's PostgreSQL schema is shared by the tests after this one
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), SQLModel.metadata)
        if engine.dialect.name == "postgresql":
            assert len(_by_trigger(diff)) == 2 and _triggers(conn) == TRIGGERS
    engine.dispose()


def _flat(diff: list) -> list:
    """compare_metadata's entries, with column-level groups (lists) opened up."""
    return [item for entry in diff for item in (entry if isinstance(entry, list) else [entry])]
