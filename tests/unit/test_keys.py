"""Account keys: format, offline checksum, and a stored form that holds no usable key."""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import fields

import pytest

from billing_core.keys import ACCOUNT_KEY_PREFIX, ALPHABET, HMAC_KEY_PREFIX, StoredKey, checksum, generate, \
    is_well_formed, masked, stored_form

KEY_SHAPE = re.compile(r"ak_live_[0-9A-Za-z]{32}[0-9A-Za-z]{6}")
# Fixed keys so the mutation tests do not depend on the random generator.
FIXED_BODIES = ["0" * 32, "z" * 32, "AbCdEfGhIjKlMnOpQrStUvWxYz012345", "q1W2e3R4t5Y6u7I8o9P0aSdFgHjKlZxC"]
FIXED_KEYS = [ACCOUNT_KEY_PREFIX + body + checksum(body) for body in FIXED_BODIES]


def test_alphabet_is_base62():
    assert len(ALPHABET) == len(set(ALPHABET)) == 62
    assert set(ALPHABET) == set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


def test_generated_account_key_is_prefix_32_base62_and_a_6_character_checksum():
    key = generate(ACCOUNT_KEY_PREFIX)
    assert KEY_SHAPE.fullmatch(key), key
    assert len(key) == len("ak_live_") + 32 + 6
    body = key[len(ACCOUNT_KEY_PREFIX):-6]
    assert key[-6:] == checksum(body)
    assert is_well_formed(key, ACCOUNT_KEY_PREFIX)


def test_generated_keys_are_distinct():
    keys = {generate(ACCOUNT_KEY_PREFIX) for _ in range(500)}
    assert len(keys) == 500
    assert all(is_well_formed(k, ACCOUNT_KEY_PREFIX) for k in keys)


def test_checksum_is_six_base62_characters():
    for body in FIXED_BODIES:
        assert len(checksum(body)) == 6
        assert set(checksum(body)) <= set(ALPHABET)


@pytest.mark.parametrize("key", FIXED_KEYS)
def test_every_single_character_substitution_is_rejected(key):
    assert is_well_formed(key, ACCOUNT_KEY_PREFIX)
    mutated = 0
    for i in range(len(key)):
        for c in ALPHABET + "_-":
            if c != key[i]:
                typo = key[:i] + c + key[i + 1:]
                assert not is_well_formed(typo, ACCOUNT_KEY_PREFIX), typo
                mutated += 1
    assert mutated > 2_000


def test_random_single_character_typos_in_generated_keys_are_rejected():
    rng = random.Random(20260115)
    for _ in range(400):
        key = generate(ACCOUNT_KEY_PREFIX)
        i = rng.randrange(len(key))
        c = rng.choice([ch for ch in ALPHABET if ch != key[i]])
        assert not is_well_formed(key[:i] + c + key[i + 1:], ACCOUNT_KEY_PREFIX)


@pytest.mark.parametrize("key", FIXED_KEYS)
def test_adjacent_transpositions_deletions_and_insertions_are_rejected(key):
    for i in range(len(key) - 1):
        if key[i] != key[i + 1]:
            assert not is_well_formed(key[:i] + key[i + 1] + key[i] + key[i + 2:], ACCOUNT_KEY_PREFIX)
    for i in range(len(key)):
        assert not is_well_formed(key[:i] + key[i + 1:], ACCOUNT_KEY_PREFIX)
        assert not is_well_formed(key[:i] + "7" + key[i:], ACCOUNT_KEY_PREFIX)


def test_wrong_prefix_is_rejected():
    key = FIXED_KEYS[2]
    rest = key[len(ACCOUNT_KEY_PREFIX):]
    for prefix in ("hk_live_", "ak_test_", "AK_LIVE_", "ak-live-", "", "ak_live"):
        assert not is_well_formed(prefix + rest, ACCOUNT_KEY_PREFIX), prefix
    assert not is_well_formed(key, HMAC_KEY_PREFIX)


def test_hmac_key_prefix_validates_with_its_own_prefix():
    key = generate(HMAC_KEY_PREFIX)
    assert key.startswith("hk_live_")
    assert is_well_formed(key, HMAC_KEY_PREFIX)
    assert not is_well_formed(key, ACCOUNT_KEY_PREFIX)


def test_wrong_length_is_rejected():
    key = FIXED_KEYS[3]
    assert not is_well_formed(key[:-1], ACCOUNT_KEY_PREFIX)
    assert not is_well_formed(key + "0", ACCOUNT_KEY_PREFIX)
    assert not is_well_formed(ACCOUNT_KEY_PREFIX, ACCOUNT_KEY_PREFIX)
    short_body = "a" * 31
    assert not is_well_formed(ACCOUNT_KEY_PREFIX + short_body + checksum(short_body), ACCOUNT_KEY_PREFIX)
    long_body = "a" * 33
    assert not is_well_formed(ACCOUNT_KEY_PREFIX + long_body + checksum(long_body), ACCOUNT_KEY_PREFIX)


@pytest.mark.parametrize("bad", ["-", "_", " ", "é", "٣", "+", "/", "="])
def test_non_base62_characters_are_rejected(bad):
    body = bad + "a" * 31
    assert not is_well_formed(ACCOUNT_KEY_PREFIX + body + "AAAAAA", ACCOUNT_KEY_PREFIX)
    assert not is_well_formed(FIXED_KEYS[0][:-1] + bad, ACCOUNT_KEY_PREFIX)


@pytest.mark.parametrize("not_text", [None, 12345, b"ak_live_" + b"0" * 38, ["ak_live_"]])
def test_non_strings_are_not_well_formed(not_text):
    assert is_well_formed(not_text, ACCOUNT_KEY_PREFIX) is False


def test_stored_form_keeps_only_the_sha256_hash_the_prefix_and_the_last_four():
    key = FIXED_KEYS[3]
    stored = stored_form(key)
    assert {f.name for f in fields(StoredKey)} == {"key_hash", "prefix", "last4"}
    assert stored.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert stored.prefix.startswith(ACCOUNT_KEY_PREFIX)
    assert key.startswith(stored.prefix)
    assert stored.last4 == key[-4:]
    body = key[len(ACCOUNT_KEY_PREFIX):-6]
    dumped = repr(stored) + "".join(str(getattr(stored, f.name)) for f in fields(StoredKey))
    assert key not in dumped and body not in dumped
    # What is kept besides the hash is a small part of the key.
    assert len(stored.prefix) - len(ACCOUNT_KEY_PREFIX) + len(stored.last4) <= 8


def test_stored_form_of_different_keys_hash_differently():
    assert len({stored_form(k).key_hash for k in FIXED_KEYS}) == len(FIXED_KEYS)


def test_masked_shows_prefix_and_last_four():
    stored = stored_form(FIXED_KEYS[2])
    text = masked(stored.prefix, stored.last4)
    assert text == f"{stored.prefix}...{stored.last4}"
    assert FIXED_KEYS[2] not in text
