"""Finding 10: rotation covers every sealed column, moves an install off the derived key, runs beside
instances on either ring, and the edge sync reports what it cannot open in /api/health."""

from __future__ import annotations

import os
import re
from datetime import datetime, timedelta, timezone

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import String, Text, select

from billing_core.crypto import Keyring, derive_key, new_key_spec
from billing_core.db.engine import make_engine, read_connection, read_session
from billing_core.db.models import SQLModel
from billing_core.db.sealed import SEALED_COLUMNS
from billing_core.services import projects
from billing_core.services.account_settings import reveal_webhook_secret, save_alert_delivery
from billing_core.services.context import Billing
from billing_core.services.provider_keys import open_provider_key, set_provider_key
from billing_core.services.secrets_rotation import reseal_all
from billing_core.sync.deliver import sync_once
from billing_core.sync.targets.file import FileTarget
from portal.api.app import create_api
from portal.settings import Settings

from ..conftest import T0
from ..factories import make_account
from ..live_server import copy_sqlite_template, create_account_cli, run_api_server, run_cli, run_cli_ok

CIPHERTEXT = re.compile(r"^v1\.[A-Za-z0-9]+\.[A-Za-z0-9_-]+$")
OPENAI = "sk-proj-" + "Q9r8S7t6" * 8 + "abcd"


def _with_ring(billing: Billing, keyring: Keyring) -> Billing:
    return Billing(billing.engine, billing.catalog, keyring)


def _every_kind_of_secret(billing: Billing) -> tuple[str, str]:
    """An account holding one secret of each sealed kind: HMAC keys (current and previous), a provider key
    and an alert webhook secret."""
    account = make_account(billing)
    projects.rotate_hmac_key(billing, account.account_id, account.project_id, now=T0)
    set_provider_key(billing, account.account_id, account.project_id, "openai", key=OPENAI, now=T0)
    save_alert_delivery(billing, account.account_id, alert_email=None, webhook_url="https://hooks.example.com/a",
                        now=T0)
    return account.account_id, account.project_id


def test_every_column_that_holds_a_ciphertext_is_in_the_one_registry(billing):
    registered = {(s.model.__tablename__, s.column) for s in SEALED_COLUMNS}
    named = {(t.name, c.name) for t in SQLModel.metadata.sorted_tables for c in t.columns
             if "ciphertext" in c.name}
    assert named == registered
    sealing = _with_ring(billing, Keyring.parse(new_key_spec("k1")))
    _every_kind_of_secret(sealing)
    holding = set()
    with read_connection(billing.engine) as conn:
        for table in SQLModel.metadata.sorted_tables:
            for column in table.columns:
                if isinstance(column.type, (String, Text)):
                    values = conn.execute(select(column).where(column.is_not(None))).scalars()
                    if any(isinstance(v, str) and CIPHERTEXT.match(v) for v in values):
                        holding.add((table.name, column.name))
    assert holding == registered  # each kind was made, and none sits in a column the rotation skips
    with read_session(billing.engine) as session:
        for sealed in SEALED_COLUMNS:
            for row in session.execute(select(sealed.model)).scalars():
                value = getattr(row, sealed.column)
                if value is not None:  # the registry binds each row as the services sealed it
                    assert sealing.keyring.open(value, sealed.aad_of(row))


def test_rotation_reseals_every_kind_so_the_old_key_can_be_dropped(billing):
    old, new = new_key_spec("k1"), new_key_spec("k2")
    account_id, project_id = _every_kind_of_secret(_with_ring(billing, Keyring.parse(old)))
    result = reseal_all(_with_ring(billing, Keyring.parse(f"{new},{old}")))
    assert (result.total, result.resealed, result.failed) == (4, 4, ())
    only_new = _with_ring(billing, Keyring.parse(new))
    assert reveal_webhook_secret(only_new, account_id).startswith("whsec_")
    assert open_provider_key(only_new, account_id, project_id, "openai") == OPENAI
    assert projects.reveal_hmac_key(only_new, account_id, project_id).startswith("hk_live_")
    assert reseal_all(only_new).current == 4


