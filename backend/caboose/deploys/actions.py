"""Starting, cancelling and removing deployments: what the API, webhooks and the CLI ask for.

Every function here changes rows in the caller's session (flush, never commit) and fills an
:class:`Outbox` with what must happen *after* the commit: the tasks to send (a worker must
never be handed a deployment id it cannot read yet), the cancel flags to raise, the events to
publish. The caller commits, then ``await outbox.flush(redis, sender)``::

    outbox = Outbox()
    deployment = await deploy_from_git(session, outbox, service=..., environment=..., ...)
    await session.commit()
    await outbox.flush(redis, sender)

One deployment at a time per service and environment: a new one supersedes (cancels) the older
ones that are still queued or building. One that is already deploying finishes; the new one
waits for it in the worker (a lock per service-environment), then replaces it.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import redis.asyncio
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from caboose.core.errors import ConflictError
from caboose.deploys.domains import ensure_generated_domain
from caboose.deploys.reporting import (
    ProjectEvent,
    cancel_key,
    deployment_event,
    publish_deployment_events,
    transition,
)
from caboose.engine.build import load_build_result
from caboose.models import (
    Build,
    BuildStatus,
    Deployment,
    DeploymentStatus,
    DeploymentTrigger,
    Environment,
    Project,
    Service,
    SourceType,
)
from caboose.models.enums import IN_PROGRESS_DEPLOYMENT_STATUSES

__all__ = [
    "BUILD_TASK",
    "CANCEL_TASK",
    "DEPLOY_TASK",
    "RECONCILE_TASK",
    "REMOVE_TASK",
    "SYNC_ROUTE_TASK",
    "Outbox",
    "TaskSender",
    "build_is_available",
    "cancel_deployment",
    "celery_sender",
    "deploy_from_git",
    "deploy_upload",
    "enqueue_reconcile",
    "redeploy",
    "redeploy_latest",
    "remove_deployment",
    "restart",
    "rollback",
    "sync_routes",
]

logger = logging.getLogger("caboose.deploys")

BUILD_TASK = "deployments.build"
DEPLOY_TASK = "deployments.deploy"
CANCEL_TASK = "deployments.cancel"
REMOVE_TASK = "deployments.remove"
SYNC_ROUTE_TASK = "deployments.sync_route"
RECONCILE_TASK = "deployments.reconcile"

_SUPERSEDABLE = frozenset({DeploymentStatus.QUEUED, DeploymentStatus.BUILDING})
_CANCEL_FLAG_TTL_S = 24 * 3600

# (task name, positional args, task id)
TaskSender = Callable[[str, list[str], str], None]


def celery_sender(name: str, args: list[str], task_id: str) -> None:
    """Send a task by name through the platform's Celery app (routed to its queue by name)."""
    from caboose.celery_app import celery_app

    celery_app.send_task(name, args=args, task_id=task_id)


def enqueue_reconcile(sender: TaskSender = celery_sender) -> str:
    """Ask a worker to reconcile PM2 and Traefik with the database now (``caboosed up`` calls
    this once its worker runs: beat's first run would only come a minute later)."""
    task_id = str(uuid.uuid4())
    sender(RECONCILE_TASK, [], task_id)
    return task_id


@dataclass
class Outbox:
    """What to do once the transaction that changed the deployments is committed."""

    events: list[ProjectEvent] = field(default_factory=list)
    cancel_flags: list[str] = field(default_factory=list)
    tasks: list[tuple[str, list[str], str]] = field(default_factory=list)

    def event(self, deployment: Deployment, project_id: uuid.UUID) -> None:
        self.events.append(deployment_event(deployment, project_id=project_id))

    def task(self, name: str, *args: str) -> str:
        task_id = str(uuid.uuid4())
        self.tasks.append((name, list(args), task_id))
        return task_id

    async def flush(self, client: redis.asyncio.Redis, sender: TaskSender) -> None:
        for deployment_id in self.cancel_flags:
            await client.set(cancel_key(deployment_id), "1", ex=_CANCEL_FLAG_TTL_S)
        await publish_deployment_events(client, self.events)
        for name, args, task_id in self.tasks:
            sender(name, args, task_id)
        self.events.clear()
        self.cancel_flags.clear()
        self.tasks.clear()


