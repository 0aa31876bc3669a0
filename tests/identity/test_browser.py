"""A real Chromium against the production server (`reflex run --env prod --single-port`, as `make run`)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from .conftest import PASSWORD, oidc_env
from .servers import reflex_server

pytestmark = pytest.mark.slow
TIMEOUT_MS = 20_000
HOME = re.compile(r"^http://127\.0\.0\.1:\d+/$")  # exactly "/": "/sign-up/" must not match


@pytest.fixture(scope="module")
def server(tmp_path_factory, sqlite_template, provider):
    with reflex_server(tmp_path_factory.mktemp("identity-browser"), sqlite_template, **oidc_env(provider)) as live:
        provider.client.redirect_uris[:] = [f"{live.base_url}/auth/oidc/callback"]
        yield live


@pytest.fixture
def page(browser, server):
    context = browser.new_context(base_url=server.base_url, viewport={"width": 1280, "height": 800})
    context.set_default_timeout(TIMEOUT_MS)
    yield context.new_page()
    context.close()


def _sign_up(page, email: str) -> None:
    page.get_by_role("link", name="Create an account").click()
    page.wait_for_url(re.compile(r"/sign-up"))
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.locator("#sign-up-submit").click()


def test_sign_up_see_yourself_sign_out_and_be_sent_back_to_sign_in(page, server):
    page.goto("/")
    page.wait_for_url(re.compile(r"/sign-in/?$"))
    page.get_by_role("button", name="Sign in", exact=True).wait_for()
    page.get_by_role("link", name="Sign in with Test IdP").wait_for()  # OIDC is configured on this server

    email = f"browser-{uuid.uuid4().hex[:10]}@example.com"
    _sign_up(page, email)
    page.wait_for_url(HOME)
    assert page.locator("#signed-in-as").inner_text() == email
    cookie = next(c for c in page.context.cookies() if c["name"] == "tollgate_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and cookie["expires"] > 0
    assert page.evaluate("document.cookie").find("tollgate_session") == -1  # page scripts never see it

    page.locator("#sign-out").click()
    page.wait_for_url(re.compile(r"/sign-in/?$"))
    assert not any(c["name"] == "tollgate_session" for c in page.context.cookies())
    page.goto("/")
    page.wait_for_url(re.compile(r"/sign-in/?$"))


def test_a_wrong_password_is_explained_on_the_sign_in_page(page, server):
    page.goto("/sign-in")
    page.get_by_label("Email").fill("nobody@example.com")
    page.get_by_label("Password").fill("not the password 1")
    page.locator("#sign-in-submit").click()
    page.wait_for_url(re.compile(r"error=invalid_credentials"))
    assert page.locator("#form-error").inner_text() == "That email and password do not match an account."


def test_a_cli_sign_in_is_approved_on_the_device_page_after_signing_in(page, server):
    started = httpx.post(f"{server.base_url}/oauth/device/code", headers={"User-Agent": "tollgate-cli/test"},
                         data={"client_id": "tollgate-cli", "device_name": "ci-runner"}).json()
    page.goto(started["verification_uri_complete"])
    page.wait_for_url(re.compile(r"/sign-in\?next="))
    _sign_up(page, f"device-{uuid.uuid4().hex[:10]}@example.com")  # sign-up keeps `next` too
    page.wait_for_url(re.compile(r"/device/?\?user_code="))
    card = page.locator("#device-request")
    assert started["user_code"] in card.inner_text() and "ci-runner" in card.inner_text()
    assert "tollgate-cli/test" in card.inner_text() and "127.0.0.1" in card.inner_text()
    page.locator("#approve").click()
    page.locator("#device-done").wait_for()
    token = httpx.post(f"{server.base_url}/oauth/token", data={
        "grant_type": "urn:ietf:params:oauth:grant-type:device_code", "device_code": started["device_code"],
        "client_id": "tollgate-cli"})
    assert token.status_code == 200 and token.json()["access_token"].startswith("ak_live_")


def test_single_sign_on_in_the_browser_creates_the_account_and_signs_in(page, provider):
    provider.user = {"sub": "browser-1", "email": "sso.browser@example.com", "email_verified": True, "name": "Sso"}
    page.goto("/sign-in")
    page.get_by_role("link", name="Sign in with Test IdP").click()  # to the provider, which approves at once
    page.wait_for_url(HOME)
    assert page.locator("#signed-in-as").inner_text() == "Sso"


def test_the_real_cli_logs_in_through_the_device_page_and_whoami_works(page, server, tmp_path):
    tollgate = Path(sys.executable).parent / "tollgate"
    env = {**os.environ, "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config"),
           "PYTHONUNBUFFERED": "1"}
    env.pop("TOLLGATE_URL", None)
    cli = subprocess.Popen([tollgate, "login", "--url", server.base_url], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    try:
        complete = None
        for line in cli.stdout:  # the CLI prints the URL and code, then waits for the approval
            if line.startswith("(or open "):
                complete = line.strip()[len("(or open "):-1]
                break
        assert complete and "user_code=" in complete, "the CLI did not print the verification URL"
        page.goto(complete)
        page.wait_for_url(re.compile(r"/sign-in\?next="))
        email = f"cli-{uuid.uuid4().hex[:10]}@example.com"
        _sign_up(page, email)
        page.wait_for_url(re.compile(r"/device/?\?user_code="))
        page.locator("#approve").click()
        page.locator("#device-done").wait_for()
        out, err = cli.communicate(timeout=60)
    finally:
        if cli.poll() is None:
            cli.kill()
    assert cli.returncode == 0, err
    assert "Logged in to" in out
    credentials = tmp_path / "config" / "tollgate" / "credentials.json"
    assert credentials.stat().st_mode & 0o777 == 0o600
    whoami = subprocess.run([tollgate, "whoami", "--url", server.base_url], env=env, capture_output=True, text=True,
                            timeout=60)
    assert whoami.returncode == 0, whoami.stderr
    assert email in whoami.stdout
