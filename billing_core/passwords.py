"""Passwords: the rules a new one must meet, and Argon2id hashing (argon2-cffi) to store and check it."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 12
MAX_LENGTH = 128  # Argon2 takes any length; a bound keeps a hostile form post cheap
MIN_DISTINCT = 5
MIN_KINDS = 2

# One sentence per rule, shown on the sign-up form and in docs/identity.md.
RULES = (
    f"{MIN_LENGTH} to {MAX_LENGTH} characters.",
    f"At least {MIN_KINDS} kinds of character: lowercase, uppercase, digits, symbols or spaces.",
    f"At least {MIN_DISTINCT} different characters.",
    "Not your email address, and not containing its name part.",
)

# argon2-cffi's defaults are RFC 9106's low-memory profile (Argon2id, t=3, m=64 MiB, p=4).
_hasher = PasswordHasher()


@dataclass(frozen=True)
class PasswordProblem:
    code: str
    message: str


def _normalize(password: str) -> str:
    # NFKC so the same password typed on two keyboards (composed or decomposed accents) is one password.
    return unicodedata.normalize("NFKC", password)


def _kinds(password: str) -> int:
    return sum((any(c.islower() for c in password), any(c.isupper() for c in password),
                any(c.isdigit() for c in password), any(not c.isalnum() for c in password)))


def check_password(password: str, *, email: str) -> PasswordProblem | None:
    """The first rule the password breaks, or None when it may be used."""
    password = _normalize(password or "")
    if len(password) < MIN_LENGTH:
        return PasswordProblem("password_too_short", f"Use at least {MIN_LENGTH} characters.")
    if len(password) > MAX_LENGTH:
        return PasswordProblem("password_too_long", f"Use at most {MAX_LENGTH} characters.")
    if _kinds(password) < MIN_KINDS:
        return PasswordProblem("password_one_kind", "Mix at least two kinds of character: lowercase, "
                                                    "uppercase, digits, symbols or spaces.")
    if len(set(password)) < MIN_DISTINCT:
        return PasswordProblem("password_repetitive", f"Use at least {MIN_DISTINCT} different characters.")
    lowered, email = password.casefold(), (email or "").strip().casefold()
    local = email.partition("@")[0]
    if email and (email in lowered or (len(local) >= 3 and local in lowered)):
        return PasswordProblem("password_contains_email", "Do not use your email address in your password.")
    return None


def hash_password(password: str) -> str:
    """An Argon2id hash string (salt and parameters included) to store instead of the password."""
    return _hasher.hash(_normalize(password))


def verify_password(stored_hash: str, password: str) -> bool:
    """True when the password matches; a malformed hash is a mismatch, never an exception."""
    try:
        return _hasher.verify(stored_hash, _normalize(password))
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    """True when the hash was made with weaker parameters than today's; rehash at the next sign-in."""
    try:
        return _hasher.check_needs_rehash(stored_hash)
    except InvalidHashError:
        return True


# Verified against when the email is unknown, so an unknown email costs the same time as a wrong password.
DUMMY_HASH = hash_password("tollgate dummy password, never matches anything")
