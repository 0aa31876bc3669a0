"""Request bodies read by hand (to reject events one by one) still get a documented schema."""

from __future__ import annotations

from fastapi import FastAPI
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

REF = "#/components/schemas/{model}"


def body_doc(model: type[BaseModel]) -> dict:
    """`openapi_extra` for a route whose JSON body has the shape of `model`."""
    return {"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"$ref": REF.format(model=model.__name__)}}}}}


def document_models(api: FastAPI, models: list[type[BaseModel]]) -> None:
    """Add the models' schemas to the OpenAPI components, so `body_doc` references resolve."""
    original = api.openapi

    def openapi() -> dict:
        if api.openapi_schema:
            return api.openapi_schema
        schema = original()
        _, defs = models_json_schema([(m, "validation") for m in models], ref_template=REF)
        schema.setdefault("components", {}).setdefault("schemas", {}).update(defs.get("$defs", {}))
        api.openapi_schema = schema
        return schema

    api.openapi = openapi
