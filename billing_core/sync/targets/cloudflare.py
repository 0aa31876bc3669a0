"""The Cloudflare v4 REST API as the sync targets use it: one httpx.Client, a Bearer token, and its errors
turned into TargetError (429 and 5xx: transient, with Retry-After; other 4xx: not transient)."""

from __future__ import annotations

from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

import httpx

from .base import TargetError

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0)


def new_http_client() -> httpx.Client:
    """The one client for every outbound call of the sync: bounded timeouts, no redirects followed."""
    return httpx.Client(timeout=DEFAULT_TIMEOUT, follow_redirects=False)


def retry_after_s(value: str | None) -> float | None:
    """Retry-After as seconds: either a number of seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    seconds = _number(value)
    if seconds is not None:
        return max(0.0, seconds)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None  # not seconds: an HTTP date, or nonsense


def _errors(response: httpx.Response) -> str:
    try:
        body = response.json()
        errors = body.get("errors") or []
        text = "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors if isinstance(e, dict))
        return text or response.text[:200]
    except ValueError:
        return response.text[:200]


class CloudflareApi:
    def __init__(self, http: httpx.Client, *, base: str, account_id: str, api_token: str, what: str) -> None:
        self.http, self.what = http, what
        self.account_url = f"{base.rstrip('/')}/accounts/{account_id}"
        self._headers = {"Authorization": f"Bearer {api_token}"}

    def call(self, method: str, path: str, *, json=None, params: dict | None = None) -> httpx.Response:
        """The response of a successful call (2xx and `success: true`); anything else raises TargetError."""
        try:
            response = self.http.request(method, self.account_url + path, json=json, params=params,
                                         headers=self._headers)
        except httpx.HTTPError as exc:  # connection refused, timeout, TLS...
            raise TargetError(f"{self.what}: {type(exc).__name__}: {exc}") from exc
        status = response.status_code
        if status == 429 or status >= 500:
            raise TargetError(f"{self.what}: HTTP {status}: {_errors(response)}",
                              retry_after_s=retry_after_s(response.headers.get("Retry-After")))
        if status >= 400:
            raise TargetError(f"{self.what}: HTTP {status}: {_errors(response)}", transient=False,
                              retry_after_s=retry_after_s(response.headers.get("Retry-After")))
        try:
            body = response.json()
        except ValueError:
            raise TargetError(f"{self.what}: HTTP {status} without a JSON body") from None
        if not isinstance(body, dict) or body.get("success") is False:
            raise TargetError(f"{self.what}: the API answered success=false: {_errors(response)}")
        return response

    def result(self, method: str, path: str, **kw):
        return self.call(method, path, **kw).json().get("result")
