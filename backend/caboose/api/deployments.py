"""Routes: deployments — deploy from git or an upload, list, read, cancel, redeploy, roll back,
restart, remove (API.md, "Deployments").

Every action commits its rows *before* the worker is told (a task must never see an id it cannot
read yet), then publishes the status events: see ``deploys.actions.Outbox``. Building and
running happen in the worker; these routes answer at once (202 with the new deployment).

Uploads are streamed to a file in the data dir (never held in memory), then checked by a full,
safe extraction into a scratch directory, so a refused archive (not gzip, a path escaping the
tree, a link out of it, a device file, too large, too many files) is a 400/413 answered to the
upload itself rather than a FAILED deployment later.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import uuid
from pathlib import Path
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Query, Request, status
from fastapi import Path as PathParam
from starlette.datastructures import UploadFile
from starlette.requests import ClientDisconnect

from caboose.api.deps import (
    DeploymentAccess,
    ProjectAccess,
    RedisDep,
    ServiceAccess,
    SessionDep,
    SettingsDep,
    load_environment,
)
from caboose.core.errors import (
    BadRequestError,
    FieldError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
    ValidationError,
)
from caboose.core.permissions import Permission
from caboose.deploys import actions
from caboose.deploys.actions import Outbox, TaskSender
from caboose.engine.pipeline import DEFAULT_UPLOAD_MAX_BYTES, DEFAULT_UPLOAD_MAX_FILES
from caboose.engine.source import extract_tarball
from caboose.engine.types import SourceError
from caboose.models import Deployment, DeploymentStatus, Environment, Service
from caboose.paths import PlatformPaths
from caboose.repositories.projects import DeploymentRepository
from caboose.schemas.common import ListParamsDep, PageOf
from caboose.schemas.deployments import (
    DeploymentCreate,
    DeploymentPublic,
    LatestDeployment,
    LatestDeployments,
)

router = APIRouter(tags=["deployments"])

ProjectId = Annotated[uuid.UUID, PathParam(description="The project's id.")]
ServiceId = Annotated[uuid.UUID, PathParam(description="The service's id.")]
DeploymentId = Annotated[uuid.UUID, PathParam(description="The deployment's id.")]
EnvironmentQuery = Annotated[uuid.UUID, Query(description="The environment to deploy to.")]

_GZIP_TYPES = frozenset({"application/gzip", "application/x-gzip", "application/x-tar+gzip"})
_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 256 * 1024


async def get_task_sender(request: Request) -> TaskSender:
    """How tasks reach the workers: Celery, unless the app was given another sender
    (``app.state.task_sender``: tests record what would be sent)."""
    sender: TaskSender | None = getattr(request.app.state, "task_sender", None)
    return sender or actions.celery_sender


TaskSenderDep = Annotated[TaskSender, Depends(get_task_sender)]


def public(deployment: Deployment) -> DeploymentPublic:
    return DeploymentPublic.model_validate(deployment)


async def environment_of(
    session: SessionDep, access_service: Any, environment_id: uuid.UUID
) -> Environment:
    """The environment, visible to the caller and of the service's own project (else 404/422)."""
    environment_access = await load_environment(session, access_service.principal, environment_id)
    environment: Environment = environment_access.obj
    service: Service = access_service.obj
    if environment.project_id != service.project_id:
        raise ValidationError(
            "The environment is not one of this service's project",
            errors=[
                FieldError(
                    field="environment_id",
                    message="not an environment of the service's project",
                    code="wrong_project",
                )
            ],
        )
    return environment


async def _finish(session: SessionDep, redis: RedisDep, sender: TaskSender, outbox: Outbox) -> None:
    await session.commit()
    await outbox.flush(redis, sender)


@router.post(
    "/services/{service_id}/deployments",
    response_model=DeploymentPublic,
    status_code=status.HTTP_202_ACCEPTED,
)
async def create_deployment(
    service_id: ServiceId,
    body: DeploymentCreate,
    session: SessionDep,
    redis: RedisDep,
    settings: SettingsDep,
    sender: TaskSenderDep,
    access: ServiceAccess,
) -> DeploymentPublic:
    """Deploy the service's repository at its branch head (or ``commit_sha``). The service
    must have a ``repo_url`` (409 otherwise: deploy it with an upload)."""
    access.require(Permission.DEPLOY)
    environment = await environment_of(session, access, body.environment_id)
    outbox = Outbox()
    deployment = await actions.deploy_from_git(
        session,
        outbox,
        service=access.obj,
        environment=environment,
        base_domain=settings.base_domain,
        user_id=access.principal.user_id,
        commit_sha=body.commit_sha,
    )
    await _finish(session, redis, sender, outbox)
    return public(deployment)


