"""Routes: projects, the unit that groups services and their environments.

A project is created with its ``production`` environment, so a first deploy needs nothing else.
A project-scoped API token sees only its own project: it lists just that one and cannot create
others.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Path, Response, status
from sqlalchemy.ext.asyncio import AsyncSession

from caboose.api.deps import ProjectAccess, SessionDep, WorkspaceMembership
from caboose.core.errors import AuthorizationError
from caboose.core.permissions import Permission
from caboose.models import Project
from caboose.repositories.base import MAX_PAGE_SIZE, Pagination, Sorting
from caboose.repositories.projects import (
    EnvironmentRepository,
    ProjectRepository,
    ServiceRepository,
)
from caboose.schemas.common import ListParamsDep, PageOf
from caboose.schemas.projects import (
    PROJECT_PAGE_JSON,
    EnvironmentPublic,
    ProjectCreate,
    ProjectDetail,
    ProjectPublic,
    ProjectUpdate,
    ServicePublic,
)
from caboose.schemas.workspaces import NameFilter

router = APIRouter(tags=["projects"])

PRODUCTION_ENVIRONMENT = "production"

WorkspaceId = Annotated[uuid.UUID, Path(description="The workspace's id.")]
ProjectId = Annotated[uuid.UUID, Path(description="The project's id.")]


async def project_detail(session: AsyncSession, project: Project) -> ProjectDetail:
    """The project with its environments and services, oldest first (production leads)."""
    everything = Pagination(limit=MAX_PAGE_SIZE)
    oldest_first = Sorting("created_at", "asc")
    environments = await EnvironmentRepository(session, project.tenant_id).list(
        filters={"project_id": project.id}, pagination=everything, sorting=oldest_first
    )
    services = await ServiceRepository(session, project.tenant_id).list(
        filters={"project_id": project.id}, pagination=everything, sorting=oldest_first
    )
    return ProjectDetail(
        **ProjectPublic.model_validate(project).model_dump(),
        environments=[EnvironmentPublic.model_validate(e) for e in environments.items],
        services=[ServicePublic.model_validate(s) for s in services.items],
    )


# The columns of a ProjectRow, but workspace_id: that is the workspace being listed.
_PROJECT_ROW_COLUMNS = (
    Project.id,
    Project.created_at,
    Project.updated_at,
    Project.name,
    Project.description,
    Project.preview_environments,
)


@router.get("/workspaces/{workspace_id}/projects", response_model=PageOf[ProjectPublic])
async def list_projects(
    workspace_id: WorkspaceId,
    session: SessionDep,
    access: WorkspaceMembership,
    params: ListParamsDep,
    name: NameFilter = None,
) -> Response:
    """The workspace's projects (only its own project for a project-scoped API token)."""
    access.require(Permission.PROJECT_READ)
    filters: dict[str, Any] = {} if name is None else {"name": name}
    if access.principal.project_scope is not None:
        filters["id"] = access.principal.project_scope
    # The hot read path: plain rows serialised straight to JSON (the response_model above is
    # the contract; PROJECT_PAGE_JSON writes the same bytes without a model per row).
    page = await ProjectRepository(session, access.tenant_id).list_rows(
        _PROJECT_ROW_COLUMNS, filters=filters, pagination=params.pagination, sorting=params.sorting
    )
    workspace = access.tenant_id
    body = PROJECT_PAGE_JSON.dump_json(
        {
            "items": [
                {
                    "id": row["id"],
                    "created_at": row["created_at"],
                    "updated_at": row["updated_at"],
                    "workspace_id": workspace,
                    "name": row["name"],
                    "description": row["description"],
                    "preview_environments": row["preview_environments"],
                }
                for row in page.items
            ],
            "total": page.total,
            "skip": page.skip,
            "limit": page.limit,
            "has_more": page.has_more,
        }
    )
    return Response(content=body, media_type="application/json")


@router.post(
    "/workspaces/{workspace_id}/projects",
    response_model=ProjectDetail,
    status_code=status.HTTP_201_CREATED,
)
async def create_project(
    workspace_id: WorkspaceId, body: ProjectCreate, session: SessionDep, access: WorkspaceMembership
) -> ProjectDetail:
    """A new project and its ``production`` environment (admin or owner). Names are DNS labels,
    unique in the workspace (409 otherwise)."""
    access.require(Permission.PROJECT_MANAGE)
    if access.principal.project_scope is not None:
        raise AuthorizationError("A project-scoped API token cannot create projects")
    project = await ProjectRepository(session, access.tenant_id).create(
        tenant_id=access.tenant_id, name=body.name, description=body.description
    )
    await EnvironmentRepository(session, access.tenant_id).create(
        project_id=project.id, name=PRODUCTION_ENVIRONMENT
    )
    return await project_detail(session, project)


@router.get("/projects/{project_id}", response_model=ProjectDetail)
async def get_project(
    project_id: ProjectId, session: SessionDep, access: ProjectAccess
) -> ProjectDetail:
    access.require(Permission.PROJECT_READ)
    return await project_detail(session, access.obj)


@router.patch("/projects/{project_id}", response_model=ProjectDetail)
async def update_project(
    project_id: ProjectId, body: ProjectUpdate, session: SessionDep, access: ProjectAccess
) -> ProjectDetail:
    """Rename, describe, or switch pull-request preview environments on or off (admin or
    owner). Renaming to a name another project of the workspace has is a 409."""
    access.require(Permission.PROJECT_MANAGE)
    project = await ProjectRepository(session, access.tenant_id).update(
        access.obj, **body.model_dump(exclude_unset=True)
    )
    return await project_detail(session, project)


@router.delete(
    "/projects/{project_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response
)
async def delete_project(project_id: ProjectId, session: SessionDep, access: ProjectAccess) -> None:
    """Delete the project with its environments, services, variables, domains, builds,
    deployments and project-scoped API tokens (admin or owner)."""
    access.require(Permission.PROJECT_MANAGE)
    await ProjectRepository(session, access.tenant_id).delete(access.obj)
