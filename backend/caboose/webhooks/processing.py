"""What an accepted delivery turns into, in the worker (task ``webhooks.deliver``).

- A push to the service's branch: a deployment of that commit (with its message and author) in
  the webhook's environment, unless ``watchPatterns`` are set and no changed file matches them.
- A pull request opened, reopened or pushed to (a merge request opened or updated), when the
  project has preview environments on: environment ``pr-<number>`` is created if needed (the
  base environment's variables and shared variables copied, its own generated domain on the
  first deploy) and the head commit deployed there.
- A pull request closed (or merged): the preview's deployments are taken offline (processes
  stopped, routes removed, as ``DELETE /deployments/{id}`` does) and the environment deleted.

Everything else is ignored, with the reason. Each outcome is published to the project's events
stream as ``{"type": "webhook", "webhook_id", "service_id", "action", "reason",
"deployment_id", "at"}`` (``action``: ``deployed``, ``skipped``, ``ignored``, ``preview``,
``preview-removed``) and stored on the webhook as its last delivery status.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio
import redis.exceptions
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from caboose.core.keys import PlatformKeys
from caboose.deploys import actions
from caboose.deploys.actions import Outbox
from caboose.deploys.domains import PRODUCTION
from caboose.deploys.reporting import changed_files_key
from caboose.engine.watch import matching_files
from caboose.logs.events import iso, publish_event
from caboose.models import (
    Deployment,
    DeploymentStatus,
    DeploymentTrigger,
    Environment,
    Project,
    Service,
    Webhook,
)
from caboose.models.base import utcnow
from caboose.models.enums import IN_PROGRESS_DEPLOYMENT_STATUSES
from caboose.variables.store import (
    load_plaintext_variables,
    service_scope,
    shared_scope,
    write_variables,
)
from caboose.webhooks.payloads import HookEvent, PullRequest, Push, event_from_dict

__all__ = [
    "DELIVER_TASK",
    "Outcome",
    "base_environment",
    "close_preview",
    "copy_variables",
    "handle_event",
    "preview_name",
    "process_delivery",
    "publish_outcome",
    "record_outcome",
]

logger = logging.getLogger("caboose.webhooks")

DELIVER_TASK = "webhooks.deliver"
# A preview gets copies of the base environment's secrets: never for a stranger's code.
FORK_REASON = "pull requests from forks get no preview environment"
_CHANGED_FILES_TTL_S = 7 * 24 * 3600

_LIVE = frozenset(
    {DeploymentStatus.ACTIVE, DeploymentStatus.CRASHED, *IN_PROGRESS_DEPLOYMENT_STATUSES}
)


@dataclass
class Outcome:
    action: str
    reason: str | None = None
    deployment_id: str | None = None
    environment_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # A deployed push's changed paths, when the payload listed them all (for the build's check
    # of the watch patterns in railway.json / railway.toml).
    changed_files: tuple[str, ...] | None = None

    @property
    def status(self) -> str:
        """What the webhook shows as its last delivery (64 characters at most)."""
        return (f"{self.action}: {self.reason}" if self.reason else self.action)[:64]


async def _already_deploying(
    session: AsyncSession, service_id: uuid.UUID, environment_id: uuid.UUID, sha: str
) -> bool:
    """Whether this commit already runs or is on its way (a task delivered twice, the same
    commit pushed to a pull request and its branch): no second deployment then."""
    found = await session.scalar(
        select(Deployment.id)
        .where(
            Deployment.service_id == service_id,
            Deployment.environment_id == environment_id,
            Deployment.commit_sha == sha,
            Deployment.status.in_([DeploymentStatus.ACTIVE, *IN_PROGRESS_DEPLOYMENT_STATUSES]),
        )
        .limit(1)
    )
    return found is not None


def preview_name(number: int) -> str:
    return f"pr-{number}"


@dataclass
class _Target:
    webhook: Webhook
    service: Service
    project: Project


async def _target(session: AsyncSession, webhook_id: uuid.UUID) -> _Target | None:
    webhook = await session.get(Webhook, webhook_id)
    if webhook is None or not webhook.is_active:
        return None
    service = await session.get(Service, webhook.service_id)
    project = await session.get(Project, service.project_id) if service else None
    if service is None or project is None:
        return None
    return _Target(webhook, service, project)


async def base_environment(
    session: AsyncSession, project_id: uuid.UUID, preferred: str | uuid.UUID | None = None
) -> Environment | None:
    """Where pushes deploy and what previews copy: the webhook's environment if it still
    exists, else ``production``, else the project's oldest environment that is no preview."""
    if preferred is not None:
        try:
            environment = await session.get(Environment, uuid.UUID(str(preferred)))
        except ValueError:
            environment = None
        if environment is not None and environment.project_id == project_id:
            return environment
    candidates = (
        await session.scalars(
            select(Environment)
            .where(Environment.project_id == project_id, Environment.is_preview.is_(False))
            .order_by(Environment.created_at)
        )
    ).all()
    for environment in candidates:
        if environment.name == PRODUCTION:
            return environment
    return candidates[0] if candidates else None


