"""Core statements compiled once per dialect and run straight on the DBAPI cursor, for the ingest hot path.

For a one-event request SQLAlchemy's per-execution work (the compiled-cache lookup, the execution context,
event dispatch, result wrapping) cost more than the statements themselves (docs/benchmarks.md). What is
kept: the SQL is still built from the tables with Core, every value still goes through its column type's
bind and result processors (what is stored and read back is exactly what Core stores and reads), and a
driver error is handed to SQLAlchemy's own handler, so it comes back wrapped (IntegrityError...) and a
lost connection invalidates the pool as it would from `Connection.execute`.

On PostgreSQL the statements go through psycopg's RawCursor with $1-style placeholders, converted once
here, rather than psycopg parsing %(name)s placeholders on every execution; `pipelined` runs a block in psycopg's pipeline mode: statements go out without waiting for
each answer, so a transaction pays a round trip only where it reads a result, and once at its end.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

from sqlalchemy.engine import Connection, Dialect


@dataclass(frozen=True)
class _Compiled:
    sql: str
    names: tuple[str, ...]  # the bind names, in the order the driver's positional parameters want them
    defaults: dict[str, Any]  # literal() values compiled into the statement
    binds: tuple[tuple[str, Callable], ...]  # (name, processor) for the binds whose type converts
    results: tuple[tuple[int, Callable], ...]  # (column index, processor) for the columns whose type converts
    keys: tuple[str, ...]


class Sent:
    """A statement sent (in pipeline mode, maybe only queued); `rows` waits for its answer."""

    def __init__(self, conn: Connection, compiled: _Compiled, cursor) -> None:
        self.conn, self.compiled, self.cursor = conn, compiled, cursor

    def rows(self) -> list[tuple]:
        """Every row, each value through its column's result processor. The cursor is closed: on SQLite a
        statement left unfinished keeps its read snapshot on the pooled connection, whose next user would
        then not see later commits."""
        try:
            fetched = self.cursor.fetchall()
        except self.conn.dialect.loaded_dbapi.Error as exc:
            self.conn._handle_dbapi_exception(exc, self.compiled.sql, None, self.cursor, None)
        finally:
            self.cursor.close()
        procs = self.compiled.results
        if not procs:
            return fetched
        out = []
        for row in fetched:
            row = list(row)
            for i, process in procs:
                if row[i] is not None:
                    row[i] = process(row[i])
            out.append(tuple(row))
        return out

    def first(self) -> dict[str, Any] | None:
        """The first row as {column key: value}, or None."""
        found = self.rows()
        return dict(zip(self.compiled.keys, found[0])) if found else None


class RawStatement:
    """One Core statement (select, insert, update) with named bind parameters."""

    def __init__(self, stmt) -> None:
        self.stmt = stmt
        self._by_dialect: dict[str, _Compiled] = {}

    def _compiled(self, dialect: Dialect) -> _Compiled:
        found = self._by_dialect.get(dialect.name)
        if found is None:
            compiled = self.stmt.compile(dialect=dialect)
            if compiled.positional:
                sql, names = compiled.string, tuple(compiled.positiontup)
            else:
                sql, names = dollar_placeholders(compiled.string)
            defaults = {k: v for k, v in compiled.construct_params(_check=False).items() if v is not None}
            binds = tuple((name, proc) for name, bind in compiled.binds.items()
                          if (proc := bind.type._cached_bind_processor(dialect)) is not None)
            columns = list(getattr(self.stmt, "selected_columns", ()))
            results = tuple((i, proc) for i, c in enumerate(columns)
                            if (proc := c.type._cached_result_processor(dialect, None)) is not None)
            keys = tuple(c.key for c in columns)
            found = self._by_dialect[dialect.name] = _Compiled(sql, names, defaults, binds, results, keys)
        return found

    def _params(self, c: _Compiled, params: dict[str, Any]) -> Sequence | dict:
        values = {**c.defaults, **params} if c.defaults else dict(params)
        for name, process in c.binds:
            if name in values:
                values[name] = process(values[name])
        return tuple(values[n] for n in c.names)

    def send(self, conn: Connection, params: dict[str, Any]) -> Sent:
        """Execute; in pipeline mode the answer is read (and waited for) only by Sent.rows."""
        c = self._compiled(conn.dialect)
        return Sent(conn, c, run_driver_sql(conn, c.sql, self._params(c, params), keep_cursor=True))

    def rows(self, conn: Connection, params: dict[str, Any]) -> list[tuple]:
        return self.send(conn, params).rows()

    def first(self, conn: Connection, params: dict[str, Any]) -> dict[str, Any] | None:
        return self.send(conn, params).first()

    def execute(self, conn: Connection, params: dict[str, Any] | list[dict[str, Any]]) -> None:
        """An INSERT/UPDATE/DELETE, once, or once per parameter set (executemany)."""
        c = self._compiled(conn.dialect)
        if isinstance(params, list):
            run_driver_sql(conn, c.sql, [self._params(c, p) for p in params], many=True)
        else:
            run_driver_sql(conn, c.sql, self._params(c, params))


_PYFORMAT = re.compile(r"%\((\w+)\)s|%%")


def dollar_placeholders(sql: str) -> tuple[str, tuple[str, ...]]:
    """psycopg's %(name)s SQL as $1-style SQL (one number per distinct name) and the names in number order."""
    numbers: dict[str, int] = {}

    def number(m: re.Match) -> str:
        return "%" if m.group(0) == "%%" else f"${numbers.setdefault(m.group(1), len(numbers) + 1)}"

    return _PYFORMAT.sub(number, sql), tuple(numbers)


