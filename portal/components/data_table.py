"""Tables of one page of rows: header, body, loading veil, empty state and a previous/next pager.

Rows are small dicts of display strings held by a page state; the table never fetches anything.
"""

from __future__ import annotations

from typing import Callable, Sequence

import reflex as rx

from .shell import empty_state

# (heading, alignment, shown on phones): numbers align right so their digits line up.
Column = tuple[str, str, bool]
# Radix breakpoints: below 48em (768 px) a column marked wide-only is hidden.
WIDE_ONLY = ["none", "none", "table-cell"]


def header(columns: Sequence[Column]) -> rx.Component:
    return rx.table.header(rx.table.row(*[
        rx.table.column_header_cell(title, text_align=align, white_space="nowrap",
                                    display=None if phone else WIDE_ONLY)
        for title, align, phone in columns]))


def cell(value: rx.Var | str, *, align: str = "left", mono: bool = False, muted: bool = False,
         title: rx.Var | str | None = None, wide_only: bool = False, **props) -> rx.Component:
    text = rx.text(value, size="2", white_space="nowrap", color_scheme="gray" if muted else None,
                   font_family="var(--code-font-family)" if mono else None, title=title)
    return rx.table.cell(text, text_align=align, display=WIDE_ONLY if wide_only else None, **props)


def phone_only(*children: rx.Component) -> rx.Component:
    """Shown below 768 px only: what the hidden wide-only columns would have said."""
    return rx.box(*children, display=["block", "block", "none"])


def data_table(columns: Sequence[Column], rows: rx.Var, render_row: Callable[[rx.Var], rx.Component], *,
               loading: rx.Var, empty: rx.Component, table_id: str) -> rx.Component:
    """One page of `rows` under `columns`, dimmed while `loading`, `empty` when there are none."""
    table = rx.table.root(header(columns), rx.table.body(rx.foreach(rows, render_row)), variant="surface",
                          size="2", width="100%", id=table_id)
    return rx.box(
        rx.cond(rows.length() > 0, table, rx.cond(loading, _skeleton(columns), empty)),
        opacity=rx.cond(loading, "0.55", "1"), transition="opacity 120ms", width="100%",
        aria_busy=rx.cond(loading, "true", "false"))


def _skeleton(columns: Sequence[Column]) -> rx.Component:
    row = rx.table.row(*[rx.table.cell(rx.skeleton(rx.text("loading"), loading=True),
                                       display=None if phone else WIDE_ONLY) for _, _, phone in columns])
    return rx.table.root(header(columns), rx.table.body(row, row, row), variant="surface", size="2", width="100%")


def pager(*, page: rx.Var, has_prev: rx.Var, has_next: rx.Var, on_prev, on_next, summary: rx.Var | str = "",
          pager_id: str = "pager") -> rx.Component:
    """Previous / next buttons around "Page N" (keyset pages: no total, no jumping)."""
    return rx.hstack(
        rx.text(summary, size="2", color_scheme="gray", display=["none", "none", "block"]),
        rx.spacer(),
        rx.button(rx.icon("chevron-left", size=16), "Previous", variant="soft", color_scheme="gray", size="2",
                  disabled=~has_prev, on_click=on_prev, id=f"{pager_id}-prev"),
        rx.text("Page ", page, size="2", color_scheme="gray", white_space="nowrap", id=f"{pager_id}-page"),
        rx.button("Next", rx.icon("chevron-right", size=16), variant="soft", color_scheme="gray", size="2",
                  disabled=~has_next, on_click=on_next, id=f"{pager_id}-next"),
        align="center", spacing="3", width="100%", wrap="wrap")


def no_rows(title: str, hint: str, icon: str = "inbox") -> rx.Component:
    return empty_state(icon, title, hint)


def field_label(text: str, control: rx.Component, html_for: str | None = None) -> rx.Component:
    """A small label above a filter control."""
    return rx.vstack(rx.el.label(rx.text(text, size="1", weight="medium", color_scheme="gray"), html_for=html_for),
                     control, spacing="1", min_width="10rem", flex="1")
