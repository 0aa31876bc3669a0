"""GET /api/health, GET /api/openapi.json and GET /api/docs."""

from __future__ import annotations

import json

import pytest

from .helpers import assert_error, both_databases

DOCUMENTED = {"/api/health": "get", "/api/v1/account": "get", "/api/v1/usage": "post", "/api/v1/check": "post",
              "/api/v1/usage/summary": "get"}


@both_databases
def test_health_says_ok_and_names_the_database_without_credentials(server):
    response = server.client.get("/api/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["database"] == "ok"


@pytest.fixture(scope="module")
def openapi(client) -> dict:
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    return response.json()


def test_openapi_lists_every_documented_path_with_its_method(openapi):
    assert openapi["openapi"].startswith("3.")
    for path, method in DOCUMENTED.items():
        assert method in openapi["paths"].get(path, {}), f"{method.upper()} {path} is not in the OpenAPI document"


def test_openapi_documents_the_usage_batch_body(openapi):
    body = openapi["paths"]["/api/v1/usage"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    if "$ref" in body:
        body = openapi["components"]["schemas"][body["$ref"].rsplit("/", 1)[-1]]
    assert "events" in body["properties"]
    assert body["properties"]["events"]["maxItems"] == 1000


def test_openapi_documents_the_summary_query_parameters(openapi):
    names = {p["name"] for p in openapi["paths"]["/api/v1/usage/summary"]["get"]["parameters"]}
    assert {"from", "to", "group_by"} <= names


def test_every_reference_in_the_openapi_document_resolves(openapi):
    def refs(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "$ref" and isinstance(value, str):
                    yield value
                else:
                    yield from refs(value)
        elif isinstance(node, list):
            for item in node:
                yield from refs(item)

    def resolves(ref: str) -> bool:
        node = openapi
        for part in ref.removeprefix("#/").split("/"):
            if not isinstance(node, dict) or part not in node:
                return False
            node = node[part]
        return True

    dangling = sorted({ref for ref in refs(openapi) if not resolves(ref)})
    assert dangling == [], json.dumps(dangling)


def test_openapi_documents_the_check_body(openapi):
    assert "requestBody" in openapi["paths"]["/api/v1/check"]["post"]


def test_docs_are_an_html_page_that_loads_the_openapi_document(client):
    response = client.get("/api/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "/api/openapi.json" in response.text


def test_an_unknown_path_and_a_wrong_method_answer_in_the_error_shape(client):
    assert_error(client.get("/api/v1/nothing-here"), 404)
    assert_error(client.get("/api/v1/usage"), 405)
    assert_error(client.delete("/api/v1/account"), 405)
