"""/api/v1/projects: list, create, read, rename, delete; reveal and rotate a project's HMAC key."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from billing_core.services import projects

from .deps import Caller, authenticate, billing_of, utcnow
from .errors import ApiError
from .pagination import ListParams, list_response
from .schemas import PrintableStr

MAX_BODY_BYTES = 64 * 1024  # these bodies hold a name or a key; anything near this size is not one


def small_body(request: Request) -> None:
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_BODY_BYTES:
        raise ApiError(413, "payload_too_large", f"The body may be at most {MAX_BODY_BYTES} bytes.")


def owner(caller: Caller = Depends(authenticate)) -> str:
    """The account acting on its own projects and keys; the edge token manages none of them."""
    if caller.is_edge:
        raise ApiError(403, "forbidden", "The edge token cannot manage projects or keys; use an account key.")
    return caller.account_id


router = APIRouter(prefix="/api/v1", tags=["projects"], dependencies=[Depends(small_body)])


class ProjectBody(BaseModel):
    """A project's only writable field; anything else in the body (plan, id, account_id...) is refused."""

    model_config = ConfigDict(extra="forbid")
    name: PrintableStr = Field(min_length=1, max_length=projects.NAME_MAX)


@router.get("/projects", summary="The account's projects, newest first")
def list_projects(request: Request, account_id: str = Depends(owner), page: ListParams = Depends()) -> dict:
    found = projects.list_projects(billing_of(request), account_id, limit=page.limit, cursor=page.cursor)
    return list_response(found, lambda view: view.to_dict())


@router.post("/projects", status_code=201, summary="Create a project (within the plan's project limit)")
def create_project(request: Request, body: ProjectBody, account_id: str = Depends(owner)) -> dict:
    project = projects.create_project(billing_of(request), account_id, name=body.name, now=utcnow())
    return projects.project_view(project).to_dict()


@router.get("/projects/{project_id}", summary="One project, its HMAC key (masked) and provider keys (masked)")
def get_project(request: Request, project_id: str, account_id: str = Depends(owner)) -> dict:
    return projects.get_project(billing_of(request), account_id, project_id).to_dict()


@router.patch("/projects/{project_id}", summary="Rename a project")
def rename_project(request: Request, project_id: str, body: ProjectBody, account_id: str = Depends(owner)) -> dict:
    return projects.rename_project(billing_of(request), account_id, project_id, name=body.name,
                                   now=utcnow()).to_dict()


@router.delete("/projects/{project_id}", status_code=204, summary="Delete a project; its usage is refused after")
def delete_project(request: Request, project_id: str, account_id: str = Depends(owner)) -> Response:
    projects.delete_project(billing_of(request), account_id, project_id, now=utcnow())
    return Response(status_code=204)


@router.get("/projects/{project_id}/hmac-key", summary="Reveal the project's current HMAC key to its owner")
def reveal_hmac_key(request: Request, project_id: str, account_id: str = Depends(owner)) -> dict:
    return {"secret": projects.reveal_hmac_key(billing_of(request), account_id, project_id)}


@router.post("/projects/{project_id}/hmac-key/rotate",
             summary="Issue a new HMAC key (shown once); the old one stays valid for 24 hours")
def rotate_hmac_key(request: Request, project_id: str, account_id: str = Depends(owner)) -> dict:
    rotated = projects.rotate_hmac_key(billing_of(request), account_id, project_id, now=utcnow())
    return {"secret": rotated.secret, "hmac_key": rotated.hmac_key}
