"""Signing the CLI in and out (`tollgate login|logout`): the device flow (RFC 8628), the account key it
obtains, kept in the user's config directory, and the HTTP client every customer command talks through."""

from __future__ import annotations

import json
import os
import platform
import socket
import time
from dataclasses import dataclass
from functools import wraps
from pathlib import Path
from typing import Callable, Optional
from urllib.parse import urlsplit

import httpx
import typer
from authlib.oauth2.rfc8628 import DEVICE_CODE_GRANT_TYPE

from billing_core.keys import ACCOUNT_KEY_PREFIX, is_well_formed, masked

from .common import fail


DEFAULT_URL = "http://localhost:3000"
CLI_CLIENT_ID = "tollgate-cli"  # as registered in billing_core.services.device; the CLI needs no DB stack
USER_AGENT = f"tollgate-cli ({platform.system() or 'unknown'}; Python {platform.python_version()})"
TIMEOUT_S = 10.0
MAX_POLL_INTERVAL_S = 60
EXPIRED = "the code expired before it was approved; run `tollgate login` again"
URL_OPTION = typer.Option(None, "--url", envvar="TOLLGATE_URL", show_default=False,
                          help=f"The Tollgate server (default: where you logged in, else {DEFAULT_URL}).")


class CliError(Exception):
    """A failure to report as one line."""


class Timeout(CliError):
    """The portal did not answer in time (reported like any other failure, and distinguishable in tests)."""


class BadCredentials(CliError):
    """The credentials file exists but holds nothing usable."""


def one_line(func: Callable) -> Callable:
    """Every failure is one line on stderr and a non-zero exit, never a traceback."""

    @wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except CliError as exc:
            fail(str(exc))
        except KeyboardInterrupt:
            fail("interrupted", 130)
        except OSError as exc:
            fail(f"{exc.strerror or exc}{f': {exc.filename}' if exc.filename else ''}")
        except (typer.Exit, typer.Abort):
            raise
        except Exception as exc:  # e.g. a server answering in a shape this CLI does not know
            fail(f"unexpected {type(exc).__name__}: {_clip(exc)}")

    return wrapper


# -- the credentials file ------------------------------------------------------------------------
@dataclass(frozen=True)
class Credentials:
    url: str
    api_key: str


def credentials_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME", "")
    root = Path(base) if base and os.path.isabs(base) else Path.home() / ".config"  # XDG: relative is invalid
    return root / "tollgate" / "credentials.json"


def save_credentials(url: str, api_key: str) -> Path:
    path = credentials_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".credentials.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    # Born with 0600, so the key is never readable by others, not even between create and chmod.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump({"url": url, "api_key": api_key}, out)
    os.replace(tmp, path)
    return path


def load_credentials() -> Credentials:
    """The stored key, refused before any request when it is not a well-formed account key."""
    path = credentials_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CliError("not logged in; run `tollgate login` first") from None
    except (OSError, ValueError):
        raise BadCredentials(f"cannot read {path}; run `tollgate login` again") from None
    key, url = (data.get("api_key"), data.get("url")) if isinstance(data, dict) else (None, None)
    if not isinstance(key, str) or not is_well_formed(key, ACCOUNT_KEY_PREFIX):
        raise BadCredentials(f"the key in {path} is malformed (format or checksum); run `tollgate login` again")
    if not isinstance(url, str):
        raise BadCredentials(f"{path} names no server; run `tollgate login` again")
    return Credentials(url, key)


def show_key(key: str) -> str:
    return masked(key[: len(ACCOUNT_KEY_PREFIX) + 4], key[-4:])


# -- HTTP -------------------------------------------------------------------------------------------
def normalize_url(url: str) -> str:
    url = url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise CliError(f"--url must be an http(s) address such as {DEFAULT_URL}, got {url!r}")
    return url


def _json(response: httpx.Response) -> object:
    try:
        return response.json()
    except ValueError:
        return None


def _clip(text: object) -> str:
    return " ".join(str(text).split())[:300]