async def handle_event(
    session: AsyncSession,
    outbox: Outbox,
    *,
    webhook_id: uuid.UUID,
    event: HookEvent,
    keys: PlatformKeys,
    base_domain: str,
) -> Outcome:
    """Turn a push or a pull request opening/update into rows (flushed, not committed) and
    tasks in ``outbox``. Closing a pull request needs the worker: see :func:`close_preview`."""
    target = await _target(session, webhook_id)
    if target is None:
        return Outcome("ignored", "the webhook or its service no longer exists")
    if isinstance(event, Push):
        return await _push(session, outbox, target, event, base_domain=base_domain)
    if isinstance(event, PullRequest) and event.action in {"open", "update"}:
        return await _open_preview(
            session, outbox, target, event, keys=keys, base_domain=base_domain
        )
    return Outcome("ignored", "nothing to do for this event")


async def _push(
    session: AsyncSession, outbox: Outbox, target: _Target, event: Push, *, base_domain: str
) -> Outcome:
    service = target.service
    if event.deleted or event.branch is None:
        return Outcome("ignored", f"{event.ref} is not a branch push")
    if event.branch != service.branch:
        return Outcome("ignored", f"branch {event.branch} is not {service.branch}")
    if not service.repo_url:
        return Outcome("ignored", "the service has no repository")
    patterns = service.watch_patterns or []
    changed = event.changed_files
    if patterns and changed is not None and not matching_files(patterns, changed):
        return Outcome(
            "skipped",
            "no changed file matches the watch patterns",
            extra={"watch_patterns": list(patterns), "changed_files": len(changed)},
        )
    environment = await base_environment(
        session, target.project.id, target.webhook.settings.get("environment_id")
    )
    if environment is None:
        return Outcome("ignored", "the project has no environment to deploy to")
    if await _already_deploying(session, service.id, environment.id, event.sha):
        return Outcome("ignored", f"{event.sha[:12]} is already deployed or deploying")
    deployment = await actions.deploy_from_git(
        session,
        outbox,
        service=service,
        environment=environment,
        base_domain=base_domain,
        commit_sha=event.sha,
        commit_message=event.message,
        commit_author=event.author,
        trigger=DeploymentTrigger.WEBHOOK,
        branch=event.branch,
    )
    return Outcome(
        "deployed",
        None,
        deployment_id=str(deployment.id),
        environment_id=str(environment.id),
        changed_files=changed,
    )


async def copy_variables(
    session: AsyncSession,
    keys: PlatformKeys,
    *,
    project_id: uuid.UUID,
    source: Environment,
    target: Environment,
) -> None:
    """Give ``target`` the variables of every service and the shared variables of ``source``
    (decrypted and sealed again for their new rows: a ciphertext is bound to its row)."""
    service_ids = (
        await session.scalars(select(Service.id).where(Service.project_id == project_id))
    ).all()
    scopes = [(shared_scope(source.id), shared_scope(target.id))]
    scopes += [(service_scope(s, source.id), service_scope(s, target.id)) for s in service_ids]
    for from_scope, to_scope in scopes:
        values = await load_plaintext_variables(session, keys.variables, from_scope)
        if not values:
            continue
        await write_variables(
            session,
            keys.variables,
            to_scope,
            values={key: value for key, (value, _) in values.items()},
            sealed=[key for key, (_, is_sealed) in values.items() if is_sealed],
        )


