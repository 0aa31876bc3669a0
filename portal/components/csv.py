"""CSV text from rows already shown on a page: no I/O, so an export is exactly what was on screen."""

from __future__ import annotations

import csv
import io
from typing import Iterable, Sequence


def csv_text(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """RFC 4180 CSV (CRLF line ends, quoted only where needed) of a header and its rows."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([_cell(value) for value in row])
    return out.getvalue()


def _cell(value: object) -> object:
    """A spreadsheet would run a text cell starting with = + - @ as a formula; a leading ' keeps it text."""
    if value is None:
        return ""
    if isinstance(value, str) and value[:1] in _FORMULA_STARTS and not _is_number(value):
        return "'" + value
    return value


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def decimal_usd(micros: int) -> str:
    """Micros as an exact decimal number of dollars for spreadsheets: 1_234_500 -> "1.234500"."""
    whole, frac = divmod(abs(micros), 1_000_000)
    return f"{'-' if micros < 0 else ''}{whole}.{frac:06d}"


def safe_filename(*parts: str) -> str:
    """A download name from parts: letters, digits, dots, dashes and underscores only."""
    text = "-".join(p for p in parts if p)
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in text) or "export"