def describe(response: httpx.Response, what: str) -> str:
    """One line for a failed answer, from the API's error shape or the OAuth one."""
    body, status = _json(response), response.status_code
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and "message" in error:
        return f"{what} failed: {_clip(error['message'])} ({_clip(error.get('code', 'error'))}, HTTP {status})"
    if isinstance(error, str):
        return f"{what} failed: {_clip(body.get('error_description') or error)} ({_clip(error)}, HTTP {status})"
    if status >= 500:
        return f"{what} failed: the server had a problem (HTTP {status}); try again later"
    return f"{what} failed with HTTP {status} and no Tollgate error; is {response.url.host} a Tollgate server?"


class Api:
    def __init__(self, url: str, key: str | None = None) -> None:
        headers = {"User-Agent": USER_AGENT, **({"Authorization": f"Bearer {key}"} if key else {})}
        self.url, self.has_key = url, key is not None
        self.client = httpx.Client(base_url=url, timeout=TIMEOUT_S, headers=headers)

    def request(self, method: str, path: str, **kw) -> httpx.Response:
        try:
            return self.client.request(method, path, **kw)
        except httpx.TimeoutException:
            raise Timeout(f"{self.url} did not answer within {TIMEOUT_S:g} s") from None
        except httpx.ConnectError:
            raise CliError(f"cannot reach the Tollgate server at {self.url}") from None
        except httpx.HTTPError as exc:
            raise CliError(f"request to {self.url} failed: {_clip(exc) or type(exc).__name__}") from None

    def get(self, path: str, **params) -> dict:
        response = self.request("GET", path, params={k: v for k, v in params.items() if v is not None})
        body = _json(response)
        if response.status_code == 401 and self.has_key:
            raise CliError("the server refused the stored key (revoked or unknown); run `tollgate login` again")
        if not response.is_success or not isinstance(body, dict):
            raise CliError(describe(response, f"GET {path}"))
        return body


def signed_in(url_option: str | None) -> tuple[Credentials, Api]:
    creds = load_credentials()
    url = normalize_url(creds.url)
    if url_option is not None and normalize_url(url_option) != url:  # never send the key to another server
        raise CliError(f"logged in to {url}, not {normalize_url(url_option)}; run `tollgate login --url ...` first")
    return creds, Api(url, creds.api_key)


# -- login / logout --------------------------------------------------------------------------------
def poll_for_key(api: Api, device_code: str, interval: int, expires_in: int) -> str:
    """Poll the token endpoint as RFC 8628 section 3.5 asks: at the interval, +5 s on slow_down."""
    deadline = time.monotonic() + expires_in
    form = {"grant_type": DEVICE_CODE_GRANT_TYPE, "device_code": device_code, "client_id": CLI_CLIENT_ID}
    while True:
        time.sleep(interval)
        if time.monotonic() > deadline:
            raise CliError(EXPIRED)
        try:
            response = api.request("POST", "/oauth/token", data=form)
        except Timeout:
            interval = min(interval * 2, MAX_POLL_INTERVAL_S)  # section 3.5: back off after a timeout
            continue
        body = _json(response)
        if response.status_code == 200 and isinstance(body, dict) and isinstance(body.get("access_token"), str):
            return body["access_token"]
        if response.status_code == 429:
            wait = response.headers.get("retry-after", "")
            interval = max(interval, min(int(wait) if wait.isdigit() else interval, MAX_POLL_INTERVAL_S))
            continue
        error = body.get("error") if isinstance(body, dict) else None
        if error == "authorization_pending":
            continue
        if error == "slow_down":
            interval += 5
        elif error == "access_denied":
            raise CliError("the sign-in request was denied in the browser")
        elif error == "expired_token":
            raise CliError(EXPIRED)
        else:
            raise CliError(describe(response, "sign-in"))


