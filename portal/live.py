"""Live updates: the server wakes the open pages of an account when that account changes.

Changes are found by one DatabaseWatcher task per process: it polls every WATCH_INTERVAL_S for new rows
(activity, ledger, usage) of any account, which catches commits made by other processes (the admin CLI,
another worker), and polls at once when a service of this process announces a commit (billing_core.notify).
It publishes the accounts it found to the Broadcaster. A LiveState background task per browser tab listens
for its account and, on a change, runs the refresh handler that the tab's current page registered.

The in-process LocalBroadcaster sits behind `Broadcaster`, so Redis pub/sub or PostgreSQL LISTEN/NOTIFY
can replace it (and the watcher) when several processes serve pages.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from abc import ABC, abstractmethod
from collections import defaultdict
from typing import Any

import reflex as rx
from billing_core import notify
from billing_core.services.changes import poll_once

from .runtime import get_billing
from .state import SessionState

logger = logging.getLogger("portal.live")

WATCH_INTERVAL_S = 0.25  # the database watcher's period: the delay for changes made by other processes
WAIT_S = 5.0  # a tab's watcher wakes at least this often to notice that its client has gone
MIN_REFRESH_GAP_S = 0.1  # at most ten refreshes a second per tab, however fast the changes come
MAX_WATCH_S = 24 * 3600.0  # a bound on any one watcher, should a disconnect go unnoticed
CATCH_UP_S = 10.0  # a page's own load ran at most this long before its watcher began to listen


class Listener(ABC):
    """One subscriber's view of an account: changes published since the last wait are latched."""

    @abstractmethod
    async def wait(self, timeout: float) -> bool:
        """True once a change is (or already was) published; False when `timeout` seconds pass first."""

    @abstractmethod
    def take(self, refreshed_at: float) -> bool:
        """After a wake: whether a refresh started (monotonic) at `refreshed_at` may have missed a change;
        clears what was latched. A wake from the database watcher carries the time its query began, so a
        refresh that started later has already read that change."""

    @abstractmethod
    def close(self) -> None: ...


class Broadcaster(ABC):
    @abstractmethod
    def publish(self, account_id: str, as_of: float | None = None) -> None:
        """Say that the account changed; callable from any thread. `as_of` (time.monotonic() in this process):
        the change was committed before then; None: just now."""

    @abstractmethod
    def listen(self, account_id: str) -> Listener: ...

    async def wait(self, account_id: str, timeout: float) -> bool:
        """Wait for the next change of the account, up to `timeout` seconds."""
        listener = self.listen(account_id)
        try:
            return await listener.wait(timeout)
        finally:
            listener.close()

    def has_listeners(self) -> bool:
        return True

    def published_since(self, account_id: str, since: float) -> bool:
        """Whether the account may have changed since `since` (time.monotonic()); True when unsure."""
        return True


class _LocalListener(Listener):
    def __init__(self, owner: "LocalBroadcaster", account_id: str) -> None:
        self.owner, self.account_id, self.event = owner, account_id, asyncio.Event()
        self.now, self.as_of = False, 0.0  # latched: a change "just now", and the latest "committed before"

    def _notify(self, as_of: float | None) -> None:
        if as_of is None:
            self.now = True
        else:
            self.as_of = max(self.as_of, as_of)
        self.event.set()

    def take(self, refreshed_at: float) -> bool:
        missed = self.now or self.as_of > refreshed_at
        self.now, self.as_of = False, 0.0
        self.event.clear()
        return missed

    async def wait(self, timeout: float) -> bool:
        if not self.event.is_set():
            try:
                await asyncio.wait_for(self.event.wait(), timeout)
            except asyncio.TimeoutError:
                return False
        self.event.clear()
        return True

    def close(self) -> None:
        self.owner._drop(self)


class LocalBroadcaster(Broadcaster):
    """In-process: listeners live on one event loop; publish hops onto it from whatever thread commits."""

    def __init__(self) -> None:
        self._listeners: dict[str, set[_LocalListener]] = defaultdict(set)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._published: dict[str, float] = {}  # account -> when it last changed, kept CATCH_UP_S

    def listen(self, account_id: str) -> Listener:
        self._loop = asyncio.get_running_loop()
        listener = _LocalListener(self, account_id)
        self._listeners[account_id].add(listener)
        return listener

    def _drop(self, listener: _LocalListener) -> None:
        found = self._listeners.get(listener.account_id, set())
        found.discard(listener)
        if not found:
            self._listeners.pop(listener.account_id, None)

    def has_listeners(self) -> bool:
        return bool(self._listeners)

    def published_since(self, account_id: str, since: float) -> bool:
        return self._published.get(account_id, 0.0) >= since

    def publish(self, account_id: str, as_of: float | None = None) -> None:
        now = time.monotonic()
        if len(self._published) > 10_000:  # forget what is too old to matter (bounded memory)
            self._published = {a: t for a, t in self._published.items() if t > now - CATCH_UP_S}
        self._published[account_id] = now
        loop = self._loop  # read without the loop's help: a stale answer only skips or queues a no-op
        if loop is not None and not loop.is_closed() and account_id in self._listeners:
            loop.call_soon_threadsafe(self._wake, account_id, as_of)

    def _wake(self, account_id: str, as_of: float | None) -> None:
        for listener in tuple(self._listeners.get(account_id, ())):
            listener._notify(as_of)


