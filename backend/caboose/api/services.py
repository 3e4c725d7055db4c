"""Routes: services, the things that run, with every deploy setting.

Settings left unset (null) are filled at deploy time by config-as-code in the repository
(railway.json / railway.toml) or by detection; settings set here win. Validation
(``schemas/projects.py``) makes each value safe to hand to git and the engine as is.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Path, Response, status

from caboose.api.deps import ProjectAccess, ServiceAccess, SessionDep
from caboose.core.permissions import Permission
from caboose.repositories.projects import ServiceRepository
from caboose.schemas.common import ListParamsDep, PageOf
from caboose.schemas.projects import ServiceCreate, ServicePublic, ServiceUpdate
from caboose.schemas.workspaces import NameFilter

router = APIRouter(tags=["services"])

ProjectId = Annotated[uuid.UUID, Path(description="The project's id.")]
ServiceId = Annotated[uuid.UUID, Path(description="The service's id.")]


@router.get("/projects/{project_id}/services", response_model=PageOf[ServicePublic])
async def list_services(
    project_id: ProjectId,
    session: SessionDep,
    access: ProjectAccess,
    params: ListParamsDep,
    name: NameFilter = None,
) -> PageOf[ServicePublic]:
    access.require(Permission.PROJECT_READ)
    filters: dict[str, Any] = {"project_id": access.obj.id}
    if name is not None:
        filters["name"] = name
    page = await ServiceRepository(session, access.tenant_id).list(
        filters=filters, pagination=params.pagination, sorting=params.sorting
    )
    return PageOf.from_page(page, [ServicePublic.model_validate(s) for s in page.items])


@router.post(
    "/projects/{project_id}/services",
    response_model=ServicePublic,
    status_code=status.HTTP_201_CREATED,
)
async def create_service(
    project_id: ProjectId, body: ServiceCreate, session: SessionDep, access: ProjectAccess
) -> ServicePublic:
    """A new service (admin or owner). Without ``repo_url`` it is deployed from CLI uploads
    (``caboose up``). Names are DNS labels unique in the project (409 otherwise)."""
    access.require(Permission.SERVICE_MANAGE)
    service = await ServiceRepository(session, access.tenant_id).create(
        project_id=access.obj.id, **body.model_dump()
    )
    return ServicePublic.model_validate(service)


@router.get("/services/{service_id}", response_model=ServicePublic)
async def get_service(service_id: ServiceId, access: ServiceAccess) -> ServicePublic:
    """The service's settings. Credentials inside ``repo_url`` come back masked as ``***``."""
    access.require(Permission.PROJECT_READ)
    return ServicePublic.model_validate(access.obj)


@router.patch("/services/{service_id}", response_model=ServicePublic)
async def update_service(
    service_id: ServiceId, body: ServiceUpdate, session: SessionDep, access: ServiceAccess
) -> ServicePublic:
    """Change settings (admin or owner): only the fields sent change; null unsets an optional
    one. They apply from the next deployment on."""
    access.require(Permission.SERVICE_MANAGE)
    service = await ServiceRepository(session, access.tenant_id).update(
        access.obj, **body.model_dump(exclude_unset=True)
    )
    return ServicePublic.model_validate(service)


@router.delete(
    "/services/{service_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response
)
async def delete_service(service_id: ServiceId, session: SessionDep, access: ServiceAccess) -> None:
    """Delete the service with its variables, domains, webhooks, builds and deployments (admin
    or owner)."""
    access.require(Permission.SERVICE_MANAGE)
    await ServiceRepository(session, access.tenant_id).delete(access.obj)
