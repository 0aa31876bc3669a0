"""The operator CLI, run as a real subprocess on a real SQLite database."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from billing_core.crypto import new_key_spec

BIN = Path(sys.executable).parent / "tollgate"


@pytest.fixture
def cli(tmp_path):
    env = {**os.environ, "TOLLGATE_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}", "TOLLGATE_ENV": "dev",
           "TOLLGATE_DATA_DIR": str(tmp_path)}
    env.pop("TOLLGATE_CATALOG_PATH", None)

    def run(*args, check=True, **extra_env):
        proc = subprocess.run([BIN, *args], env={**env, **extra_env}, capture_output=True, text=True,
                              timeout=120, cwd=tmp_path)
        if check:
            assert proc.returncode == 0, proc.stderr
        return proc

    return run


def _account(cli, *extra):
    return json.loads(cli("admin", "create-account", "--email", "op@example.com", *extra, "--json").stdout)


def test_create_account_json_prints_account_project_and_key(cli):
    created = _account(cli, "--plan", "starter", "--credit-usd", "12.50")
    assert set(created) == {"account_id", "project_id", "api_key"}
    assert created["api_key"].startswith("ak_live_") and len(created["api_key"]) == 8 + 32 + 6
    out = cli("admin", "grant-credit", created["account_id"], "--usd", "1.000001").stdout
    assert "credit=$13.500001" in out and "plan=starter" in out


def test_pools_plans_suspension_and_tick_change_the_account(cli):
    account_id = _account(cli)["account_id"]
    assert "pools=10.00h" in cli("admin", "add-pool", account_id, "--hours", "10", "--days", "30").stdout
    assert "plan=pro" in cli("admin", "set-plan", account_id, "pro").stdout
    assert "status=suspended" in cli("admin", "suspend", account_id).stdout
    assert "status=active" in cli("admin", "resume", account_id).stdout
    out = cli("admin", "tick", "--now", "2099-01-01T00:00:00Z").stdout
    assert "closed" in out and "expired 1 pools" in out
    assert "closed 0 periods, expired 0 pools" in cli("admin", "tick", "--now", "2099-01-01T00:00:00Z").stdout


@pytest.mark.parametrize("args, message", [
    (("admin", "grant-credit", "acc_missing", "--usd", "5"), "No account with id acc_missing."),
    (("admin", "grant-credit", "ACCOUNT", "--usd", "1.0000001"), "more than 6 decimals"),
    (("admin", "grant-credit", "ACCOUNT", "--usd", "-3"), "Credit must be more than 0"),
    (("admin", "set-plan", "ACCOUNT", "platinum"), "Unknown plan 'platinum'"),
    (("admin", "tick", "--now", "yesterday"), "--now must be an RFC 3339 time"),
    (("admin", "create-account", "--email", "op@example.com"), "already exists"),
])
def test_every_failure_is_one_line_on_stderr_and_a_non_zero_exit(cli, args, message):
    account_id = _account(cli)["account_id"]
    proc = cli(*[account_id if a == "ACCOUNT" else a for a in args], check=False)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in proc.stderr


def test_a_bad_catalog_stops_start_up_naming_the_file_key_and_reason(cli, tmp_path):
    bad = tmp_path / "catalog.toml"
    bad.write_text((Path(__file__).parents[2] / "billing_core/catalog.toml").read_text().replace(
        "included_ms = 72_000_000", 'included_ms = "lots"'))
    proc = cli("admin", "create-account", "--email", "x@example.com", check=False, TOLLGATE_CATALOG_PATH=str(bad))
    assert proc.returncode != 0
    assert str(bad) in proc.stderr and "plans.starter.included_ms" in proc.stderr and "integer" in proc.stderr


def test_a_weak_secret_key_is_refused_outside_dev_with_a_clear_message(cli):
    proc = cli("migrate", check=False, TOLLGATE_ENV="prod", TOLLGATE_SECRET_KEY="short",
               TOLLGATE_ENCRYPTION_KEYS=new_key_spec("k1"))
    assert proc.returncode != 0
    assert "TOLLGATE_SECRET_KEY is too weak" in proc.stderr and "Traceback" not in proc.stderr


def test_production_without_an_encryption_keyring_is_refused_with_a_clear_message(cli):
    proc = cli("migrate", check=False, TOLLGATE_ENV="prod", TOLLGATE_SECRET_KEY="Vq3xN8pL2mR7tY4wZ9bC6dF1gH5jK0sA-e_uQ")
    assert proc.returncode != 0
    assert "TOLLGATE_ENCRYPTION_KEYS must be set for TOLLGATE_ENV=prod" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_demo_builds_sixty_days_of_history_and_says_how_to_use_it(cli, tmp_path):
    out = cli("demo").stdout
    assert "demo@tollgate.dev" in out and "/api/v1/account" in out
    key = (tmp_path / "demo-key.txt").read_text().strip()
    assert key.startswith("ak_live_") and str(tmp_path / "demo-key.txt") in out
    assert (tmp_path / "demo-key.txt").stat().st_mode & 0o777 == 0o600
    again = cli("demo", "--if-missing")
    assert "already exists" in again.stdout
