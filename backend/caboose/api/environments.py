"""Routes: environments (production, staging, pr-42 …) of a project.

Every service of a project runs in each of its environments, with that environment's variables.
Any environment may be renamed, ``production`` included (its name is just a name); a project
always keeps at least one, so deleting the last is a 409. ``pr-<n>`` names belong to pull request
preview environments, which Caboose creates and removes itself.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response, status
from sqlalchemy import select

from caboose.api.deps import EnvironmentAccess, ProjectAccess, SessionDep
from caboose.core.errors import ConflictError
from caboose.core.permissions import Permission
from caboose.models import Project
from caboose.repositories.projects import EnvironmentRepository
from caboose.schemas.common import ListParamsDep, PageOf
from caboose.schemas.projects import EnvironmentCreate, EnvironmentPublic, EnvironmentUpdate
from caboose.schemas.workspaces import NameFilter

router = APIRouter(tags=["environments"])

ProjectId = Annotated[uuid.UUID, Path(description="The project's id.")]
EnvironmentId = Annotated[uuid.UUID, Path(description="The environment's id.")]


@router.get("/projects/{project_id}/environments", response_model=PageOf[EnvironmentPublic])
async def list_environments(
    project_id: ProjectId,
    session: SessionDep,
    access: ProjectAccess,
    params: ListParamsDep,
    name: NameFilter = None,
    is_preview: Annotated[
        bool | None, Query(description="Only (or no) pull request previews.")
    ] = None,
) -> PageOf[EnvironmentPublic]:
    access.require(Permission.PROJECT_READ)
    filters: dict[str, Any] = {"project_id": access.obj.id}
    if name is not None:
        filters["name"] = name
    if is_preview is not None:
        filters["is_preview"] = is_preview
    page = await EnvironmentRepository(session, access.tenant_id).list(
        filters=filters, pagination=params.pagination, sorting=params.sorting
    )
    return PageOf.from_page(page, [EnvironmentPublic.model_validate(e) for e in page.items])


@router.post(
    "/projects/{project_id}/environments",
    response_model=EnvironmentPublic,
    status_code=status.HTTP_201_CREATED,
)
async def create_environment(
    project_id: ProjectId, body: EnvironmentCreate, session: SessionDep, access: ProjectAccess
) -> EnvironmentPublic:
    """A new environment (admin or owner); names are DNS labels unique in the project."""
    access.require(Permission.PROJECT_MANAGE)
    environment = await EnvironmentRepository(session, access.tenant_id).create(
        project_id=access.obj.id, name=body.name
    )
    return EnvironmentPublic.model_validate(environment)


@router.get("/environments/{environment_id}", response_model=EnvironmentPublic)
async def get_environment(
    environment_id: EnvironmentId, access: EnvironmentAccess
) -> EnvironmentPublic:
    access.require(Permission.PROJECT_READ)
    return EnvironmentPublic.model_validate(access.obj)


@router.patch("/environments/{environment_id}", response_model=EnvironmentPublic)
async def update_environment(
    environment_id: EnvironmentId,
    body: EnvironmentUpdate,
    session: SessionDep,
    access: EnvironmentAccess,
) -> EnvironmentPublic:
    """Rename an environment (admin or owner). Preview environments keep their ``pr-<n>``."""
    access.require(Permission.PROJECT_MANAGE)
    values = body.model_dump(exclude_unset=True)
    if access.obj.is_preview and values:
        raise ConflictError("A preview environment is named after its pull request")
    environment = await EnvironmentRepository(session, access.tenant_id).update(
        access.obj, **values
    )
    return EnvironmentPublic.model_validate(environment)


@router.delete(
    "/environments/{environment_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
)
async def delete_environment(
    environment_id: EnvironmentId, session: SessionDep, access: EnvironmentAccess
) -> None:
    """Delete an environment with its variables, domains and deployments (admin or owner).

    The last environment of a project cannot be deleted (409): delete the project instead.
    """
    access.require(Permission.PROJECT_MANAGE)
    environment = access.obj
    # Lock the project row: two concurrent deletes of a project's last two environments must
    # not both see "one other left" (PostgreSQL; SQLite writes one at a time anyway).
    await session.execute(
        select(Project.id).where(Project.id == environment.project_id).with_for_update()
    )
    repository = EnvironmentRepository(session, access.tenant_id)
    if await repository.count(project_id=environment.project_id) <= 1:
        raise ConflictError(
            "A project needs at least one environment: create another one first, or delete "
            "the project"
        )
    await repository.delete(environment)