def _cursor(conn: Connection):
    driver = conn.connection.driver_connection
    if conn.dialect.name == "postgresql":
        from psycopg import RawCursor  # $1-style placeholders, as compiled here

        return RawCursor(driver)
    return driver.cursor()


def run_driver_sql(conn: Connection, sql: str, params, *, many: bool = False, keep_cursor: bool = False):
    """Driver SQL (positional: `?` on SQLite, `$1` on PostgreSQL) on the connection's DBAPI connection, in its
    transaction; errors as from Connection.execute. With keep_cursor, the cursor is returned open for its rows."""
    if not conn.in_transaction():
        conn.begin()  # what Connection.execute's autobegin does (on SQLite: BEGIN, one snapshot for the reads)
    cursor = None
    try:
        cursor = _cursor(conn)
        if many:
            cursor.executemany(sql, params)
        else:
            cursor.execute(sql, params)
    except conn.dialect.loaded_dbapi.Error as exc:
        conn._handle_dbapi_exception(exc, sql, params, cursor, None)
    if keep_cursor:
        return cursor
    if not in_pipeline(conn):  # (in pipeline mode the cursor still waits for its answer)
        cursor.close()
    return None


def in_pipeline(conn: Connection) -> bool:
    pgconn = getattr(conn.connection.driver_connection, "pgconn", None)
    return pgconn is not None and bool(pgconn.pipeline_status)


@contextmanager
def pipelined(conn: Connection) -> Iterator[None]:
    """The block in psycopg's pipeline mode on PostgreSQL (on SQLite, as it is). A COMMIT issued inside
    joins the last round trip. Errors found when the pipeline syncs come back as SQLAlchemy's."""
    if conn.dialect.name != "postgresql":
        yield
        return
    try:
        with conn.connection.driver_connection.pipeline():
            yield
    except conn.dialect.loaded_dbapi.Error as exc:
        conn._handle_dbapi_exception(exc, None, None, None, None)


def commit_in_pipeline(conn: Connection) -> None:
    """Queue the COMMIT with the statements before it, so the pipeline's closing sync carries it (psycopg's
    own commit() syncs once more). The driver then reports no transaction, and SQLAlchemy's commit sends nothing."""
    run_driver_sql(conn, "COMMIT", ())


