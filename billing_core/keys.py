"""Secret key formats: generation, offline checksum validation and hashing for storage."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
import zlib
from dataclasses import dataclass

ALPHABET = string.digits + string.ascii_uppercase + string.ascii_lowercase  # base62
_ALPHABET_SET = frozenset(ALPHABET)
BODY_LEN, CHECKSUM_LEN = 32, 6
ACCOUNT_KEY_PREFIX = "ak_live_"
HMAC_KEY_PREFIX = "hk_live_"


def _base62(number: int, width: int) -> str:
    digits = []
    for _ in range(width):
        number, rem = divmod(number, 62)
        digits.append(ALPHABET[rem])
    return "".join(reversed(digits))


def checksum(body: str) -> str:
    """Six base62 characters from CRC32 of the body, enough to catch any typo offline."""
    return _base62(zlib.crc32(body.encode("ascii")), CHECKSUM_LEN)


def generate(prefix: str) -> str:
    body = "".join(secrets.choice(ALPHABET) for _ in range(BODY_LEN))
    return f"{prefix}{body}{checksum(body)}"


def is_well_formed(key: str, prefix: str) -> bool:
    """True when the key has the prefix, the length, the alphabet and a matching checksum."""
    if not isinstance(key, str) or not key.startswith(prefix):
        return False
    rest = key[len(prefix):]
    if len(rest) != BODY_LEN + CHECKSUM_LEN or not _ALPHABET_SET.issuperset(rest):
        return False
    return hmac.compare_digest(checksum(rest[:BODY_LEN]), rest[BODY_LEN:])


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class StoredKey:
    """What the database keeps of an account key: never the key itself."""

    key_hash: str
    prefix: str
    last4: str


def stored_form(key: str) -> StoredKey:
    return StoredKey(key_hash=hash_key(key), prefix=key[: len(ACCOUNT_KEY_PREFIX) + 4], last4=key[-4:])


def masked(prefix: str, last4: str) -> str:
    return f"{prefix}...{last4}"
