"""Where a deployment's progress goes: its log, its status history, the project's events.

The logs work (``caboose/logs``) owns the Redis shapes; this module adapts the deploy pipeline to
it, so the pipeline's view of them is this one file:

- build and deploy output goes through a :class:`~caboose.logs.writer.LogWriter` (batched,
  redacted, into the deployment's stream ``caboose:logs:<deployment_id>`` with the fields
  ``ts``/``stream``/``replica``/``line``); :class:`DeploymentReporter` is the engine's
  ``Reporter`` on top of it. The replicas' own output is shipped from PM2's files by the log
  shipper, which the executor tells what to follow (``start_shipping``/``stop_shipping``);
- status changes are published with :func:`~caboose.logs.events.publish_event` to the
  project's stream ``caboose:events:<project_id>`` as ``{"type": "deployment",
  "deployment_id", "service_id", "environment_id", "status", "status_reason", "at"}``;
- stage transitions (fetch, plan, build, release, run, health, route, retire) go to a hash
  ``caboose:deployment:<id>:stages``, and the seconds each step took to
  ``caboose:deployment:<id>:timings`` (``bench/deploy.py`` splits a deploy's time with it).

Status changes are compare-and-set (``UPDATE … WHERE status IN (…)``): a worker, the API (cancel)
and the reaper may race, and the first to move a deployment wins; the others get ``None`` and
leave it alone. Each change also stores a ``DeploymentEvent`` row and, once committed, is
published.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Collection, Iterable, Mapping
from datetime import datetime
from typing import Any

import redis
import redis.asyncio
from sqlalchemy import func, update
from sqlalchemy.ext.asyncio import AsyncSession

from caboose.logs.events import deployment_event as make_event
from caboose.logs.events import publish_event
from caboose.logs.writer import LogWriter
from caboose.models import Deployment, DeploymentEvent, DeploymentStatus
from caboose.models.base import utcnow
from caboose.models.enums import FINAL_DEPLOYMENT_STATUSES

__all__ = [
    "DeploymentReporter",
    "ProjectEvent",
    "cancel_key",
    "changed_files_key",
    "deployment_event",
    "publish_deployment_events",
    "record_timings",
    "stages_key",
    "timings_key",
    "transition",
]

logger = logging.getLogger("caboose.deploys")

# Per-deployment bookkeeping in Redis outlives the deployment's work by this long.
_KEY_TTL_S = 7 * 24 * 3600

# (project id, event): events are published to their project's stream.
ProjectEvent = tuple[str, dict[str, Any]]


def cancel_key(deployment_id: uuid.UUID | str) -> str:
    """Set (to ``1``) when a deployment is cancelled: its worker polls it and kills the build."""
    return f"caboose:deployment:{deployment_id}:cancel"


def changed_files_key(deployment_id: uuid.UUID | str) -> str:
    """A webhook push's changed paths (JSON list), for the build's watch-pattern check."""
    return f"caboose:deployment:{deployment_id}:changed-files"


def stages_key(deployment_id: uuid.UUID | str) -> str:
    return f"caboose:deployment:{deployment_id}:stages"


def timings_key(deployment_id: uuid.UUID | str) -> str:
    return f"caboose:deployment:{deployment_id}:timings"


class DeploymentReporter:
    """The engine's :class:`~caboose.engine.types.Reporter` for a real deployment.

    Called from the engine's thread once per output line: the line is queued on the
    deployment's :class:`LogWriter` (which redacts and stores it in batches, never blocking the
    build on Redis). Stage changes are few; they are written to a hash right away, best effort
    (a Redis hiccup must not fail a build).
    """

    def __init__(
        self, writer: LogWriter, client: redis.Redis | None, deployment_id: uuid.UUID | str
    ) -> None:
        self.writer = writer
        self.client = client
        self.deployment_id = str(deployment_id)
        self.stages: dict[str, str] = {}
        self._lock = threading.Lock()

    def log(self, line: str, *, stream: str = "build") -> None:
        self.writer.log(line, stream=stream)

    def stage(self, name: str, status: str) -> None:
        with self._lock:
            self.stages[name] = str(status)
        if self.client is None:
            return
        try:
            key = stages_key(self.deployment_id)
            pipe = self.client.pipeline(transaction=False)
            pipe.hset(key, name, str(status))
            pipe.expire(key, _KEY_TTL_S)
            pipe.execute()
        except redis.RedisError:
            logger.warning("deployment %s: stage %s not recorded", self.deployment_id, name)


async def record_timings(
    client: redis.asyncio.Redis, deployment_id: uuid.UUID | str, timings: Mapping[str, float]
) -> None:
    if not timings:
        return
    key = timings_key(deployment_id)
    try:
        await client.hset(key, mapping={k: f"{v:.4f}" for k, v in timings.items()})
        await client.expire(key, _KEY_TTL_S)
    except redis.RedisError:
        logger.warning("deployment %s: could not record its timings", deployment_id)


def deployment_event(deployment: Deployment, *, project_id: uuid.UUID) -> ProjectEvent:
    """The event of a deployment's current status (a snapshot: safe to publish after commit)."""
    at: datetime = deployment.updated_at or utcnow()
    event = make_event(
        deployment_id=deployment.id,
        service_id=deployment.service_id,
        environment_id=deployment.environment_id,
        status=str(deployment.status),
        status_reason=deployment.status_reason,
        at=at,
    )
    return str(project_id), event


async def publish_deployment_events(
    client: redis.asyncio.Redis, events: Iterable[ProjectEvent]
) -> None:
    """Publish events (after the change is committed). Best effort: the database holds the
    truth; a lost event only delays a dashboard's refresh."""
    for project_id, event in events:
        try:
            await publish_event(client, project_id, event)
        except redis.RedisError:
            logger.warning("could not publish the event of deployment %s", event["deployment_id"])


async def transition(
    session: AsyncSession,
    deployment_id: uuid.UUID,
    to: DeploymentStatus,
    *,
    allowed_from: Collection[DeploymentStatus],
    reason: str | None = None,
    values: Mapping[str, Any] | None = None,
) -> Deployment | None:
    """Move a deployment to ``to`` if its status is one of ``allowed_from``; return it (fresh),
    or None when someone else moved it first. Stores a ``DeploymentEvent``; the caller commits
    and then publishes ``deployment_event(...)``.

    ``started_at`` is set when the work starts (BUILDING/DEPLOYING), ``finished_at`` when it ends
    (ACTIVE or any final status), each only the first time.
    """
    now = utcnow()
    changes: dict[str, Any] = {"status": to, "updated_at": now, "status_reason": reason}
    if to in (DeploymentStatus.BUILDING, DeploymentStatus.DEPLOYING):
        changes["started_at"] = func.coalesce(Deployment.started_at, now)
    if to is DeploymentStatus.ACTIVE or to in FINAL_DEPLOYMENT_STATUSES:
        changes["finished_at"] = func.coalesce(Deployment.finished_at, now)
    changes.update(values or {})
    result = await session.execute(
        update(Deployment)
        .where(Deployment.id == deployment_id, Deployment.status.in_(list(allowed_from)))
        .values(**changes)
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0) != 1:
        return None
    session.add(DeploymentEvent(deployment_id=deployment_id, status=to, message=reason))
    await session.flush()
    return await session.get(Deployment, deployment_id, populate_existing=True)