def build_is_available(build: Build | None) -> bool:
    """True when ``build`` succeeded and its artifact is still on disk (not collected)."""
    if build is None or build.status != BuildStatus.SUCCEEDED or not build.artifact_path:
        return False
    return load_build_result(Path(build.artifact_path)) is not None


async def _project_of(session: AsyncSession, service: Service) -> Project:
    project = await session.get(Project, service.project_id)
    if project is None:  # pragma: no cover - a foreign key guarantees it
        raise ConflictError("The service has no project")
    return project


async def _supersede(
    session: AsyncSession, outbox: Outbox, newer: Deployment, project_id: uuid.UUID
) -> None:
    older = await session.scalars(
        select(Deployment.id).where(
            Deployment.service_id == newer.service_id,
            Deployment.environment_id == newer.environment_id,
            Deployment.id != newer.id,
            Deployment.status.in_(list(_SUPERSEDABLE)),
        )
    )
    for older_id in list(older.all()):
        moved = await transition(
            session,
            older_id,
            DeploymentStatus.CANCELLED,
            allowed_from=_SUPERSEDABLE,
            reason=f"superseded by deployment {newer.id}",
        )
        if moved is not None:
            outbox.cancel_flags.append(str(older_id))
            outbox.event(moved, project_id)
            outbox.task(CANCEL_TASK, str(older_id))


async def _start(
    session: AsyncSession,
    outbox: Outbox,
    *,
    service: Service,
    environment: Environment,
    build: Build,
    trigger: DeploymentTrigger,
    user_id: uuid.UUID | None,
    base_domain: str,
    source_deployment: Deployment | None = None,
    commit_sha: str | None = None,
    commit_message: str | None = None,
    commit_author: str | None = None,
) -> Deployment:
    if environment.project_id != service.project_id:
        raise ConflictError("The environment is not one of the service's project")
    project = await _project_of(session, service)
    await ensure_generated_domain(session, service, environment, project, base_domain)
    needs_build = build.status != BuildStatus.SUCCEEDED
    task_name = BUILD_TASK if needs_build else DEPLOY_TASK
    deployment = Deployment(
        service_id=service.id,
        environment_id=environment.id,
        build_id=build.id,
        status=DeploymentStatus.QUEUED,
        trigger=trigger,
        triggered_by_id=user_id,
        source_deployment_id=source_deployment.id if source_deployment else None,
        commit_sha=commit_sha or build.commit_sha,
        commit_message=commit_message or build.commit_message,
        commit_author=commit_author or build.commit_author,
        replicas=[],
    )
    session.add(deployment)
    await session.flush()
    outbox.task(task_name, str(deployment.id))
    deployment.task_id = outbox.tasks[-1][2]
    await session.flush()
    await _supersede(session, outbox, deployment, project.id)
    outbox.event(deployment, project.id)
    return deployment


async def _queue_build(session: AsyncSession, service: Service, **source: Any) -> Build:
    """A new QUEUED build of the service from ``source`` (the Build columns saying what to
    fetch), flushed so a deployment can point at it."""
    build = Build(service_id=service.id, status=BuildStatus.QUEUED, **source)
    session.add(build)
    await session.flush()
    return build


async def deploy_from_git(
    session: AsyncSession,
    outbox: Outbox,
    *,
    service: Service,
    environment: Environment,
    base_domain: str,
    user_id: uuid.UUID | None = None,
    commit_sha: str | None = None,
    commit_message: str | None = None,
    commit_author: str | None = None,
    trigger: DeploymentTrigger = DeploymentTrigger.MANUAL,
    branch: str | None = None,
) -> Deployment:
    """Deploy the service's repository (its branch head, or ``commit_sha``): 202 material.

    Webhooks pass ``trigger=WEBHOOK`` with the pushed commit and its message and author.
    """
    if not service.repo_url:
        raise ConflictError("This service has no repository: deploy it with an upload")
    build = await _queue_build(
        session,
        service,
        source_type=SourceType.GIT,
        branch=branch or service.branch,
        commit_sha=commit_sha,
        commit_message=commit_message,
        commit_author=commit_author,
    )
    return await _start(
        session,
        outbox,
        service=service,
        environment=environment,
        build=build,
        trigger=trigger,
        user_id=user_id,
        base_domain=base_domain,
        commit_sha=commit_sha,
        commit_message=commit_message,
        commit_author=commit_author,
    )


