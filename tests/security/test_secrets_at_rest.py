"""Finding 1: no secret comes from a constant; a default install generates its own keys and a dump opens nothing."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select

from billing_core.crypto import Keyring, SecretError, derive_key
from billing_core.db.models import Project
from billing_core.db.sealed import hmac_aad
from portal.auth.cookies import sign_token, unsign_token
from portal.local_secrets import ENCRYPTION_KEYS_FILE, SECRET_KEY_FILE
from portal.settings import Settings

from ..live_server import PYTHON, ROOT, copy_sqlite_template, run_cli_ok

# The secret key every default install shared before this fix: what an attacker holding a dump would try.
OLD_PUBLIC_CONSTANT = "dev-insecure-secret-key-change-me"


@pytest.fixture
def bare_environment(monkeypatch, tmp_path):
    """Only what a test sets: no TOLLGATE_ variables from the shell, no .env file."""
    for name in list(os.environ):
        if name.upper().startswith("TOLLGATE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_default_install_generates_its_own_keys_into_data_0600_and_reuses_them(bare_environment, tmp_path):
    first = Settings(data_dir=tmp_path / "a")
    again = Settings(data_dir=tmp_path / "a")
    other = Settings(data_dir=tmp_path / "b")
    assert first.env == "dev"
    assert (first.secret_key, first.encryption_keys) == (again.secret_key, again.encryption_keys)
    assert first.secret_key != other.secret_key and first.encryption_keys != other.encryption_keys
    assert len(first.secret_key) >= 48 and OLD_PUBLIC_CONSTANT not in (first.secret_key, other.secret_key)
    for name in (SECRET_KEY_FILE, ENCRYPTION_KEYS_FILE):
        assert _mode(tmp_path / "a" / name) == 0o600


def test_a_key_file_others_can_read_is_made_private_again(bare_environment, tmp_path):
    Settings(data_dir=tmp_path)
    (tmp_path / SECRET_KEY_FILE).chmod(0o644)
    Settings(data_dir=tmp_path)
    assert _mode(tmp_path / SECRET_KEY_FILE) == 0o600


def test_processes_starting_together_agree_on_one_generated_key(tmp_path):
    """Two instances on one data folder at first start: one key wins and both use it."""
    code = ("import sys; from pathlib import Path; from portal.local_secrets import local_encryption_keys;"
            "print(local_encryption_keys(Path(sys.argv[1])))")
    for attempt in range(3):
        folder = tmp_path / str(attempt)
        procs = [subprocess.Popen([str(PYTHON), "-c", code, str(folder)], cwd=ROOT, stdout=subprocess.PIPE,
                                  text=True) for _ in range(4)]
        outputs = {p.communicate(timeout=60)[0].strip() for p in procs}
        assert len(outputs) == 1 and outputs != {""}
        assert outputs == {(folder / ENCRYPTION_KEYS_FILE).read_text().strip()}


@pytest.mark.parametrize("missing", ["TOLLGATE_SECRET_KEY", "TOLLGATE_ENCRYPTION_KEYS"])
def test_production_refuses_to_start_without_its_secrets_configured(tmp_path, missing):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOLLGATE_")}
    env.update(TOLLGATE_ENV="prod", TOLLGATE_DATA_DIR=str(tmp_path),
               TOLLGATE_DATABASE_URL=f"sqlite:///{tmp_path / 'tollgate.db'}",
               TOLLGATE_SECRET_KEY="Vq3xN8pL2mR7tY4wZ9bC6dF1gH5jK0sA-e_uQ", TOLLGATE_ENCRYPTION_KEYS="k1:" + "A" * 43)
    del env[missing]
    done = subprocess.run([str(PYTHON), "-c", "import portal.api.asgi"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode != 0
    assert f"{missing} must be set for TOLLGATE_ENV=prod" in done.stderr
    assert "Traceback" not in done.stderr  # one line to act on
    assert done.stderr.strip().splitlines()[-1].startswith("tollgate: bad settings: TOLLGATE_")
    assert not (tmp_path / SECRET_KEY_FILE).exists() and not (tmp_path / ENCRYPTION_KEYS_FILE).exists()


def test_a_dump_of_a_default_install_opens_no_secret_and_forges_no_session(tmp_path, sqlite_template):
    """What the probe did with a pg_dump: the public constant opened every key and signed a cookie."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOLLGATE_")}
    env.update(TOLLGATE_DATA_DIR=str(tmp_path), TOLLGATE_DATABASE_URL=copy_sqlite_template(sqlite_template, tmp_path))
    run_cli_ok(env, "admin", "create-account", "--email", "dumped@example.com", "--json")
    engine = create_engine(env["TOLLGATE_DATABASE_URL"])
    with engine.connect() as conn:
        account_id, project_id, ciphertext = conn.execute(
            select(Project.account_id, Project.id, Project.hmac_ciphertext)).one()
    engine.dispose()
    aad = hmac_aad(account_id, project_id)

    with pytest.raises(SecretError):
        Keyring((("s0", derive_key(OLD_PUBLIC_CONSTANT)),)).open(ciphertext, aad)
    generated = Keyring.parse((tmp_path / ENCRYPTION_KEYS_FILE).read_text().strip())
    assert generated.open(ciphertext, aad).startswith("hk_live_")

    app_settings = Settings(env="dev", data_dir=tmp_path)
    forged = sign_token(Settings(env="dev", data_dir=tmp_path, secret_key=OLD_PUBLIC_CONSTANT), "any-token")
    assert unsign_token(app_settings, forged) is None
    assert unsign_token(app_settings, sign_token(app_settings, "any-token")) == "any-token"


def test_no_module_of_the_app_holds_a_default_secret():
    """A literal default for a secret setting is how the constant came in: none may come back."""
    settings_fields = Settings.model_fields
    for name in ("secret_key", "encryption_keys", "legacy_secret_key", "edge_token", "oidc_client_secret",
                 "smtp_password", "cloudflare_api_token"):
        assert settings_fields[name].default is None, name
    sources = [p for folder in ("portal", "billing_core") for p in (ROOT / folder).rglob("*.py")]
    assert sources and not [p for p in sources if OLD_PUBLIC_CONSTANT in p.read_text()]
