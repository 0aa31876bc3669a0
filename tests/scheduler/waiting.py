"""Bounded waits for what another thread or process will do (the scheduler's ticks)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest


def wait_for(condition, what: str = "the condition", timeout: float = 10.0, poll_s: float = 0.05,
             logs: tuple[Path, ...] = ()):
    """`condition()`'s first truthy value within `timeout` seconds; else the test fails, naming `what` and
    showing the tails of `logs`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(poll_s)
    tails = "\n".join(f"--- {p.name}:\n{p.read_text(errors='replace')[-3000:]}" for p in logs if p.exists())
    pytest.fail(f"timed out after {timeout:g} s waiting for {what}\n{tails}")
