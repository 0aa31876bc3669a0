"""A real Chromium against the production server (as `make run` starts it) holding the demo account."""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.identity.servers import BIN, ROOT, free_port, running, tollgate_env

TIMEOUT_MS = 20_000
WIDTHS = {"desktop": 1280, "mobile": 390}
SCREENSHOTS = ROOT / "docs" / "screenshots"


@dataclass(frozen=True)
class Demo:
    base_url: str
    email: str
    password: str
    api_key: str
    env: dict


@pytest.fixture(scope="session")
def demo_server(tmp_path_factory):
    """`tollgate demo` into a fresh database, then `reflex run --env prod --single-port` on it."""
    workdir = tmp_path_factory.mktemp("browser")
    database = workdir / "tollgate.db"
    port = free_port()
    env = tollgate_env(database, port, TOLLGATE_DATA_DIR=str(workdir), REFLEX_USE_SYSTEM_BUN="1")
    env["PATH"] = f"{ROOT / '.tools' / 'node_modules' / '.bin'}:{env.get('PATH', '')}"
    subprocess.run([BIN / "tollgate", "demo"], env=env, check=True, capture_output=True, timeout=300)
    cmd = [str(BIN / "reflex"), "run", "--env", "prod", "--single-port", "--frontend-port", str(port),
           "--backend-port", str(port)]
    with running(cmd, env, port, workdir / "reflex.log", 240) as server:
        yield Demo(server.base_url, "demo@tollgate.dev", (workdir / "demo-password.txt").read_text().strip(),
                   (workdir / "demo-key.txt").read_text().strip(), env)


def sign_in(page, demo: Demo) -> None:
    page.goto(f"{demo.base_url}/sign-in")
    page.get_by_label("Email").fill(demo.email)
    page.get_by_label("Password").fill(demo.password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(re.compile(r"^http://127\.0\.0\.1:\d+/$"))


@pytest.fixture(params=list(WIDTHS))
def width(request) -> int:
    return WIDTHS[request.param]


@pytest.fixture
def signed_in_page(browser, demo_server):
    """A page signed in as the demo user at 1280 px (open another context for other widths)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    sign_in(page, demo_server)
    yield page
    context.close()
