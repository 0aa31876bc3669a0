"""Re-sealing every secret under a new primary key, at the service level, on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import select

from billing_core.crypto import Keyring, SecretError, associated_data, new_key_spec
from billing_core.db.engine import read_session
from billing_core.db.models import Project
from billing_core.db.workloads import ProviderKey
from billing_core.services import projects
from billing_core.services.context import Billing
from billing_core.services.provider_keys import set_provider_key
from billing_core.services.secrets_rotation import reseal_all

from ..conftest import T0
from ..factories import make_account

OPENAI = "sk-proj-" + "Q9r8S7t6" * 8 + "abcd"


def _ciphertexts(billing) -> list[str]:
    with read_session(billing.engine) as session:
        hmac_rows = session.execute(select(Project.hmac_ciphertext, Project.previous_hmac_ciphertext)).all()
        provider = session.execute(select(ProviderKey.ciphertext)).scalars().all()
    return [c for row in hmac_rows for c in row if c] + list(provider)


def test_resealing_moves_every_secret_to_the_primary_key_and_a_second_run_changes_nothing(billing):
    account = make_account(billing)
    old_current = projects.reveal_hmac_key(billing, account.account_id, account.project_id)
    new_current = projects.rotate_hmac_key(billing, account.account_id, account.project_id, now=T0).secret
    set_provider_key(billing, account.account_id, account.project_id, "openai", key=OPENAI, now=T0)
    new_spec = new_key_spec("k2")
    # The new key first (it seals), the old one after it (it still opens): TOLLGATE_ENCRYPTION_KEYS="k2:...,k1:..."
    rotated = Billing(billing.engine, billing.catalog,
                      Keyring((Keyring.parse(new_spec).keys[0], *billing.keyring.keys)))
    progress = []
    result = reseal_all(rotated, on_total=progress.append, on_progress=progress.append, batch_size=1)
    assert (result.total, result.resealed, result.current, result.failed) == (3, 3, 0, ())
    assert progress == [3, 1, 1, 1]
    assert all(c.startswith("v1.k2.") for c in _ciphertexts(billing))

    only_new = Billing(billing.engine, billing.catalog, Keyring.parse(new_spec))
    assert projects.reveal_hmac_key(only_new, account.account_id, account.project_id) == new_current
    with read_session(billing.engine) as session:
        row = session.get(Project, account.project_id)
    aad = associated_data("hmac", account.account_id, account.project_id)
    assert only_new.keyring.open(row.previous_hmac_ciphertext, aad) == old_current
    assert reseal_all(rotated) == type(result)(total=3, resealed=0, current=3, failed=())


def test_a_secret_no_key_opens_is_reported_and_left_as_it_was(billing):
    account = make_account(billing)
    before = _ciphertexts(billing)
    stranger = Billing(billing.engine, billing.catalog, Keyring.parse(new_key_spec("k9")))
    result = reseal_all(stranger)
    assert result.resealed == 0 and result.failed == (f"projects.hmac_ciphertext {account.project_id}",)
    assert _ciphertexts(billing) == before
    try:
        stranger.keyring.open(before[0], associated_data("hmac", account.account_id, account.project_id))
    except SecretError:
        pass
    else:
        raise AssertionError("a foreign keyring opened the secret")
