"""Stripe's webhook signature scheme, written from its documentation rather than taken from the SDK, so that the
adapter's verification (which is the SDK's) is checked against a second reading of the scheme: the signed payload
is `{t}.{raw body}`, its HMAC-SHA256 keyed with the endpoint's whole signing secret (`whsec_...`) in lowercase
hex, sent as `Stripe-Signature: t=<unix seconds>,v1=<hex>`."""

from __future__ import annotations

import hashlib
import hmac


def signature(body: bytes, secret: str, timestamp: int) -> str:
    """The v1 signature of `body` signed at `timestamp`."""
    return hmac.new(secret.encode("utf-8"), str(timestamp).encode("ascii") + b"." + body, hashlib.sha256).hexdigest()


def sign(body: bytes, secret: str, timestamp: int) -> str:
    """The Stripe-Signature header value for `body` signed at `timestamp`."""
    return f"t={timestamp},v1={signature(body, secret, timestamp)}"


def signed_headers(body: bytes, secret: str, timestamp: int) -> dict[str, str]:
    """The headers Stripe sends with a delivery of `body`."""
    return {"Content-Type": "application/json; charset=utf-8", "Stripe-Signature": sign(body, secret, timestamp)}
