"""/api/v1/keys (account keys and their limits) and /api/v1/projects/{id}/provider-keys/{provider} (BYOK keys)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from billing_core.key_limits import LIMIT_FIELDS, MAX_BUDGET_MICROS, MAX_MODELS, MAX_RATE, SCOPES
from billing_core.services import account_keys, provider_keys
from billing_core.services.projects import NAME_MAX

from .deps import billing_of, utcnow
from .pagination import ListParams, list_response
from .projects import owner, small_body
from .schemas import PrintableStr

router = APIRouter(prefix="/api/v1", tags=["keys"], dependencies=[Depends(small_body)])


class KeyLimitsBody(BaseModel):
    """A key's limits (API.md "Key limits"). Types are checked here; ranges, the catalog's models and the
    project by the service, which answers 422 with a code naming the field (404 for another's project)."""

    model_config = ConfigDict(extra="forbid")
    scopes: list[StrictStr] | None = Field(None, description="any of usage:write, read, gateway, manage; "
                                                             "default all", max_length=len(SCOPES))
    budget_micros: StrictInt | None = Field(None, description=f"1 to {MAX_BUDGET_MICROS}; null: no budget")
    budget_reset: StrictStr | None = Field(None, description="daily, weekly, monthly (default) or never")
    models: list[StrictStr] | None = Field(None, description="allowed provider/model names; empty: any",
                                           max_length=MAX_MODELS)
    rpm: StrictInt | None = Field(None, description=f"requests per minute, 1 to {MAX_RATE}; null: no limit")
    tpm: StrictInt | None = Field(None, description=f"tokens per minute, 1 to {MAX_RATE}; null: no limit")
    expires_at: StrictStr | None = Field(None, description="RFC 3339, in the future; null: never expires")
    project_id: StrictStr | None = Field(None, max_length=40, description="one of the account's projects; "
                                                                           "null: every project")

    def given(self) -> dict:
        """The fields the body named, null ones included (null: back to the default)."""
        return {name: getattr(self, name) for name in self.model_fields_set if name in LIMIT_FIELDS}


class KeyBody(KeyLimitsBody):
    name: PrintableStr = Field(min_length=1, max_length=NAME_MAX)


class ProviderKeyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: StrictStr = Field(min_length=1, max_length=500, description="the key as the provider issued it")


@router.get("/keys", summary="The account's keys (never their secrets) with limits and spend, revoked ones included")
def list_keys(request: Request, account_id: str = Depends(owner), page: ListParams = Depends()) -> dict:
    found = account_keys.list_keys(billing_of(request), account_id, limit=page.limit, cursor=page.cursor,
                                   now=utcnow())
    return list_response(found, lambda view: view.to_dict())


@router.post("/keys", status_code=201, summary="Create an account key, with limits; its secret is in this answer only")
def create_key(request: Request, body: KeyBody, account_id: str = Depends(owner)) -> dict:
    created = account_keys.create_key(billing_of(request), account_id, name=body.name, now=utcnow(),
                                      limits=body.given())
    return {**created.key.to_dict(), "secret": created.secret}


@router.get("/keys/{key_id}", summary="One account key with its limits and its spend in the current budget window")
def get_key(request: Request, key_id: str, account_id: str = Depends(owner)) -> dict:
    return account_keys.get_key(billing_of(request), account_id, key_id, now=utcnow()).to_dict()


@router.patch("/keys/{key_id}", summary="Change a key's limits; only the fields sent change, null removes a limit")
def update_key(request: Request, key_id: str, body: KeyLimitsBody, account_id: str = Depends(owner)) -> dict:
    return account_keys.update_key_limits(billing_of(request), account_id, key_id, changes=body.given(),
                                          now=utcnow()).to_dict()


@router.delete("/keys/{key_id}", summary="Revoke an account key; it is refused from the next request on")
def revoke_key(request: Request, key_id: str, account_id: str = Depends(owner)) -> dict:
    return account_keys.revoke_key(billing_of(request), account_id, key_id, now=utcnow()).to_dict()


@router.put("/projects/{project_id}/provider-keys/{provider}",
            summary="Set or replace the project's own key for a provider (anthropic, openai); shown masked")
def set_provider_key(request: Request, project_id: str, provider: str, body: ProviderKeyBody,
                     account_id: str = Depends(owner)) -> dict:
    return provider_keys.set_provider_key(billing_of(request), account_id, project_id, provider, key=body.key,
                                          now=utcnow())


@router.delete("/projects/{project_id}/provider-keys/{provider}", status_code=204,
               summary="Remove the project's key for a provider")
def delete_provider_key(request: Request, project_id: str, provider: str,
                        account_id: str = Depends(owner)) -> Response:
    provider_keys.delete_provider_key(billing_of(request), account_id, project_id, provider, now=utcnow())
    return Response(status_code=204)
