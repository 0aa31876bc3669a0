"""`tollgate admin rotate-secrets`, run as a real subprocess on a real SQLite database."""

from __future__ import annotations

import os
import subprocess

import pytest
from sqlalchemy import select

from billing_core.crypto import Keyring, associated_data, new_key_spec
from billing_core.db.engine import make_engine, read_session
from billing_core.db.models import Project
from billing_core.db.workloads import ProviderKey
from billing_core.services import projects
from billing_core.services.context import Billing
from billing_core.services.provider_keys import set_provider_key

from ..conftest import T0
from ..factories import make_account
from .live import BIN

ANTHROPIC = "sk-ant-api03-" + "Zy98Xw76" * 10 + "-AAAA"
OPENAI = "sk-proj-" + "Mn54Op32" * 8 + "BBBB"


@pytest.fixture
def old_spec() -> str:
    return new_key_spec("old")


@pytest.fixture
def sealed_under_old(sqlite_url, catalog, old_spec):
    """Two accounts' HMAC keys (one rotated, so with a previous key) and provider keys, all under `old`;
    returns the billing context and every plaintext by (column, row id)."""
    engine = make_engine(sqlite_url)
    billing = Billing(engine, catalog, Keyring.parse(old_spec))
    a, b = make_account(billing), make_account(billing)
    plain = {("previous", a.project_id): projects.reveal_hmac_key(billing, a.account_id, a.project_id)}
    plain[("hmac", a.project_id)] = projects.rotate_hmac_key(billing, a.account_id, a.project_id, now=T0).secret
    plain[("hmac", b.project_id)] = projects.reveal_hmac_key(billing, b.account_id, b.project_id)
    set_provider_key(billing, a.account_id, a.project_id, "anthropic", key=ANTHROPIC, now=T0)
    set_provider_key(billing, b.account_id, b.project_id, "openai", key=OPENAI, now=T0)
    plain[("provider", a.project_id)], plain[("provider", b.project_id)] = ANTHROPIC, OPENAI
    yield billing, plain
    engine.dispose()


def _rotate(sqlite_url, tmp_path, keys: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOLLGATE_")}
    env.update(TOLLGATE_DATABASE_URL=sqlite_url, TOLLGATE_ENV="dev", TOLLGATE_ENCRYPTION_KEYS=keys,
               TOLLGATE_DATA_DIR=str(tmp_path))
    return subprocess.run([str(BIN / "tollgate"), "admin", "rotate-secrets"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)


def _open_everything(billing: Billing) -> dict:
    """Every sealed secret in the database, opened with this billing's keyring."""
    opened = {}
    with read_session(billing.engine) as session:
        for row in session.execute(select(Project)).scalars():
            aad = associated_data("hmac", row.account_id, row.id)
            opened[("hmac", row.id)] = billing.keyring.open(row.hmac_ciphertext, aad)
            if row.previous_hmac_ciphertext:
                opened[("previous", row.id)] = billing.keyring.open(row.previous_hmac_ciphertext, aad)
        for key in session.execute(select(ProviderKey)).scalars():
            aad = associated_data(f"provider:{key.provider}", key.account_id, key.project_id)
            opened[("provider", key.project_id)] = billing.keyring.open(key.ciphertext, aad)
    return opened


def test_rotate_secrets_reseals_every_secret_so_a_ring_with_only_the_new_key_opens_them_all(
        sealed_under_old, sqlite_url, tmp_path, old_spec):
    billing, plain = sealed_under_old
    new_spec = new_key_spec("new")
    proc = _rotate(sqlite_url, tmp_path, f"{new_spec},{old_spec}")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines() == [
        "re-sealed 5 of 5 secrets with key new; 0 already current, 0 failed"]
    only_new = Billing(billing.engine, billing.catalog, Keyring.parse(new_spec))
    assert _open_everything(only_new) == plain


def test_rotate_secrets_run_again_changes_nothing(sealed_under_old, sqlite_url, tmp_path, old_spec):
    billing, _ = sealed_under_old
    keys = f"{new_key_spec('new')},{old_spec}"
    assert _rotate(sqlite_url, tmp_path, keys).returncode == 0
    with read_session(billing.engine) as session:
        before = session.execute(select(Project.hmac_ciphertext, Project.previous_hmac_ciphertext)).all()
    proc = _rotate(sqlite_url, tmp_path, keys)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "re-sealed 0 of 5 secrets with key new; 5 already current, 0 failed"
    with read_session(billing.engine) as session:
        assert session.execute(select(Project.hmac_ciphertext, Project.previous_hmac_ciphertext)).all() == before


def test_rotate_secrets_without_the_old_key_fails_in_one_line_and_changes_nothing(
        sealed_under_old, sqlite_url, tmp_path):
    billing, plain = sealed_under_old
    proc = _rotate(sqlite_url, tmp_path, new_key_spec("new"))
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert "cannot open 5 of 5 secrets" in lines[-1] and "Traceback" not in proc.stderr
    assert _open_everything(billing) == plain  # the old keyring still opens every row as it was


def test_rotate_secrets_with_a_malformed_keyring_fails_in_one_line(sqlite_url, tmp_path):
    proc = _rotate(sqlite_url, tmp_path, "not a key")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("tollgate: ")
