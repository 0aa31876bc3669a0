"""Secrets at rest: AES-256-GCM under a keyring, bound to their row by associated data.

A ciphertext reads `v1.<key id>.<base64url(nonce + sealed)>`. The first key of the ring seals; every key
opens, so keys rotate by putting a new one first, re-sealing every row, then dropping the old one.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .errors import ServiceError

NONCE_BYTES = 12
DERIVED = "derived"  # a keyring entry whose key comes from a secret key (how installs began, before keyrings)


class SecretError(ServiceError, ValueError):
    """A ciphertext that cannot be opened: unknown key, tampered, or moved to another row. An answer, not a
    crash: the ring lacks a key the row needs (docs/security.md, "Rotate the encryption keys")."""

    status, code = 409, "secret_unreadable"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def associated_data(purpose: str, account_id: str, project_id: str) -> bytes:
    """Binds a ciphertext to its tenant, project and use, so a copy into another row fails to open."""
    return f"tollgate:{purpose}:{account_id}:{project_id}".encode()


def derive_key(secret_key: str) -> bytes:
    """The 32-byte key an install without a keyring used to derive from its secret key."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"tollgate-at-rest-v1",
                info=b"secrets").derive(secret_key.encode())


@dataclass(frozen=True)
class Keyring:
    keys: tuple[tuple[str, bytes], ...]  # (key id, 32-byte key), primary first

    @classmethod
    def parse(cls, spec: str, *, derive_from: str | None = None) -> "Keyring":
        """`id:base64key,id:base64key`, primary first (TOLLGATE_ENCRYPTION_KEYS).

        An entry `id:derived` stands for the key that installs without a keyring once derived from their
        secret key (`derive_from`), so such an install can open its old rows while it rotates off it."""
        keys = []
        for item in filter(None, (part.strip() for part in spec.split(","))):
            key_id, sep, encoded = item.partition(":")
            if not sep or not key_id.isalnum():
                raise ValueError("each encryption key is written `id:base64key`, the id letters and digits")
            if encoded == DERIVED:
                if not derive_from:
                    raise ValueError(f"encryption key {key_id!r} is `derived` but there is no secret key to "
                                     "derive it from")
                keys.append((key_id, derive_key(derive_from)))
                continue
            raw = _unb64(encoded)
            if len(raw) != 32:
                raise ValueError(f"encryption key {key_id!r} must be 32 bytes (base64 of 32 random bytes)")
            keys.append((key_id, raw))
        if not keys:
            raise ValueError("at least one encryption key is needed")
        if len({k for k, _ in keys}) != len(keys):
            raise ValueError("encryption key ids must be distinct")
        return cls(tuple(keys))

    @property
    def primary_id(self) -> str:
        return self.keys[0][0]

    def seal(self, plaintext: str, aad: bytes) -> str:
        key_id, key = self.keys[0]
        nonce = os.urandom(NONCE_BYTES)
        return f"v1.{key_id}.{_b64(nonce + AESGCM(key).encrypt(nonce, plaintext.encode(), aad))}"

    def open(self, ciphertext: str, aad: bytes) -> str:
        try:
            version, key_id, body = ciphertext.split(".", 2)
        except ValueError:
            raise SecretError("This value is not a sealed Tollgate secret.") from None
        key = dict(self.keys).get(key_id)
        if version != "v1" or key is None:
            raise SecretError(f"This secret was sealed with key {key_id!r}, which is not in this server's keyring.")
        try:
            raw = _unb64(body)
            return AESGCM(key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], aad).decode()
        except (InvalidTag, ValueError):  # binascii.Error is a ValueError: a mangled body
            raise SecretError("This secret does not open here (tampered with, or copied from another row).") from None

    def needs_reseal(self, ciphertext: str) -> bool:
        return not ciphertext.startswith(f"v1.{self.primary_id}.")


def new_key_spec(key_id: str) -> str:
    """A fresh `id:base64key` entry for TOLLGATE_ENCRYPTION_KEYS."""
    return f"{key_id}:{_b64(os.urandom(32))}"