class BulkInsert:
    """INSERT of many rows with one driver executemany (or COPY on PostgreSQL).

    Values go through each column's own SQLAlchemy bind processor (so what is stored is exactly what a
    Core or ORM insert stores), once per distinct value of a column: a batch repeats the same few
    timestamps. Driver errors come back as SQLAlchemy's (IntegrityError...).
    """

    COPY_FROM_ROWS = 20  # below this, one executemany costs less than setting up a COPY

    def __init__(self, table, columns: tuple[str, ...]) -> None:
        self.table, self.columns = table, columns
        self._by_dialect: dict[str, tuple[str, list]] = {}
        self._copy_types: dict[str, list[str] | None] = {}

    def _compiled(self, dialect) -> tuple[str, list]:
        found = self._by_dialect.get(dialect.name)
        if found is None:
            quote = dialect.identifier_preparer.quote
            marks = ("?" if dialect.paramstyle == "qmark" else f"${i}" for i in range(1, len(self.columns) + 1))
            sql = (f"INSERT INTO {quote(self.table.name)} ({', '.join(quote(c) for c in self.columns)}) "
                   f"VALUES ({', '.join(marks)})")
            processors = [self.table.c[c].type._cached_bind_processor(dialect) for c in self.columns]
            found = self._by_dialect[dialect.name] = (sql, processors)
        return found

    def execute(self, conn: Connection, rows: list[tuple]) -> None:
        if not rows:
            return
        sql, processors = self._compiled(conn.dialect)
        if any(processors):
            columns = list(zip(*rows))
            for i, process in enumerate(processors):
                if process is not None:
                    converted = {value: process(value) for value in set(columns[i])}
                    columns[i] = map(converted.__getitem__, columns[i])
            rows = list(zip(*columns))
        if conn.dialect.name == "postgresql" and len(rows) >= self.COPY_FROM_ROWS and not in_pipeline(conn):
            self._copy(conn, rows)
        elif len(rows) == 1:  # one row: a plain execute (psycopg sets up a pipeline for any executemany)
            run_driver_sql(conn, sql, rows[0])
        else:
            run_driver_sql(conn, sql, rows, many=True)

    def _copy(self, conn: Connection, rows: list[tuple]) -> None:
        """PostgreSQL: COPY ... FROM STDIN in the same transaction (a third of executemany's CPU for a
        1000-event batch; not possible in pipeline mode), in the binary format when psycopg knows every
        column's type by name: no value is formatted as text (1000 event rows: 0.65 ms of CPU against 3.3)."""
        quote = conn.dialect.identifier_preparer.quote
        types = self._binary_types(conn.dialect)
        sql = (f"COPY {quote(self.table.name)} ({', '.join(quote(c) for c in self.columns)}) FROM STDIN"
               + (" (FORMAT BINARY)" if types else ""))
        driver = conn.connection.driver_connection
        try:
            with driver.cursor() as cursor, cursor.copy(sql) as copy:
                if types:
                    copy.set_types(types)
                for row in rows:
                    copy.write_row(row)
        except conn.dialect.loaded_dbapi.Error as exc:
            conn._handle_dbapi_exception(exc, sql, None, None, None)

    def _binary_types(self, dialect: Dialect) -> list[str] | None:
        """The columns' PostgreSQL type names (VARCHAR(40) -> varchar), or None when psycopg does not know one
        of them by that name (then the text format, which the server parses by the column's type)."""
        if dialect.name not in self._copy_types:
            import psycopg  # only PostgreSQL gets here

            names = [re.sub(r"\(.*\)", "", self.table.c[c].type.compile(dialect=dialect)).strip().lower()
                     for c in self.columns]
            known = all(psycopg.adapters.types.get(n) is not None for n in names)
            self._copy_types[dialect.name] = names if known else None
        return self._copy_types[dialect.name]
