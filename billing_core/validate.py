"""Strict checks of outside input that need nothing but the standard library: RFC 3339 times and dates,
printable text, and the shape of a JSON text (how deep it nests, whether an integer outgrows 64 bits).

The JSON checks read the raw bytes, so they run before any parser, and their common path is a few
C-level passes over the body (a 1000-event usage batch of 240 KB: about 0.2 ms).
"""

from __future__ import annotations

import json
import re
import unicodedata
from datetime import date, datetime, timedelta, timezone

MAX_JSON_DEPTH = 32  # levels of objects and arrays in one body, the body's own object or array included
INT_MIN, INT_MAX = -(2**63), 2**64 - 1  # what orjson, the API's parser, reads as an exact integer

# -- times ------------------------------------------------------------------------------------------
# RFC 3339 section 5.6, `date-time` and `full-date`; ASCII digits only ([0-9], not \d, which is Unicode).
_DATE_TIME = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]+)?"
                        r"([Zz]|[+-][0-9]{2}:[0-9]{2})")
_FULL_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
RFC3339_EXAMPLE = "2026-01-31T12:00:00Z"


def parse_rfc3339(text: str) -> datetime:
    """An RFC 3339 date-time (`T`, seconds and a zone required), in UTC; ValueError otherwise.

    A leap second (`23:59:60` in UTC, on a month's last day) reads as 23:59:59.999999 of that day, since
    datetime has no second 60."""
    match = _DATE_TIME.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"must be an RFC 3339 time such as {RFC3339_EXAMPLE}")
    offset = match[8]
    if offset not in "Zz" and (int(offset[1:3]) > 23 or int(offset[4:6]) > 59):
        raise ValueError("has an offset out of range")
    leap = match[6] == "60"
    # fromisoformat does the calendar (month 13, February 30...) and the fraction past microseconds.
    iso = text.upper() if not leap else f"{text[:17]}59{text[19:]}".upper()
    try:
        parsed = datetime.fromisoformat(iso).astimezone(timezone.utc)
    except (ValueError, OverflowError):
        raise ValueError(f"is not a real time; send one such as {RFC3339_EXAMPLE}") from None
    if leap:
        if (parsed.hour, parsed.minute) != (23, 59) or (parsed + timedelta(days=1)).day != 1:
            raise ValueError("may have second 60 only for a leap second (23:59:60 UTC on a month's last day)")
        parsed = parsed.replace(microsecond=999_999)
    return parsed


def parse_full_date(text: str) -> date:
    """An RFC 3339 full-date, YYYY-MM-DD and nothing else; ValueError otherwise."""
    if not (isinstance(text, str) and _FULL_DATE.fullmatch(text)):
        raise ValueError("must be a date such as 2026-01-31 (YYYY-MM-DD)")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError("is not a real date") from None


# -- text -------------------------------------------------------------------------------------------
# Control characters, lone surrogates, line and paragraph separators, and format characters (bidi
# overrides, zero-width spaces, BOM): invisible or reordering text in an id or name misleads whoever reads
# it. The zero-width (non-)joiner stay allowed: emoji sequences and several scripts need them.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cs", "Cf", "Zl", "Zp"})
_ALLOWED_FORMAT = frozenset("\u200c\u200d")


def is_printable(text: str) -> bool:
    """True when the text holds no control, format or separator character (space is fine)."""
    if text.isprintable():  # the usual case, in C; it is also False for other spaces and unassigned code points
        return True
    return not any(unicodedata.category(c) in _REFUSED_CATEGORIES and c not in _ALLOWED_FORMAT for c in text)


PRINTABLE_RULE = "must not contain control or invisible formatting characters"


# -- JSON texts -------------------------------------------------------------------------------------
# Quotes and brackets (escapes aside) in one body, far above any body this API takes (a 1000-event usage
# batch holds about 54,000): past it the body is refused unread, so no body costs more than this to check.
MAX_JSON_MARKS = 256 * 1024
_NOT_STRUCTURAL = bytes(c for c in range(256) if c not in b'"[]{}')
_ONE_BRACKET_KIND = bytes.maketrans(b"{}", b"[]")  # depth does not care which; a mismatch fails to parse
_QUOTED = re.compile(rb'"[^"]*"')
_DIGITS_TO_ZERO = bytes(48 if 48 <= c <= 57 else 120 for c in range(256))  # digits -> "0", the rest -> "x"
_LONG_DIGIT_RUN = b"0" * 19  # 2**63 has 19 digits: any shorter integer is exact


