"""A real Chromium against the production server (as `make run` starts it) holding the demo account."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.identity.servers import BIN, ROOT, free_port, running, tollgate_env

TIMEOUT_MS = 20_000
WIDTHS = {"desktop": 1280, "mobile": 390}
SCHEMES = ("light", "dark")
SCREENSHOTS = ROOT / "docs" / "screenshots"


def pytest_collection_modifyitems(items):
    """Screenshot tests first among the browser tests, so they show the demo as `tollgate demo` made it,
    before other tests add keys, runs and usage to the shared account."""
    here = Path(__file__).parent
    positions = [i for i, item in enumerate(items) if here in Path(str(item.path)).parents]
    browser = [items[i] for i in positions]
    ordered = [t for t in browser if "screenshot" in t.name] + [t for t in browser if "screenshot" not in t.name]
    for i, item in zip(positions, ordered):
        items[i] = item


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


# The demo user's browser is one known device (docs/security.md, "Attempt limits"): every context signs in with
# the device cookie of the first sign-in, as a person's browser would, so the suite's many sign-ins count
# against that browser and not against the email's or the address's limits for unknown browsers.
_device_cookies: dict[str, dict] = {}


def sign_in(page, demo: Demo) -> None:
    known = _device_cookies.get(demo.base_url)
    if known:
        page.context.add_cookies([known])
    page.goto(f"{demo.base_url}/sign-in")
    page.get_by_label("Email").fill(demo.email)
    page.get_by_label("Password").fill(demo.password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(re.compile(r"^http://127\.0\.0\.1:\d+/$"))
    for cookie in page.context.cookies(demo.base_url + "/auth/"):
        if cookie["name"] == "tollgate_device":
            _device_cookies[demo.base_url] = cookie


@pytest.fixture(params=list(WIDTHS))
def width(request) -> int:
    return WIDTHS[request.param]


@pytest.fixture(params=SCHEMES)
def scheme(request) -> str:
    return request.param


@pytest.fixture
def screen(browser, demo_server, width, scheme):
    """A page signed in as the demo user at `width` px in the `scheme` colour scheme, for screenshots."""
    context = browser.new_context(viewport={"width": width, "height": 900}, color_scheme=scheme)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    sign_in(page, demo_server)
    yield page
    context.close()


def save_screenshot(page, name: str, scheme: str) -> None:
    """docs/screenshots/<name>-<width>-<scheme>.png of the whole page, once nothing sticks out sideways."""
    width = page.viewport_size["width"]
    assert page.evaluate("document.documentElement.scrollWidth") <= width, f"{name} scrolls sideways at {width} px"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}-{width}-{scheme}.png"), full_page=True)


@pytest.fixture
def signed_in_page(browser, demo_server):
    """A page signed in as the demo user at 1280 px (open another context for other widths)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    sign_in(page, demo_server)
    yield page
    context.close()
