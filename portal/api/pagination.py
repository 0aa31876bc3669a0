"""The list shape every list endpoint shares: `limit`, `cursor` in; `data`, `next_cursor` out."""

from __future__ import annotations

from typing import Callable

from fastapi import Query

from billing_core.services.paging import DEFAULT_LIMIT, MAX_LIMIT, Page


class ListParams:
    def __init__(self, limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT),
                 cursor: str | None = Query(None, max_length=500)) -> None:
        self.limit, self.cursor = limit, cursor


def list_response(page: Page, to_json: Callable) -> dict:
    return {"data": [to_json(item) for item in page.items], "next_cursor": page.next_cursor}
