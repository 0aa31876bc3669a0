"""GET /v1/models: the price table in OpenAI's list format, for an account key sent either way the SDKs send
it; anything else is 401 in OpenAI's error shape."""

from __future__ import annotations

import httpx
import openai
import pytest

from ..live_server import Tenant, copy_sqlite_template, create_account_cli, run_api_server


@pytest.fixture(scope="module")
def live(tmp_path_factory, sqlite_template):
    with run_api_server(copy_sqlite_template(sqlite_template, tmp_path_factory.mktemp("models"))) as server:
        yield server, Tenant(**create_account_cli(server.env, "models@example.com"))


def test_the_openai_sdk_lists_the_models_with_their_prices(live):
    server, tenant = live
    client = openai.OpenAI(api_key=tenant.api_key, base_url=f"{server.base_url}/v1")
    models = {m.id: m for m in client.models.list()}
    assert {"anthropic/claude-sonnet-4", "openai/gpt-4o-mini"} <= set(models)
    sonnet = models["anthropic/claude-sonnet-4"]
    assert sonnet.owned_by == "anthropic"
    assert sonnet.model_extra["pricing"] == {"input_micros_per_mtok": 3_000_000, "output_micros_per_mtok": 15_000_000}


def test_the_key_may_come_as_x_api_key_and_a_bad_one_is_401_in_openais_shape(live):
    server, tenant = live
    assert httpx.get(f"{server.base_url}/v1/models", headers={"x-api-key": tenant.api_key}).status_code == 200
    for headers in ({}, {"Authorization": "Bearer ak_live_" + "x" * 38}, {"x-api-key": "nonsense"}):
        answer = httpx.get(f"{server.base_url}/v1/models", headers=headers)
        assert answer.status_code == 401
        assert answer.json()["error"]["code"] == "invalid_api_key"
        assert answer.json()["error"]["type"] == "authentication_error"
