"""Blocking work (a database transaction) handed from the event loop to a thread.

The ingest and check handlers do all their work in one thread call. Starlette's run_in_threadpool goes
through anyio (a capacity limiter, a cancel scope, a worker-thread queue) at about 0.2 ms of CPU a call,
measured as the difference between an inline and a threaded one-event POST (docs/benchmarks.md); a plain
executor call costs a fraction of that. The work runs to its end even if the client goes away (as with
anyio's default), and sees the caller's context variables.
"""

from __future__ import annotations

import asyncio
import contextvars
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, TypeVar

T = TypeVar("T")

# Above the database pool's size (10 + 20 overflow), so the pool, not this, bounds concurrent transactions.
_EXECUTOR = ThreadPoolExecutor(max_workers=32, thread_name_prefix="tollgate-api")


async def in_thread(fn: Callable[..., T], /, *args) -> T:
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_EXECUTOR, contextvars.copy_context().run, fn, *args)
