"""Schemathesis generates requests from the served OpenAPI document for every operation: none may get a 500."""

from __future__ import annotations

import json
import subprocess

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from billing_core.crypto import new_key_spec
from tests.identity.servers import BIN, api_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def live(tmp_path_factory, sqlite_template):
    workdir = tmp_path_factory.mktemp("schemathesis")
    with api_server(workdir, sqlite_template, TOLLGATE_ENCRYPTION_KEYS=new_key_spec("k1"),
                    TOLLGATE_EDGE_TOKEN="edge-token-for-schemathesis-0123456789") as server:
        env = {**__import__("os").environ, "TOLLGATE_DATABASE_URL": f"sqlite:///{workdir / 'tollgate.db'}",
               "TOLLGATE_ENV": "dev"}
        created = json.loads(subprocess.run([BIN / "tollgate", "admin", "create-account", "--email",
                                             "fuzz@example.com", "--plan", "pro", "--credit-usd", "100", "--json"],
                                            env=env, check=True, capture_output=True, text=True).stdout)
        yield server, created


def _operations(base_url: str):
    schema = schemathesis.openapi.from_url(f"{base_url}/api/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20, "the OpenAPI document lost operations"
    return operations


def test_no_operation_answers_any_generated_request_with_a_server_error(live):
    server, created = live
    headers = {"Authorization": f"Bearer {created['api_key']}"}
    failures = []
    for operation in _operations(server.base_url):
        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        def fuzz(case):
            response = case.call(headers=headers, timeout=30)
            case.validate_response(response, checks=[not_a_server_error])

        try:
            fuzz()
        except Exception as exc:  # collect every operation's failure, then report them together
            failures.append(f"{operation.method.upper()} {operation.path}: {str(exc)[:500]}")
    assert failures == []
    # A handler that failed without answering 500 would still have left a traceback in the log.
    log = server.log_tail(5_000_000)
    assert "Traceback" not in log
    assert log.count(" HTTP/1.1\" ") > 300, "schemathesis sent fewer requests than it should have"
