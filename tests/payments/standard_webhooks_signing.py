"""Standard Webhooks signing, written from the spec (standard-webhooks/standard-webhooks, spec/standard-webhooks.md),
independent of the `standardwebhooks` package the SDKs use, so that a test signing with it checks the receiver
against the scheme rather than against a copy of the receiver's own code.

The scheme: a secret is `whsec_` + base64 of the key bytes; the signed content is `{msg_id}.{timestamp}.{body}`
(timestamp in whole Unix seconds, body the exact bytes sent); the signature is HMAC-SHA256 of that content with the
key, sent as `v1,<base64>` in `webhook-signature` (several may be sent, separated by spaces), beside `webhook-id`
and `webhook-timestamp`. Tests use it to sign deliveries for the Dodo adapter and the sandbox provider.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SECRET_PREFIX = "whsec_"


def new_secret(key_bytes: int = 32) -> str:
    """A fresh `whsec_...` secret (the spec asks for 24 to 64 random bytes)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(key_bytes)).decode("ascii")


def _key(secret: str) -> bytes:
    raw = secret[len(SECRET_PREFIX):] if secret.startswith(SECRET_PREFIX) else secret
    return base64.b64decode(raw, validate=True)


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `v1,<base64>` signature of `body` sent as message `msg_id` at Unix second `timestamp`."""
    if not isinstance(body, bytes):
        raise TypeError("body is the exact bytes sent")
    content = f"{msg_id}.{int(timestamp)}.".encode() + body
    digest = hmac.new(_key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers for one delivery of `body`."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(timestamp)),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
    }