@one_line
def login(url: Optional[str] = URL_OPTION) -> None:
    """Sign in through the browser (device flow) and store a new account key for this machine."""
    url = normalize_url(url or DEFAULT_URL)
    api = Api(url)
    device = (socket.gethostname() or "unknown host")[:100]
    response = api.request("POST", "/oauth/device/code", data={"client_id": CLI_CLIENT_ID, "device_name": device})
    start = _json(response)
    fields = ("device_code", "user_code", "verification_uri", "verification_uri_complete")
    if not response.is_success or not isinstance(start, dict) or not all(isinstance(start.get(f), str) for f in fields):
        raise CliError(describe(response, "starting the sign-in") if not response.is_success
                       else f"{url} answered the sign-in request in an unexpected shape")
    interval = start.get("interval") if isinstance(start.get("interval"), int) else 5
    expires_in = start.get("expires_in") if isinstance(start.get("expires_in"), int) else 600
    typer.echo(f"To sign in, open {start['verification_uri']} and enter the code: {start['user_code']}")
    typer.echo(f"(or open {start['verification_uri_complete']})")
    typer.echo(f"Waiting for approval; the code expires in {max(1, expires_in // 60)} minutes...")
    key = poll_for_key(api, start["device_code"], min(max(interval, 1), MAX_POLL_INTERVAL_S), expires_in)
    if not is_well_formed(key, ACCOUNT_KEY_PREFIX):
        raise CliError(f"{url} answered with a malformed key; nothing was saved")
    try:
        previous = load_credentials()
    except CliError:
        previous = None
    path = save_credentials(url, key)
    typer.echo(f"Logged in to {url}. Key {show_key(key)} saved in {path}.")
    if previous and previous.url == url and previous.api_key != key:
        try:  # the replaced key would otherwise stay active with nobody holding it
            typer.echo(f"The previous key {show_key(previous.api_key)} "
                       f"{revoke_on_server(Api(url, previous.api_key), previous.api_key)}.")
        except CliError as exc:
            typer.echo(f"tollgate: the previous key {show_key(previous.api_key)} is still active ({exc}); "
                       "revoke it in the portal", err=True)


def revoke_on_server(api: Api, key: str) -> str:
    """Revoke the key the CLI holds (found by prefix and last 4); what happened, for a person."""
    prefix, last4, cursor = key[: len(ACCOUNT_KEY_PREFIX) + 4], key[-4:], None
    for _ in range(50):
        response = api.request("GET", "/api/v1/keys", params={"limit": 500, **({"cursor": cursor} if cursor else {})})
        if response.status_code == 401:
            return "was already revoked"
        page = _json(response)
        if response.status_code in (404, 405):
            raise CliError(f"{api.url} has no /api/v1/keys endpoint")
        if not response.is_success or not isinstance(page, dict) or not isinstance(page.get("data"), list):
            raise CliError(describe(response, "GET /api/v1/keys"))
        for item in page["data"]:
            if isinstance(item, dict) and item.get("prefix") == prefix and item.get("last4") == last4:
                gone = api.request("DELETE", f"/api/v1/keys/{item['id']}")
                if not gone.is_success:
                    raise CliError(describe(gone, "DELETE /api/v1/keys/..."))
                return "is revoked"
        cursor = page.get("next_cursor")
        if not cursor:
            break
    raise CliError("the key is not in the account's key list")


@one_line
def logout(url: Optional[str] = URL_OPTION) -> None:
    """Revoke this machine's key on the server and delete it from the config directory."""
    path = credentials_path()
    if not path.exists():
        raise CliError("not logged in")
    try:
        creds, api = signed_in(url)
    except BadCredentials:
        path.unlink(missing_ok=True)  # an unusable key cannot be revoked, only forgotten
        typer.echo(f"Removed {path}; its key was unusable, so nothing was revoked.")
        return
    try:
        outcome, problem = revoke_on_server(api, creds.api_key), None
    except CliError as exc:
        outcome, problem = None, str(exc)
    path.unlink(missing_ok=True)
    if problem:
        raise CliError(f"logged out locally, but key {show_key(creds.api_key)} could not be revoked ({problem}); "
                       "revoke it in the portal")
    typer.echo(f"Logged out of {api.url}; key {show_key(creds.api_key)} {outcome}.")