@router.post(
    "/services/{service_id}/uploads",
    response_model=DeploymentPublic,
    status_code=status.HTTP_202_ACCEPTED,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/gzip": {"schema": {"type": "string", "format": "binary"}},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {"file": {"type": "string", "format": "binary"}},
                        "required": ["file"],
                    }
                },
            },
        }
    },
)
async def upload_deployment(
    service_id: ServiceId,
    environment_id: EnvironmentQuery,
    request: Request,
    session: SessionDep,
    redis: RedisDep,
    settings: SettingsDep,
    sender: TaskSenderDep,
    access: ServiceAccess,
) -> DeploymentPublic:
    """Deploy an uploaded source tree: a gzip tarball as the body (``application/gzip``), or
    as the multipart field ``file``. Up to 200 MiB compressed; refused archives are a 400
    (malformed or dangerous) or 413 (too large, too many files)."""
    access.require(Permission.DEPLOY)
    environment = await environment_of(session, access, environment_id)
    paths = PlatformPaths(settings.data_dir)
    await asyncio.to_thread(paths.uploads_dir.mkdir, mode=0o700, parents=True, exist_ok=True)
    upload_id = uuid.uuid4()
    final = paths.upload_path(upload_id)
    partial = final.with_name(final.name + ".part")
    try:
        await _receive_upload(request, partial)
        await _check_archive(partial, paths.uploads_dir / f".check-{upload_id}")
        await anyio.Path(partial).rename(final)
    except BaseException:
        with contextlib.suppress(OSError):
            await anyio.Path(partial).unlink(missing_ok=True)
        raise
    outbox = Outbox()
    try:
        deployment = await actions.deploy_upload(
            session,
            outbox,
            service=access.obj,
            environment=environment,
            upload_path=final,
            base_domain=settings.base_domain,
            user_id=access.principal.user_id,
        )
        await _finish(session, redis, sender, outbox)
    except BaseException:
        if outbox.tasks:  # not sent: nobody will build it
            with contextlib.suppress(OSError):
                await anyio.Path(final).unlink(missing_ok=True)
        raise
    return public(deployment)


async def _receive_upload(request: Request, dest: Path) -> None:
    """Stream the request's tarball (raw body, or the multipart field ``file``) into ``dest``."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    written = 0
    head = bytearray()
    async with await anyio.open_file(dest, "xb") as out:
        await anyio.Path(dest).chmod(0o600)
        if content_type in _GZIP_TYPES or content_type == "application/octet-stream":
            try:
                async for chunk in request.stream():
                    if chunk:
                        head += chunk[: 2 - len(head)]
                        written += len(chunk)
                        await out.write(chunk)
            except ClientDisconnect:
                raise BadRequestError("The upload was interrupted") from None
        elif content_type == "multipart/form-data":
            form = await request.form(max_files=1, max_fields=10)
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise ValidationError(
                    "Send the tarball as the multipart field 'file'",
                    errors=[FieldError(field="file", message="missing", code="missing")],
                )
            try:
                while chunk := await upload.read(_CHUNK):
                    head += chunk[: 2 - len(head)]
                    written += len(chunk)
                    await out.write(chunk)
            finally:
                await upload.close()
        else:
            raise UnsupportedMediaTypeError(
                "Send the source as an application/gzip tarball, or as the multipart field 'file'"
            )
    if written == 0:
        raise BadRequestError("The upload is empty: send a gzip-compressed tarball")
    if bytes(head) != _GZIP_MAGIC:
        raise BadRequestError("The upload is not a gzip-compressed tarball")


async def _check_archive(archive: Path, scratch: Path) -> None:
    """Extract ``archive`` once into ``scratch`` (then delete it) with the build's own safe
    extraction: what it refuses, the upload is refused for (400/413, the reason as detail)."""
    try:
        await asyncio.to_thread(
            extract_tarball,
            archive,
            scratch,
            max_bytes=DEFAULT_UPLOAD_MAX_BYTES,
            max_files=DEFAULT_UPLOAD_MAX_FILES,
        )
    except SourceError as exc:
        if exc.status == 413:
            raise PayloadTooLargeError(exc.message) from None
        raise BadRequestError(exc.message) from None
    finally:
        await asyncio.to_thread(shutil.rmtree, scratch, True)


@router.get("/services/{service_id}/deployments", response_model=PageOf[DeploymentPublic])
async def list_deployments(
    service_id: ServiceId,
    session: SessionDep,
    access: ServiceAccess,
    params: ListParamsDep,
    environment_id: Annotated[
        uuid.UUID | None, Query(description="Only this environment's deployments.")
    ] = None,
    status_: Annotated[
        DeploymentStatus | None, Query(alias="status", description="Only this status.")
    ] = None,
) -> PageOf[DeploymentPublic]:
    """The service's deployments, newest first."""
    access.require(Permission.PROJECT_READ)
    filters: dict[str, Any] = {"service_id": access.obj.id}
    if environment_id is not None:
        await environment_of(session, access, environment_id)
        filters["environment_id"] = environment_id
    if status_ is not None:
        filters["status"] = status_
    page = await DeploymentRepository(session, access.tenant_id).list(
        filters=filters, pagination=params.pagination, sorting=params.sorting
    )
    return PageOf.from_page(page, [public(d) for d in page.items])


