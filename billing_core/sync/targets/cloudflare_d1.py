"""Cloudflare D1 through the v4 REST API's query endpoint: one typed table per item kind, so a Worker can
join a key to its account in one statement. The DDL is docs/edge-d1.sql (DDL below must match it).

POST /accounts/{account_id}/d1/database/{database_id}/query with {"batch": [{"sql", "params"}, ...]}.
D1 binds at most 100 parameters per statement, so upserts are multi-row INSERT ... ON CONFLICT DO UPDATE
statements of at most 100 values, deletes DELETE ... WHERE id IN (at most 100). Parameters are sent as
strings (the documented type); INTEGER columns convert them, NULLIF(?, '') stores NULL for a missing value.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import httpx

from ..plan import ACCOUNT, KEY, PROJECT, chunks, split_item
from .cloudflare import CloudflareApi

MAX_PARAMS = 100  # D1: maximum bound parameters per query
STATEMENTS_PER_REQUEST = 50
DUMP_PAGE = 1000


@dataclass(frozen=True)
class Column:
    field: str  # in the item's value
    type: str  # text | int | json (a JSON text column)
    nullable: bool = False


@dataclass(frozen=True)
class Table:
    name: str
    id_column: str
    columns: tuple[Column, ...]


TABLES = {
    KEY: Table("edge_keys", "key_hash", (
        Column("account_id", "text"), Column("project_id", "text", nullable=True), Column("scopes", "json"),
        Column("expires_at", "text", nullable=True), Column("status", "text"))),
    ACCOUNT: Table("edge_accounts", "account_id", (
        Column("status", "text"), Column("plan", "text"), Column("remaining_allowance_ms", "int"),
        Column("pool_ms", "int"), Column("credit_micros", "int"), Column("overage_micros", "int"),
        Column("spend_cap_micros", "int", nullable=True), Column("concurrency_limit", "int"),
        Column("period_end", "text"), Column("as_of", "text"))),
    PROJECT: Table("edge_projects", "project_id", (
        Column("account_id", "text"), Column("name", "text"), Column("status", "text"), Column("hmac_keys", "json"))),
}


def _param(column: Column, value) -> str:
    if value is None:
        return ""  # NULLIF(?, '') turns it into NULL (only nullable columns get None)
    if column.type == "json":
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    return str(value)


def _from_row(table: Table, row: dict) -> dict:
    value = {}
    for column in table.columns:
        raw = row.get(column.field)
        if column.type == "json" and raw is not None:
            try:
                raw = json.loads(raw)
            except (TypeError, ValueError):
                raw = None
        value[column.field] = raw
    return value


def upsert_statements(kind: str, rows: list[tuple[str, dict]]) -> list[dict]:
    table = TABLES[kind]
    names = [table.id_column, *(c.field for c in table.columns)]
    marks = "(" + ", ".join(["?"] + [("NULLIF(?, '')" if c.nullable else "?") for c in table.columns]) + ")"
    updates = ", ".join(f"{c.field} = excluded.{c.field}" for c in table.columns)
    out = []
    for part in chunks(rows, MAX_PARAMS // len(names)):
        sql = (f"INSERT INTO {table.name} ({', '.join(names)}) VALUES {', '.join([marks] * len(part))} "
               f"ON CONFLICT({table.id_column}) DO UPDATE SET {updates}")
        params = []
        for ident, value in part:
            params.append(ident)
            params.extend(_param(c, value.get(c.field)) for c in table.columns)
        out.append({"sql": sql, "params": params})
    return out


def delete_statements(kind: str, idents: list[str]) -> list[dict]:
    table = TABLES[kind]
    return [{"sql": f"DELETE FROM {table.name} WHERE {table.id_column} IN ({', '.join('?' * len(part))})",
             "params": list(part)} for part in chunks(idents, MAX_PARAMS)]


class CloudflareD1Target:
    def __init__(self, http: httpx.Client, *, base: str, account_id: str, api_token: str, database_id: str,
                 owns_http: bool = False, name: str = "cloudflare_d1") -> None:
        self.name, self.owns_http = name, owns_http
        self.api = CloudflareApi(http, base=base, account_id=account_id, api_token=api_token,
                                 what="cloudflare d1")
        self.path = f"/d1/database/{database_id}/query"

    def apply(self, upserts: dict[str, dict], deletes: list[str]) -> dict[str, str]:
        by_kind: dict[str, list[tuple[str, dict]]] = {k: [] for k in TABLES}
        refused: dict[str, str] = {}
        for item, value in upserts.items():
            kind, ident = split_item(item)
            if kind:
                by_kind[kind].append((ident, value))
            else:
                refused[item] = "cloudflare d1: not an item kind this target stores"
        gone: dict[str, list[str]] = {k: [] for k in TABLES}
        for item in deletes:
            kind, ident = split_item(item)
            if kind:
                gone[kind].append(ident)
        statements = []
        for kind in TABLES:
            statements += upsert_statements(kind, by_kind[kind]) + delete_statements(kind, gone[kind])
        for part in chunks(statements, STATEMENTS_PER_REQUEST):
            self.api.call("POST", self.path, json={"batch": list(part)})
        return refused

    def dump(self) -> dict[str, dict | None]:
        out: dict[str, dict | None] = {}
        for kind, table in TABLES.items():
            fields = ", ".join([table.id_column, *(c.field for c in table.columns)])
            last = ""
            while True:
                result = self.api.result("POST", self.path, json={
                    "sql": f"SELECT {fields} FROM {table.name} WHERE {table.id_column} > ? "
                           f"ORDER BY {table.id_column} LIMIT {DUMP_PAGE}", "params": [last]})
                rows = (result[0].get("results") if result else None) or []
                for row in rows:
                    out[f"{kind}:{row[table.id_column]}"] = _from_row(table, row)
                if len(rows) < DUMP_PAGE:
                    break
                last = rows[-1][table.id_column]
        return out

    def close(self) -> None:
        if self.owns_http:
            self.api.http.close()
