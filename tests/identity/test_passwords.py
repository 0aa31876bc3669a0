"""Password rules and Argon2id hashing (billing_core/passwords.py)."""

from __future__ import annotations

import pytest

from billing_core.passwords import (MAX_LENGTH, check_password, hash_password, needs_rehash, verify_password)

EMAIL = "ada.lovelace@example.com"


@pytest.mark.parametrize("password, code", [
    ("Short1!", "password_too_short"),
    ("x" * (MAX_LENGTH - 3) + "Ab1!", "password_too_long"),
    ("alllowercaseletters", "password_one_kind"),
    ("123456789012345", "password_one_kind"),
    ("abababababab12", "password_repetitive"),
    ("my ada.lovelace@example.com", "password_contains_email"),
    ("Ada.Lovelace-1843", "password_contains_email"),
])
def test_a_password_breaking_a_rule_is_refused_with_that_rule(password, code):
    problem = check_password(password, email=EMAIL)
    assert problem is not None and problem.code == code and problem.message


@pytest.mark.parametrize("password", ["correct horse battery", "Tr0ub4dor&3xyz", "difference engine 1843"])
def test_a_password_meeting_every_rule_is_accepted(password):
    assert check_password(password, email=EMAIL) is None


def test_the_hash_is_argon2id_salted_and_never_the_password():
    first, second = hash_password("correct horse battery"), hash_password("correct horse battery")
    assert first.startswith("$argon2id$") and "correct horse" not in first
    assert first != second  # a fresh salt each time
    assert verify_password(first, "correct horse battery") and verify_password(second, "correct horse battery")
    assert not verify_password(first, "correct horse batterx")
    assert not needs_rehash(first)


def test_a_malformed_stored_hash_is_a_mismatch_not_an_exception():
    assert verify_password("not-a-hash", "anything at all") is False
    assert needs_rehash("not-a-hash") is True


def test_the_same_password_typed_composed_or_decomposed_is_one_password():
    stored = hash_password("caf\u00e9 au lait 42")
    assert verify_password(stored, "cafe\u0301 au lait 42")