def test_an_install_sealed_with_the_derived_key_moves_to_a_configured_ring(tmp_path, sqlite_template, catalog):
    """Before keyrings, an install derived its one key ("s0") from its secret key: `s0:derived` opens it."""
    old_secret = "an-old-installs-secret-key-0123456789-abcdefgh"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("TOLLGATE_")},
           "TOLLGATE_DATABASE_URL": copy_sqlite_template(sqlite_template, tmp_path), "TOLLGATE_ENV": "test",
           "TOLLGATE_DATA_DIR": str(tmp_path), "TOLLGATE_SECRET_KEY": old_secret}
    engine = make_engine(env["TOLLGATE_DATABASE_URL"])
    old_install = Billing(engine, catalog, Keyring((("s0", derive_key(old_secret)),)))
    account_id, project_id = _every_kind_of_secret(old_install)
    hmac_before = projects.reveal_hmac_key(old_install, account_id, project_id)

    new = new_key_spec("k7")
    done = run_cli({**env, "TOLLGATE_ENCRYPTION_KEYS": new}, "admin", "rotate-secrets")
    assert done.returncode != 0 and "cannot open 4 of 4" in done.stderr  # without the old key: refused, kept
    out = run_cli_ok({**env, "TOLLGATE_ENCRYPTION_KEYS": f"{new},s0:derived"}, "admin", "rotate-secrets")
    assert "re-sealed 4 of 4 secrets with key k7" in out
    moved = Billing(engine, catalog, Keyring.parse(new))
    assert projects.reveal_hmac_key(moved, account_id, project_id) == hmac_before
    assert reveal_webhook_secret(moved, account_id).startswith("whsec_")
    assert open_provider_key(moved, account_id, project_id, "openai") == OPENAI
    engine.dispose()


def _reveal(server, created: dict) -> str:
    response = httpx.get(f"{server.base_url}/api/v1/projects/{created['project_id']}/hmac-key",
                         headers={"Authorization": f"Bearer {created['api_key']}"}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["secret"]


def test_rotation_in_the_documented_order_never_leaves_an_instance_unable_to_open(tmp_path, sqlite_template):
    """docs/security.md: add the new key second everywhere, make it first everywhere, rotate, drop the old.
    At every step both instances open every secret, whichever instance sealed it."""
    url = copy_sqlite_template(sqlite_template, tmp_path)
    old, new = new_key_spec("k1"), new_key_spec("k2")
    rings = {"a": f"{old},{new}", "b": f"{new},{old}"}  # mid-rollout: one seals with the old, one with the new
    with run_api_server(url, extra_env={"TOLLGATE_ENCRYPTION_KEYS": rings["a"]}) as a, \
            run_api_server(url, extra_env={"TOLLGATE_ENCRYPTION_KEYS": rings["b"]}) as b:
        first = create_account_cli(a.env, "sealed-by-a@example.com")   # sealed under k1
        second = create_account_cli(b.env, "sealed-by-b@example.com")  # sealed under k2
        secrets = {name: _reveal(a, created) for name, created in (("first", first), ("second", second))}
        assert {name: _reveal(b, created) for name, created in (("first", first), ("second", second))} == secrets
        out = run_cli_ok(b.env, "admin", "rotate-secrets")  # while both serve
        assert re.search(r"re-sealed \d+ of \d+ secrets with key k2; \d+ already current, 0 failed", out)
        for server in (a, b):
            assert [_reveal(server, c) for c in (first, second)] == [secrets["first"], secrets["second"]]
    with run_api_server(url, extra_env={"TOLLGATE_ENCRYPTION_KEYS": new}) as dropped:
        assert [_reveal(dropped, c) for c in (first, second)] == [secrets["first"], secrets["second"]]


def test_health_names_the_hmac_keys_the_edge_sync_cannot_open(billing, tmp_path):
    old = Keyring.parse(new_key_spec("k1"))
    account = make_account(_with_ring(billing, old))
    stranger = _with_ring(billing, Keyring.parse(new_key_spec("k9")))  # a ring without the key that sealed it
    now = datetime.now(timezone.utc)
    target = FileTarget(tmp_path / "edge.sqlite")
    sync_once(stranger, [target], now)
    held = target.dump()
    assert f"account:{account.account_id}" in held
    assert f"project:{account.project_id}" not in held  # never published without its key, nor deleted
    api = create_api(stranger, Settings(_env_file=None, env="test", sync_targets="file", data_dir=tmp_path))
    with TestClient(api, base_url="http://localhost") as client:  # a Host the app answers to
        file_status = client.get("/api/health").json()["sync"][0]
    assert file_status["unreadable"] == 1 and file_status["failing"] == 1

    sync_once(_with_ring(billing, old), [target], now + timedelta(minutes=20))  # the right ring, retry due
    assert f"project:{account.project_id}" in target.dump()
    with TestClient(api, base_url="http://localhost") as client:  # a Host the app answers to
        assert client.get("/api/health").json()["sync"][0]["unreadable"] == 0


def test_a_secret_the_servers_ring_cannot_open_is_a_clear_answer_not_a_crash(billing, tmp_path):
    account = make_account(_with_ring(billing, Keyring.parse(new_key_spec("k1"))))
    stranger = _with_ring(billing, Keyring.parse(new_key_spec("k9")))
    api = create_api(stranger, Settings(_env_file=None, env="test", sync_targets="", data_dir=tmp_path))
    with TestClient(api, base_url="http://localhost") as client:
        answer = client.get(f"/api/v1/projects/{account.project_id}/hmac-key",
                            headers={"Authorization": f"Bearer {account.api_key}"})
    assert answer.status_code == 409, answer.text
    error = answer.json()["error"]
    assert error["code"] == "secret_unreadable" and "'k1'" in error["message"]