def _brackets(body: bytes, marks: bytes | None) -> bytes | None:
    """The text's brackets outside strings, all as [ and ]; None past MAX_JSON_MARKS."""
    if marks is None or b"\\" in marks:
        if b"\\" in body:
            # Only an escaped quote or backslash can move where a string ends; left to right, as JSON reads.
            body = body.replace(b"\\\\", b"").replace(b'\\"', b"")
        marks = body.translate(None, _NOT_STRUCTURAL)  # quotes and brackets: a small fraction of a body
    else:
        marks = marks.translate(None, _NOT_STRUCTURAL)
    if len(marks) > MAX_JSON_MARKS:
        return None
    if b'"' in marks:
        # Most strings hold no bracket and leave an empty pair; dropping pairs keeps the quotes alternating
        # (two adjacent strings merge into one), so what is left inside quotes is still inside a string.
        marks = marks.replace(b'""', b"")
        if b'"' in marks:
            marks = _QUOTED.sub(b"", marks)
    return marks.translate(_ONE_BRACKET_KIND)


def json_nesting(body: bytes, limit: int = MAX_JSON_DEPTH, *, marks: bytes | None = None) -> str:
    """'ok', 'too_deep' (more than `limit` levels), 'malformed' (brackets that cannot be JSON's) or
    'too_large' (more than MAX_JSON_MARKS quotes and brackets).

    `marks`: the body with at least its quotes, brackets and backslashes kept, when the caller has it."""
    brackets = _brackets(body, marks)
    if brackets is None:
        return "too_large"
    too_deep = b"[" * (limit + 1)
    # Each pass drops the innermost pairs (bytes.replace does not rescan what it joins): one level of every
    # branch. A text nesting at most `limit` deep is empty after `limit` passes.
    for _ in range(limit + 1):
        if not brackets:
            return "ok"
        if too_deep in brackets:
            return "too_deep"
        peeled = brackets.replace(b"[]", b"")
        if len(peeled) == len(brackets):
            return "malformed"
        brackets = peeled
    return "too_deep"


def may_hold_wide_integer(body: bytes) -> bool:
    """False when no integer in the text can exceed 64 bits (no run of 19 digits anywhere); True: look closer."""
    return _LONG_DIGIT_RUN in body.translate(_DIGITS_TO_ZERO)


_TOKEN = re.compile(rb'[ \t\n\r]*(?:"((?:[^"\\]|\\.)*)"|([{}\[\]:,])|(-?[0-9][0-9.eE+-]*)|(true|false|null))', re.S)


def _key(raw: bytes) -> str:
    try:
        return json.loads(b'"' + raw + b'"')
    except ValueError:
        return raw.decode("utf-8", "replace")


def locate_json_problem(body: bytes, *, max_depth: int = MAX_JSON_DEPTH,
                        wide_integers: bool = True) -> tuple[list[str | int], str] | None:
    """The path to the first place the text nests deeper than `max_depth` ('too_deep') or holds an integer
    outside [-2**63, 2**64 - 1] ('wide_integer'); None when there is none or the text is not JSON."""
    path: list[str | int] = []  # per open container: its current key or index
    awaiting_key: list[bool] = []  # per open container: an object expecting a key (None for an array)
    pos, end = 0, len(body)
    while pos < end:
        match = _TOKEN.match(body, pos)
        if match is None:
            return None
        pos = match.end()
        string, punct, number = match[1], match[2], match[3]
        if punct is not None:
            if punct in b"{[":
                is_object = punct == b"{"
                awaiting_key.append(is_object)
                path.append("" if is_object else 0)
                if len(path) > max_depth:
                    return path[:-1], "too_deep"
            elif punct in b"}]":
                if not path:
                    return None
                awaiting_key.pop()
                path.pop()
            elif punct == b"," and path:
                if isinstance(path[-1], int):
                    path[-1] += 1
                else:
                    awaiting_key[-1] = True
        elif string is not None:
            if awaiting_key and awaiting_key[-1]:
                path[-1], awaiting_key[-1] = _key(string), False
        elif number is not None and wide_integers and len(number) >= 19 and not any(c in number for c in b".eE"):
            if not INT_MIN <= int(number) <= INT_MAX:
                return list(path), "wide_integer"
    return None


def json_path(path: list[str | int]) -> str:
    """`events.3.model` for ["events", 3, "model"]."""
    return ".".join(str(p) for p in path)


def value_problem(value: object, *, max_depth: int) -> tuple[list[str | int], str] | None:
    """Like locate_json_problem, for a value already parsed (dicts, lists, scalars)."""
    stack: list[tuple[object, list[str | int]]] = [(value, [])]
    while stack:
        item, path = stack.pop()
        if isinstance(item, (dict, list)):
            if len(path) >= max_depth:
                return path, "too_deep"
            children = item.items() if isinstance(item, dict) else enumerate(item)
            stack.extend((child, [*path, key]) for key, child in children)
        elif isinstance(item, int) and not isinstance(item, bool) and not INT_MIN <= item <= INT_MAX:
            return path, "wide_integer"
    return None