@router.get("/projects/{project_id}/deployments/latest", response_model=LatestDeployments)
async def latest_deployments(
    project_id: ProjectId,
    environment_id: Annotated[uuid.UUID, Query(description="The environment shown.")],
    session: SessionDep,
    access: ProjectAccess,
) -> LatestDeployments:
    """Every service of the project with its newest deployment in the environment and the one
    serving traffic (``active``): what the project canvas shows, in one request and one query
    rather than a deployments list per service. Services never deployed there have nulls."""
    access.require(Permission.PROJECT_READ)
    environment: Environment = (
        await load_environment(session, access.principal, environment_id)
    ).obj
    if environment.project_id != access.obj.id:
        raise ValidationError(
            "The environment is not one of this project's",
            errors=[
                FieldError(
                    field="environment_id",
                    message="not an environment of this project",
                    code="wrong_project",
                )
            ],
        )
    repository = DeploymentRepository(session, access.tenant_id)
    entries = await repository.latest_per_service(access.obj.id, environment.id)
    return LatestDeployments(
        environment_id=environment.id,
        items=[
            LatestDeployment(
                service_id=entry.service_id,
                latest=public(entry.latest) if entry.latest is not None else None,
                active=public(entry.active) if entry.active is not None else None,
            )
            for entry in entries
        ],
    )


@router.get("/deployments/{deployment_id}", response_model=DeploymentPublic)
async def get_deployment(deployment_id: DeploymentId, access: DeploymentAccess) -> DeploymentPublic:
    access.require(Permission.PROJECT_READ)
    return public(access.obj)


@router.post("/deployments/{deployment_id}/cancel", response_model=DeploymentPublic)
async def cancel_deployment(
    deployment_id: DeploymentId,
    session: SessionDep,
    redis: RedisDep,
    sender: TaskSenderDep,
    access: DeploymentAccess,
) -> DeploymentPublic:
    """Cancel a deployment in progress: a queued or building one ends CANCELLED at once (its
    build is killed); a deploying one is stopped before its route switch, if still possible.
    409 for a deployment that is not in progress."""
    access.require(Permission.DEPLOY)
    outbox = Outbox()
    deployment = await actions.cancel_deployment(session, outbox, access.obj)
    await _finish(session, redis, sender, outbox)
    return public(deployment)


async def _from_deployment(
    action: actions.FromDeployment,
    session: SessionDep,
    redis: RedisDep,
    settings: SettingsDep,
    sender: TaskSender,
    access: DeploymentAccess,
) -> DeploymentPublic:
    """Redeploy, rollback and restart: a new deployment made from this one, by the caller."""
    access.require(Permission.DEPLOY)
    outbox = Outbox()
    deployment = await action(
        session,
        outbox,
        access.obj,
        base_domain=settings.base_domain,
        user_id=access.principal.user_id,
    )
    await _finish(session, redis, sender, outbox)
    return public(deployment)


@router.post(
    "/deployments/{deployment_id}/redeploy",
    response_model=DeploymentPublic,
    status_code=status.HTTP_202_ACCEPTED,
)
async def redeploy(
    deployment_id: DeploymentId,
    session: SessionDep,
    redis: RedisDep,
    settings: SettingsDep,
    sender: TaskSenderDep,
    access: DeploymentAccess,
) -> DeploymentPublic:
    """A new deployment from the same source, built again (new variables and settings apply)."""
    return await _from_deployment(actions.redeploy, session, redis, settings, sender, access)


@router.post(
    "/deployments/{deployment_id}/rollback",
    response_model=DeploymentPublic,
    status_code=status.HTTP_202_ACCEPTED,
)
async def rollback(
    deployment_id: DeploymentId,
    session: SessionDep,
    redis: RedisDep,
    settings: SettingsDep,
    sender: TaskSenderDep,
    access: DeploymentAccess,
) -> DeploymentPublic:
    """A new deployment from this one's build, with no rebuild. 409 if the build was collected
    (the last 5 successful builds of a service are kept) or never succeeded."""
    return await _from_deployment(actions.rollback, session, redis, settings, sender, access)


@router.post(
    "/deployments/{deployment_id}/restart",
    response_model=DeploymentPublic,
    status_code=status.HTTP_202_ACCEPTED,
)
async def restart(
    deployment_id: DeploymentId,
    session: SessionDep,
    redis: RedisDep,
    settings: SettingsDep,
    sender: TaskSenderDep,
    access: DeploymentAccess,
) -> DeploymentPublic:
    """New processes from the same build (no pre-deploy command), as a new deployment that
    replaces the running one."""
    return await _from_deployment(actions.restart, session, redis, settings, sender, access)


@router.delete("/deployments/{deployment_id}", response_model=DeploymentPublic)
async def remove_deployment(
    deployment_id: DeploymentId,
    session: SessionDep,
    redis: RedisDep,
    sender: TaskSenderDep,
    access: DeploymentAccess,
) -> DeploymentPublic:
    """Stop and unroute a deployment: REMOVED (one still in progress is cancelled instead).
    The processes are stopped by a worker right after."""
    access.require(Permission.DEPLOY)
    outbox = Outbox()
    deployment = await actions.remove_deployment(session, outbox, access.obj)
    await _finish(session, redis, sender, outbox)
    return public(deployment)