broadcaster: Broadcaster = LocalBroadcaster()  # replace with a Redis or LISTEN/NOTIFY one for several processes


# -- the database watcher --------------------------------------------------------------------------------
class DatabaseWatcher:
    """One task per process: polls for commits every `interval_s` and publishes the accounts they touched.

    A change announced by a service of this process (billing_core.notify) makes it poll at once rather than
    wake pages itself: the poll that follows the commit sees it, so one wave of wakes carries both this
    process's changes and other processes', each marked "committed before the poll began" (`as_of`), and a
    tab refreshed after that poll is not woken again for the same rows by the next one.
    """

    def __init__(self, broadcaster: Broadcaster, interval_s: float = WATCH_INTERVAL_S) -> None:
        self.broadcaster, self.interval_s = broadcaster, interval_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._poked: asyncio.Event | None = None
        self._announced: set[str] = set()

    def announce(self, account_id: str) -> None:
        """The services' hook (any thread): this account changed and the change is committed."""
        loop = self._loop
        if loop is None or loop.is_closed():
            self.broadcaster.publish(account_id)  # no watcher running here: wake pages directly
        else:
            loop.call_soon_threadsafe(self._poke, account_id)

    def _poke(self, account_id: str) -> None:
        self._announced.add(account_id)
        self._poked.set()

    async def run(self) -> None:
        """The lifespan task."""
        engine = get_billing().engine
        self._loop, self._poked = asyncio.get_running_loop(), asyncio.Event()
        last: dict[str, int] | None = None
        try:
            while True:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._poked.wait(), self.interval_s)
                self._poked.clear()
                announced, self._announced = self._announced, set()
                try:
                    if last is not None and not self.broadcaster.has_listeners():
                        last = None  # nobody listens: start again from the newest rows when someone does
                    last, changed, began = await asyncio.to_thread(poll_once, engine, last)
                except Exception:
                    logger.warning("live: the database watcher could not poll; retrying", exc_info=True)
                    changed, began = set(), None  # announced changes still wake their pages
                for account_id in changed | announced:
                    self.broadcaster.publish(account_id, as_of=began)
        finally:
            self._loop = None


# -- pages plug in ---------------------------------------------------------------------------------------
watcher = DatabaseWatcher(broadcaster)
_refreshers: dict[str, Any] = {}
_watching: dict[str, asyncio.Task] = {}  # client token -> its running watcher, in this process
_app: Any = None


def _route_key(route: str) -> str:
    key = (route or "").strip("/")
    return "" if key == "index" else key


def register_refresh(route: str, handler: Any) -> None:
    """Run `handler` (an EventHandler taking no arguments) when the account of a tab showing `route` changes."""
    _refreshers[_route_key(route)] = handler


def refresh_handler(route: str) -> Any:
    return _refreshers.get(_route_key(route))


def install(app: rx.App) -> None:
    """Wire the services' hook to the watcher and start it with the app."""
    global _app
    _app = app
    notify.subscribe(watcher.announce)
    app.register_lifespan_task(watcher.run)


def _connected(token: str) -> bool:
    namespace = getattr(_app, "event_namespace", None)
    return namespace is None or token in namespace.token_to_sid


class LiveState(rx.State):
    """The tab's one watcher. Every signed-in page lists `LiveState.watch` in its on_load; Reflex cancels a
    page's on_load tasks when the tab moves to another page or disconnects, and a newer watcher of the same
    tab cancels an older one, so a tab never has two. It also ends when its client is gone or after
    MAX_WATCH_S."""

    @rx.event(background=True)
    async def watch(self):
        token = self.router.session.client_token
        if not token:
            return
        started, me = time.monotonic(), asyncio.current_task()
        older = _watching.get(token)
        if older is not None and older is not me and not older.done():
            older.cancel()
        _watching[token] = me
        listener = None
        try:
            async with self:
                # on_load handlers may still be running: check the cookie here rather than wait for them.
                session = await self.get_state(SessionState)
                user = session._signed_in_user()
            if user is None:
                return
            account_id = user.account_id
            listener = broadcaster.listen(account_id)
            # A change between the page's own load and this listen would be missed: catch up if one came.
            catch_up = broadcaster.published_since(account_id, started - CATCH_UP_S)
            deadline, last_refresh = started + MAX_WATCH_S, 0.0
            while time.monotonic() < deadline:
                if catch_up:
                    changed, forced, catch_up = True, True, False
                else:
                    changed, forced = await listener.wait(WAIT_S), False
                if not _connected(token):
                    return  # the tab is gone (closed, or its socket dropped for good)
                async with self:  # the latest state: the page the tab shows now, who is signed in
                    current = (await self.get_state(SessionState))._account_id
                    route = self.router.route_id
                if not current:
                    return  # signed out: the next signed-in page starts a new watcher
                if current != account_id:  # another account signed in on this tab
                    listener.close()
                    account_id, listener = current, broadcaster.listen(current)
                elif not (forced or (changed and listener.take(last_refresh))):
                    continue  # nothing new, or only what the last refresh has already read
                gap = MIN_REFRESH_GAP_S - (time.monotonic() - last_refresh)
                if gap > 0:
                    await asyncio.sleep(gap)
                    listener.take(0.0)  # what came meanwhile is folded into this refresh
                last_refresh = time.monotonic()
                handler = refresh_handler(route)
                if handler is not None:
                    yield handler
        finally:
            if _watching.get(token) is me:
                del _watching[token]
            if listener is not None:
                listener.close()
