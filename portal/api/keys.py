"""/api/v1/keys (account keys) and /api/v1/projects/{id}/provider-keys/{provider} (BYOK keys)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from billing_core.services import account_keys, provider_keys
from billing_core.services.projects import NAME_MAX

from .deps import billing_of, utcnow
from .pagination import ListParams, list_response
from .projects import owner, small_body
from .schemas import PrintableStr

router = APIRouter(prefix="/api/v1", tags=["keys"], dependencies=[Depends(small_body)])


class KeyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: PrintableStr = Field(min_length=1, max_length=NAME_MAX)


class ProviderKeyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: StrictStr = Field(min_length=1, max_length=500, description="the key as the provider issued it")


@router.get("/keys", summary="The account's keys (never their secrets), revoked ones included")
def list_keys(request: Request, account_id: str = Depends(owner), page: ListParams = Depends()) -> dict:
    found = account_keys.list_keys(billing_of(request), account_id, limit=page.limit, cursor=page.cursor)
    return list_response(found, lambda view: view.to_dict())


@router.post("/keys", status_code=201, summary="Create an account key; its secret is in this answer only")
def create_key(request: Request, body: KeyBody, account_id: str = Depends(owner)) -> dict:
    created = account_keys.create_key(billing_of(request), account_id, name=body.name, now=utcnow())
    return {**created.key.to_dict(), "secret": created.secret}


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
