"""Issue 12, finding 3: the pages really run under their Content-Security-Policy, in Chromium, on the
production server: every page signed out and signed in, the live updates, a toast a server handler sends
(Reflex runs it through eval), and no other origin can frame a page."""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from playwright.sync_api import expect

from portal import routes
from tests.browser.conftest import TIMEOUT_MS, sign_in

from .reflex_demo import demo_reflex_server

pytestmark = pytest.mark.slow
# Each document records the CSP violations it sees, from before its first script runs.
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation',
    e => window.__cspViolations.push(`${e.effectiveDirective} blocked ${e.blockedURI || 'inline'}: ${e.sample}`));
"""
SIGNED_IN_PAGES = (routes.HOME, routes.PROJECTS, routes.RUNS, routes.SCHEDULES, routes.USAGE, routes.BILLING,
                   routes.SETTINGS, routes.DEVICE)


@pytest.fixture(scope="module")
def demo(tmp_path_factory, request):
    return demo_reflex_server(tmp_path_factory, request.config)


class Watched:
    """A page whose console errors, uncaught exceptions and CSP violations are collected."""

    def __init__(self, context) -> None:
        context.add_init_script(RECORD_VIOLATIONS)
        self.page = context.new_page()
        self.problems: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.problems.append(f"uncaught: {error}"))

    def _console(self, message) -> None:
        # The app has no favicon: the browser's request for one is not the page's doing.
        if message.type == "error" and not message.location.get("url", "").endswith("/favicon.ico"):
            self.problems.append(f"{self.page.url}: {message.text}")

    def visit(self, url: str, ready: str) -> None:
        self.page.goto(url)
        expect(self.page.locator(ready).first).to_be_visible()
        self.check()

    def check(self) -> None:
        violations = self.page.evaluate("window.__cspViolations")
        assert violations == [], f"{self.page.url}: {violations}"
        assert self.problems == []


def test_every_page_runs_under_the_csp_with_live_updates_and_server_sent_toasts(browser, demo):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    try:
        watched = Watched(context)
        page = watched.page
        watched.visit(f"{demo.base_url}{routes.SIGN_UP}", "#sign-up-submit")
        watched.visit(f"{demo.base_url}{routes.SIGN_IN}", "#sign-in-submit")
        sign_in(page, demo)
        for path in SIGNED_IN_PAGES:
            # The signed-in name comes over the WebSocket: the page is hydrated and its state connected.
            watched.visit(f"{demo.base_url}{path}", "#signed-in-as")
            expect(page.locator("#signed-in-as").first).to_have_text(re.compile(r"\w"))
        page.goto(f"{demo.base_url}{routes.PROJECTS}")
        page.locator("a[href^='/projects/']").first.click()
        page.wait_for_url(re.compile(r"/projects/prj_"))
        expect(page.locator("#signed-in-as")).to_have_text(re.compile(r"\w"))
        watched.check()

        # Live: a usage report made through the API shows on the open dashboard without a reload.
        watched.visit(f"{demo.base_url}{routes.HOME}", "#stat-events-today")
        events = page.locator("#stat-events-today")
        expect(events).to_have_text(re.compile(r"^[\d,]+$"))
        before = int(events.inner_text().replace(",", ""))
        with httpx.Client(base_url=demo.base_url, headers={"Authorization": f"Bearer {demo.api_key}"}) as api:
            project_id = api.get("/api/v1/projects").json()["data"][0]["id"]
            reported = api.post("/api/v1/usage", json={"events": [{"id": f"csp-{uuid.uuid4().hex}",
                                                                    "project_id": project_id, "kind": "compute",
                                                                    "duration_ms": 1000}]})
            assert reported.status_code == 200
        expect(events).to_have_text(f"{before + 1:,}")

        # A toast that a server handler answers with runs on the client through eval.
        watched.visit(f"{demo.base_url}{routes.SETTINGS}", "#profile-name")
        page.locator("#profile-name").fill("Demo under CSP")
        page.locator("#save-name").click()
        expect(page.get_by_text("Name saved")).to_be_visible()
        watched.check()
    finally:
        context.close()


@contextmanager
def _framing_page(src: str) -> Iterator[str]:
    """A page on another loopback port that frames `src` (a real server: Chromium refuses a loopback frame
    inside a page that did not come from a loopback address)."""
    body = f'<!doctype html><iframe id="victim" src="{src}"></iframe>'.encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()


def test_a_page_of_another_origin_cannot_frame_the_portal(browser, demo):
    # The same site on another port, as the probe: SameSite cookies do not keep it out.
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    try:
        page = context.new_page()
        sign_in(page, demo)
        with _framing_page(f"{demo.base_url}{routes.SETTINGS}") as other:
            with page.expect_console_message(lambda m: "frame-ancestors 'none'" in m.text):
                page.goto(other)
        expect(page.frame_locator("#victim").locator("#signed-in-as")).to_have_count(0)
    finally:
        context.close()