async def _preview_environment(
    session: AsyncSession, keys: PlatformKeys, target: _Target, event: PullRequest
) -> Environment | str:
    name = preview_name(event.number)
    project = target.project
    existing = await session.scalar(
        select(Environment).where(Environment.project_id == project.id, Environment.name == name)
    )
    if existing is not None:
        if not existing.is_preview:
            return f"environment {name} exists and is not a preview environment"
        return existing
    preferred = target.webhook.settings.get("environment_id")
    base = await base_environment(session, project.id, preferred)
    if base is None:
        return "the project has no environment to copy"
    environment = Environment(
        project_id=project.id, name=name, is_preview=True, pr_number=event.number
    )
    try:
        async with session.begin_nested():
            session.add(environment)
            await session.flush()
    except IntegrityError:
        # Another service's webhook of the same pull request created it a moment ago.
        found = await session.scalar(
            select(Environment).where(
                Environment.project_id == project.id, Environment.name == name
            )
        )
        if found is None or not found.is_preview:
            return f"environment {name} could not be created"
        return found
    await copy_variables(session, keys, project_id=project.id, source=base, target=environment)
    return environment


async def _open_preview(
    session: AsyncSession,
    outbox: Outbox,
    target: _Target,
    event: PullRequest,
    *,
    keys: PlatformKeys,
    base_domain: str,
) -> Outcome:
    if not target.project.preview_environments:
        return Outcome("ignored", "preview environments are off for this project")
    if event.from_fork:
        return Outcome("ignored", FORK_REASON)
    if not target.service.repo_url:
        return Outcome("ignored", "the service has no repository")
    environment = await _preview_environment(session, keys, target, event)
    if isinstance(environment, str):
        return Outcome("ignored", environment)
    if await _already_deploying(session, target.service.id, environment.id, event.head_sha):
        return Outcome("ignored", f"{event.head_sha[:12]} is already deployed or deploying")
    deployment = await actions.deploy_from_git(
        session,
        outbox,
        service=target.service,
        environment=environment,
        base_domain=base_domain,
        commit_sha=event.head_sha,
        commit_author=event.author,
        trigger=DeploymentTrigger.PREVIEW,
        branch=event.head_branch or None,
    )
    return Outcome(
        "preview",
        f"{environment.name} deploys {event.head_sha[:12]}",
        deployment_id=str(deployment.id),
        environment_id=str(environment.id),
    )


async def preview_to_close(
    session: AsyncSession, webhook_id: uuid.UUID, event: PullRequest
) -> tuple[Outcome | None, Environment | None, uuid.UUID | None]:
    """The preview environment a closed pull request leaves behind (or why there is none)."""
    target = await _target(session, webhook_id)
    if target is None:
        return Outcome("ignored", "the webhook or its service no longer exists"), None, None
    name = preview_name(event.number)
    environment = await session.scalar(
        select(Environment).where(
            Environment.project_id == target.project.id, Environment.name == name
        )
    )
    if environment is None or not environment.is_preview:
        return Outcome("ignored", f"there is no preview environment {name}"), None, None
    return None, environment, target.project.id


async def live_deployments(session: AsyncSession, environment_id: uuid.UUID) -> list[Deployment]:
    rows = await session.scalars(
        select(Deployment).where(
            Deployment.environment_id == environment_id, Deployment.status.in_(list(_LIVE))
        )
    )
    return list(rows.all())


