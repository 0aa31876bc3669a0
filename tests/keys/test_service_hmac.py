"""Project HMAC keys: sealed at rest, revealed to the owner, rotated with a 24-hour grace, verified in
constant time. On SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta

import pytest

from billing_core.crypto import associated_data
from billing_core.db.engine import read_session
from billing_core.db.models import Project
from billing_core.keys import HMAC_KEY_PREFIX, is_well_formed
from billing_core.services import projects
from billing_core.services.projects import reveal_hmac_key, rotate_hmac_key, verify_hmac_signature

from ..conftest import T0
from ..factories import make_account
from .helpers import activity_kinds, activity_texts

MESSAGE = b'{"event":"run.finished","run_id":"run_1"}'


def sign(secret: str, message: bytes = MESSAGE) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def _row(billing, project_id: str) -> Project:
    with read_session(billing.engine) as session:
        return session.get(Project, project_id)


def test_a_new_accounts_default_project_gets_an_hmac_key_sealed_to_its_tenant_and_project(billing):
    account = make_account(billing)
    row = _row(billing, account.project_id)
    secret = billing.keyring.open(row.hmac_ciphertext, associated_data("hmac", account.account_id, row.id))
    assert is_well_formed(secret, HMAC_KEY_PREFIX)
    assert row.hmac_ciphertext.startswith("v1.k1.") and secret not in row.hmac_ciphertext
    assert (row.hmac_prefix, row.hmac_last4) == (secret[:12], secret[-4:])
    assert reveal_hmac_key(billing, account.account_id, account.project_id) == secret
    assert "hmac_key_created" in activity_kinds(billing, account.account_id)


def test_every_project_gets_its_own_hmac_key(billing):
    account = make_account(billing, plan="pro")
    made = [projects.create_project(billing, account.account_id, name=f"p{i}", now=T0) for i in range(3)]
    secrets = {reveal_hmac_key(billing, account.account_id, p.id) for p in made}
    assert len(secrets) == 3 and reveal_hmac_key(billing, account.account_id, account.project_id) not in secrets
    assert activity_kinds(billing, account.account_id).count("hmac_key_created") == 4


def test_the_current_key_verifies_and_a_wrong_key_or_message_does_not(billing):
    account = make_account(billing)
    secret = reveal_hmac_key(billing, account.account_id, account.project_id)
    assert verify_hmac_signature(billing, account.project_id, MESSAGE, sign(secret), T0)
    assert verify_hmac_signature(billing, account.project_id, MESSAGE, sign(secret).upper(), T0)
    assert not verify_hmac_signature(billing, account.project_id, MESSAGE + b" ", sign(secret), T0)
    assert not verify_hmac_signature(billing, account.project_id, MESSAGE, sign(secret + "x"), T0)


def test_after_a_rotation_both_keys_verify_during_the_grace_and_only_the_new_one_after(billing):
    account = make_account(billing)
    old = reveal_hmac_key(billing, account.account_id, account.project_id)
    rotated = rotate_hmac_key(billing, account.account_id, account.project_id, now=T0)
    new = rotated.secret
    assert new != old and is_well_formed(new, HMAC_KEY_PREFIX)
    assert rotated.hmac_key == {"prefix": new[:12], "last4": new[-4:], "rotated_at": "2026-01-15T12:00:00Z",
                                "previous_valid_until": "2026-01-16T12:00:00Z"}
    assert reveal_hmac_key(billing, account.account_id, account.project_id) == new
    for moment in (T0, T0 + timedelta(hours=23, minutes=59)):
        assert verify_hmac_signature(billing, account.project_id, MESSAGE, sign(old), moment)
        assert verify_hmac_signature(billing, account.project_id, MESSAGE, sign(new), moment)
    for moment in (T0 + timedelta(hours=24), T0 + timedelta(days=30)):
        assert not verify_hmac_signature(billing, account.project_id, MESSAGE, sign(old), moment)
        assert verify_hmac_signature(billing, account.project_id, MESSAGE, sign(new), moment)
    assert "hmac_key_rotated" in activity_kinds(billing, account.account_id)
    texts = activity_texts(billing, account.account_id)
    assert old not in texts and new not in texts


def test_a_second_rotation_within_the_grace_ends_the_first_key_at_once(billing):
    account = make_account(billing)
    first = reveal_hmac_key(billing, account.account_id, account.project_id)
    second = rotate_hmac_key(billing, account.account_id, account.project_id, now=T0).secret
    third = rotate_hmac_key(billing, account.account_id, account.project_id, now=T0 + timedelta(hours=1)).secret
    at = T0 + timedelta(hours=2)
    assert not verify_hmac_signature(billing, account.project_id, MESSAGE, sign(first), at)
    assert verify_hmac_signature(billing, account.project_id, MESSAGE, sign(second), at)
    assert verify_hmac_signature(billing, account.project_id, MESSAGE, sign(third), at)
    assert _row(billing, account.project_id).previous_hmac_valid_until == T0 + timedelta(hours=25)


@pytest.mark.parametrize("signature", ["", "zz" * 32, "ab" * 31, "ab" * 33, " " + "ab" * 32, None, 12])
def test_a_signature_that_is_not_64_hex_digits_never_verifies(billing, signature):
    account = make_account(billing)
    assert verify_hmac_signature(billing, account.project_id, MESSAGE, signature, T0) is False


def test_a_deleted_or_unknown_project_verifies_nothing(billing):
    account = make_account(billing)
    secret = reveal_hmac_key(billing, account.account_id, account.project_id)
    projects.delete_project(billing, account.account_id, account.project_id, now=T0)
    assert not verify_hmac_signature(billing, account.project_id, MESSAGE, sign(secret), T0)
    assert not verify_hmac_signature(billing, "prj_" + "Z" * 20, MESSAGE, sign(secret), T0)
    assert not verify_hmac_signature(billing, "prj\x00", MESSAGE, sign(secret), T0)


def test_an_hmac_ciphertext_copied_to_another_project_does_not_open(billing):
    a, b = make_account(billing), make_account(billing)
    row_a = _row(billing, a.project_id)
    with pytest.raises(Exception) as refused:
        billing.keyring.open(row_a.hmac_ciphertext, associated_data("hmac", b.account_id, b.project_id))
    assert type(refused.value).__name__ == "SecretError"


def test_a_signature_or_project_id_with_a_trailing_newline_is_refused(billing):
    account = make_account(billing)
    signature = sign(reveal_hmac_key(billing, account.account_id, account.project_id))
    assert not verify_hmac_signature(billing, account.project_id, MESSAGE, signature + "\n", T0)
    assert not verify_hmac_signature(billing, account.project_id + "\n", MESSAGE, signature, T0)


def test_the_grace_ends_exactly_at_the_time_shown_to_the_customer(billing):
    account = make_account(billing)
    old = reveal_hmac_key(billing, account.account_id, account.project_id)
    at = T0 + timedelta(microseconds=123_456)
    shown = rotate_hmac_key(billing, account.account_id, account.project_id, now=at).hmac_key
    assert shown["previous_valid_until"] == "2026-01-16T12:00:00.123Z"
    end = T0 + timedelta(days=1, microseconds=123_000)
    assert verify_hmac_signature(billing, account.project_id, MESSAGE, sign(old), end - timedelta(microseconds=1))
    assert not verify_hmac_signature(billing, account.project_id, MESSAGE, sign(old), end)
