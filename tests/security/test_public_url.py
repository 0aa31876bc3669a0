"""Finding 9: the public URL follows TOLLGATE_PORT when unset (a device flow on port 3100 sent people to :3000)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from billing_core.crypto import Keyring, new_key_spec
from billing_core.services.context import Billing
from portal.api.app import create_api
from portal.settings import Settings


def test_the_device_flow_sends_people_to_the_port_the_app_serves_on(sqlite_billing, tmp_path):
    settings = Settings(_env_file=None, env="test", port=3100, public_url=None, data_dir=tmp_path)
    billing = Billing(sqlite_billing.engine, sqlite_billing.catalog, Keyring.parse(new_key_spec("k1")))
    with TestClient(create_api(billing, settings), base_url="http://localhost:3100") as client:
        started = client.post("/oauth/device/code", data={"client_id": "tollgate-cli"})
    assert started.status_code == 200, started.text
    assert started.json()["verification_uri"] == "http://localhost:3100/device"
    assert started.json()["verification_uri_complete"].startswith("http://localhost:3100/device?user_code=")
