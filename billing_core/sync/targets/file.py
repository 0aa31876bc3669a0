"""The embedded default: a local SQLite file the edge (or anything on the host) reads.

Table edge_items(key TEXT PRIMARY KEY, value TEXT, updated_at TEXT): key is the item name, value its JSON,
updated_at when this process wrote it (UTC, RFC 3339). WAL mode, so readers never wait for the writer.
"""

from __future__ import annotations

import sqlite3
import threading
from datetime import datetime, timezone
from pathlib import Path

from ..plan import chunks, decode_value, encode_value, is_item
from .base import TargetError

DDL = "CREATE TABLE IF NOT EXISTS edge_items (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at TEXT NOT NULL)"
_UPSERT = ("INSERT INTO edge_items (key, value, updated_at) VALUES (?, ?, ?) "
           "ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at")


class FileTarget:
    def __init__(self, path: Path, name: str = "file") -> None:
        self.name, self.path = name, Path(path)
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=10, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(DDL)
            self._conn = conn
        return self._conn

    def apply(self, upserts: dict[str, dict], deletes: list[str]) -> dict[str, str]:
        at = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # when it was written here
        with self._lock:
            try:
                conn = self._connection()
                conn.execute("BEGIN IMMEDIATE")
                try:
                    conn.executemany(_UPSERT, [(k, encode_value(v), at) for k, v in upserts.items()])
                    conn.executemany("DELETE FROM edge_items WHERE key = ?", [(k,) for k in deletes])
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                self._reset()
                raise TargetError(f"file target {self.path}: {exc}") from exc
        return {}

    def dump(self) -> dict[str, dict | None]:
        with self._lock:
            try:
                rows = self._connection().execute("SELECT key, value FROM edge_items").fetchall()
            except sqlite3.Error as exc:
                self._reset()
                raise TargetError(f"file target {self.path}: {exc}") from exc
        return {key: decode_value(value) for key, value in rows if is_item(key)}

    def read(self, keys: list[str]) -> dict[str, dict | None]:
        """The values of some items (absent ones are left out); what an edge reader does."""
        out: dict[str, dict | None] = {}
        with self._lock:
            conn = self._connection()
            for part in chunks(keys, 500):
                marks = ",".join("?" * len(part))
                for key, value in conn.execute(f"SELECT key, value FROM edge_items WHERE key IN ({marks})", part):
                    out[key] = decode_value(value)
        return out

    def _reset(self) -> None:
        # A broken connection (file removed, disk error) is reopened on the next call.
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None

    def close(self) -> None:
        with self._lock:
            self._reset()