async def close_preview(
    ctx: Any,
    *,
    webhook_id: uuid.UUID,
    event: PullRequest,
) -> Outcome:
    """Take a closed pull request's preview down: every deployment removed (processes stopped
    and routes deleted by the executor, right here), then the environment deleted with its
    variables and domains. ``ctx`` is the worker's :class:`~caboose.deploys.executor.
    WorkerContext`. Idempotent: a second delivery finds nothing left to remove."""
    from caboose.deploys import executor

    outbox = Outbox()
    async with ctx.sessions() as session:
        outcome, environment, project_id = await preview_to_close(session, webhook_id, event)
        if outcome is not None or environment is None:
            return outcome or Outcome("ignored")
        environment_id = environment.id
        for deployment in await live_deployments(session, environment_id):
            await actions.remove_deployment(session, outbox, deployment)
    # Committed: stop and unroute now, rather than by tasks that would find the rows deleted.
    inline = [(name, args) for name, args, _ in outbox.tasks]
    outbox.tasks.clear()
    await outbox.flush(ctx.redis, ctx.sender)
    for name, args in inline:
        if name == actions.REMOVE_TASK:
            await executor.remove(ctx, args[0])
        elif name == actions.CANCEL_TASK:
            await executor.cancel(ctx, args[0])
    async with ctx.sessions() as session:
        gone = await session.get(Environment, environment_id)
        if gone is not None:
            await session.delete(gone)
    # A deployment that was mid-deploy may still bring processes up: reconcile removes them.
    actions.enqueue_reconcile(ctx.sender)
    return Outcome(
        "preview-removed",
        f"{preview_name(event.number)} removed",
        environment_id=str(environment_id),
        extra={"project_id": str(project_id)},
    )


async def record_outcome(
    session: AsyncSession, webhook_id: uuid.UUID, outcome: Outcome
) -> uuid.UUID | None:
    """Store the outcome on the webhook; returns its project id (for the event)."""
    webhook = await session.get(Webhook, webhook_id)
    if webhook is None:
        return None
    webhook.last_delivery_at = utcnow()
    webhook.last_delivery_status = outcome.status
    return await session.scalar(select(Service.project_id).where(Service.id == webhook.service_id))


async def publish_outcome(
    client: redis.asyncio.Redis,
    project_id: uuid.UUID | str,
    *,
    webhook_id: uuid.UUID,
    service_id: uuid.UUID | str | None,
    outcome: Outcome,
) -> None:
    """The outcome on the project's events stream (best effort, as every event)."""
    event = {
        "type": "webhook",
        "webhook_id": str(webhook_id),
        "service_id": str(service_id) if service_id else None,
        "action": outcome.action,
        "reason": outcome.reason,
        "deployment_id": outcome.deployment_id,
        "environment_id": outcome.environment_id,
        "at": iso(utcnow()),
    }
    try:
        await publish_event(client, project_id, event)
    except redis.exceptions.RedisError:
        logger.warning("could not publish the outcome of a delivery to webhook %s", webhook_id)


async def process_delivery(ctx: Any, webhook_id: str, event_data: dict[str, Any]) -> Outcome:
    """The whole of ``webhooks.deliver``: act on the event, record and publish the outcome.

    ``ctx`` is the worker's :class:`~caboose.deploys.executor.WorkerContext`.
    """
    wid = uuid.UUID(webhook_id)
    event = event_from_dict(event_data)
    if isinstance(event, PullRequest) and event.action == "close":
        outcome = await close_preview(ctx, webhook_id=wid, event=event)
    else:
        outbox = Outbox()
        async with ctx.sessions() as session:
            outcome = await handle_event(
                session,
                outbox,
                webhook_id=wid,
                event=event,
                keys=ctx.keys,
                base_domain=ctx.settings.base_domain,
            )
        if outcome.deployment_id and outcome.changed_files is not None:
            # Before the build task is sent: the build reads them.
            await ctx.redis.set(
                changed_files_key(outcome.deployment_id),
                json.dumps(list(outcome.changed_files)),
                ex=_CHANGED_FILES_TTL_S,
            )
        await outbox.flush(ctx.redis, ctx.sender)
    async with ctx.sessions() as session:
        project_id = await record_outcome(session, wid, outcome)
        service_id = await session.scalar(select(Webhook.service_id).where(Webhook.id == wid))
    if project_id is not None:
        await publish_outcome(
            ctx.redis, project_id, webhook_id=wid, service_id=service_id, outcome=outcome
        )
    logger.info("webhook %s: %s", webhook_id, outcome.status)
    return outcome