async def deploy_upload(
    session: AsyncSession,
    outbox: Outbox,
    *,
    service: Service,
    environment: Environment,
    upload_path: Path,
    base_domain: str,
    user_id: uuid.UUID | None = None,
) -> Deployment:
    """Deploy an uploaded source tarball (already stored at ``upload_path``)."""
    build = await _queue_build(
        session,
        service,
        source_type=SourceType.UPLOAD,
        source_path=str(upload_path),
    )
    return await _start(
        session,
        outbox,
        service=service,
        environment=environment,
        build=build,
        trigger=DeploymentTrigger.UPLOAD,
        user_id=user_id,
        base_domain=base_domain,
    )


async def _origin(session: AsyncSession, deployment: Deployment) -> tuple[Service, Environment]:
    service = await session.get(Service, deployment.service_id)
    environment = await session.get(Environment, deployment.environment_id)
    if service is None or environment is None:  # pragma: no cover - foreign keys
        raise ConflictError("The deployment's service or environment is gone")
    return service, environment


async def redeploy(
    session: AsyncSession,
    outbox: Outbox,
    deployment: Deployment,
    *,
    base_domain: str,
    user_id: uuid.UUID | None = None,
) -> Deployment:
    """A new deployment from the same source (the same commit, or the same uploaded tree),
    built again: picks up changed variables and settings."""
    service, environment = await _origin(session, deployment)
    old = await session.get(Build, deployment.build_id) if deployment.build_id else None
    if old is None:
        raise ConflictError("This deployment has no build to redeploy from")
    if old.source_type == SourceType.UPLOAD:
        kept = old.source_path is not None and await asyncio.to_thread(
            Path(old.source_path).is_file
        )
        if not kept:
            raise ConflictError(
                "The uploaded source of this deployment is no longer kept: upload it again"
            )
    elif not service.repo_url:
        raise ConflictError("This service has no repository any more")
    build = await _queue_build(
        session,
        service,
        source_type=old.source_type,
        source_path=old.source_path,
        branch=old.branch,
        commit_sha=old.commit_sha,
        commit_message=old.commit_message,
        commit_author=old.commit_author,
    )
    return await _start(
        session,
        outbox,
        service=service,
        environment=environment,
        build=build,
        trigger=DeploymentTrigger.REDEPLOY,
        user_id=user_id,
        base_domain=base_domain,
        source_deployment=deployment,
    )


async def redeploy_latest(
    session: AsyncSession,
    outbox: Outbox,
    *,
    service: Service,
    environment: Environment,
    base_domain: str,
    user_id: uuid.UUID | None = None,
) -> Deployment | None:
    """Roll changed variables or settings out: redeploy what runs (the ACTIVE deployment), or
    else the newest deployment that has a build. None when the service-environment has never
    been deployed (nothing to redeploy: the next deploy picks the change up anyway)."""
    candidates = await session.scalars(
        select(Deployment)
        .where(
            Deployment.service_id == service.id,
            Deployment.environment_id == environment.id,
            Deployment.build_id.is_not(None),
        )
        .order_by(Deployment.created_at.desc())
        .limit(50)
    )
    found = list(candidates.all())
    active = [d for d in found if d.status == DeploymentStatus.ACTIVE]
    chosen = active[0] if active else (found[0] if found else None)
    if chosen is None:
        return None
    return await redeploy(session, outbox, chosen, base_domain=base_domain, user_id=user_id)


async def _from_build(
    session: AsyncSession,
    outbox: Outbox,
    deployment: Deployment,
    *,
    trigger: DeploymentTrigger,
    base_domain: str,
    user_id: uuid.UUID | None,
) -> Deployment:
    build = await session.get(Build, deployment.build_id) if deployment.build_id else None
    if not await asyncio.to_thread(build_is_available, build):
        raise ConflictError(
            "The build of this deployment is no longer available (failed, or collected)"
        )
    assert build is not None
    service, environment = await _origin(session, deployment)
    return await _start(
        session,
        outbox,
        service=service,
        environment=environment,
        build=build,
        trigger=trigger,
        user_id=user_id,
        base_domain=base_domain,
        source_deployment=deployment,
        commit_sha=deployment.commit_sha,
        commit_message=deployment.commit_message,
        commit_author=deployment.commit_author,
    )


