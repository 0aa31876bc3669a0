"""Opaque, prefixed random identifiers ("acc_...", "prj_...")."""

from __future__ import annotations

import secrets

from .keys import ALPHABET


def new_id(prefix: str, length: int = 20) -> str:
    return f"{prefix}_" + "".join(secrets.choice(ALPHABET) for _ in range(length))