class FromDeployment(Protocol):
    """Redeploy, rollback, restart: a new deployment made from an existing one."""

    async def __call__(
        self,
        session: AsyncSession,
        outbox: Outbox,
        deployment: Deployment,
        *,
        base_domain: str,
        user_id: uuid.UUID | None = None,
    ) -> Deployment: ...


async def rollback(
    session: AsyncSession,
    outbox: Outbox,
    deployment: Deployment,
    *,
    base_domain: str,
    user_id: uuid.UUID | None = None,
) -> Deployment:
    """A new deployment running this one's build as it is: no fetch, no build. 409 when the
    build was collected (only the last 5 successful builds per service are kept)."""
    return await _from_build(
        session,
        outbox,
        deployment,
        trigger=DeploymentTrigger.ROLLBACK,
        base_domain=base_domain,
        user_id=user_id,
    )


async def restart(
    session: AsyncSession,
    outbox: Outbox,
    deployment: Deployment,
    *,
    base_domain: str,
    user_id: uuid.UUID | None = None,
) -> Deployment:
    """Fresh processes from the same build (no pre-deploy command), replacing this one."""
    return await _from_build(
        session,
        outbox,
        deployment,
        trigger=DeploymentTrigger.RESTART,
        base_domain=base_domain,
        user_id=user_id,
    )


async def cancel_deployment(
    session: AsyncSession, outbox: Outbox, deployment: Deployment, *, reason: str = "cancelled"
) -> Deployment:
    """Stop a deployment that is not live yet.

    Queued or building: CANCELLED at once, and the build (if running) is killed by its worker,
    which polls the cancel flag. Deploying: the flag only; the worker stops the new replicas
    unless it already switched the route (then the deployment is live and stays so). Anything
    else: 409 (remove a live deployment with DELETE instead).
    """
    status = DeploymentStatus(deployment.status)
    if status not in IN_PROGRESS_DEPLOYMENT_STATUSES:
        raise ConflictError(
            f"The deployment is {status.value}: only one in progress can be cancelled"
        )
    service, _ = await _origin(session, deployment)
    project_id = (await _project_of(session, service)).id
    outbox.cancel_flags.append(str(deployment.id))
    if status in _SUPERSEDABLE:
        moved = await transition(
            session,
            deployment.id,
            DeploymentStatus.CANCELLED,
            allowed_from=_SUPERSEDABLE,
            reason=reason,
        )
        if moved is not None:
            outbox.event(moved, project_id)
            outbox.task(CANCEL_TASK, str(deployment.id))
            return moved
    await session.refresh(deployment)
    return deployment


async def remove_deployment(
    session: AsyncSession, outbox: Outbox, deployment: Deployment
) -> Deployment:
    """Take a deployment offline: unroute it and stop its processes (the worker does that), and
    mark it REMOVED. One still in progress is cancelled instead. Idempotent."""
    status = DeploymentStatus(deployment.status)
    if status in IN_PROGRESS_DEPLOYMENT_STATUSES:
        return await cancel_deployment(session, outbox, deployment, reason="removed")
    service, _ = await _origin(session, deployment)
    project_id = (await _project_of(session, service)).id
    live = {DeploymentStatus.ACTIVE, DeploymentStatus.CRASHED}
    if status in live:
        moved = await transition(
            session,
            deployment.id,
            DeploymentStatus.REMOVED,
            allowed_from=live,
            reason="removed",
        )
        if moved is not None:
            outbox.event(moved, project_id)
            deployment = moved
    outbox.task(REMOVE_TASK, str(deployment.id))
    return deployment


def sync_routes(outbox: Outbox, service_id: uuid.UUID, environment_id: uuid.UUID) -> None:
    """Rewrite the service-environment's route after its domains changed (by the worker)."""
    outbox.task(SYNC_ROUTE_TASK, str(service_id), str(environment_id))
