"""What the deploy tasks do: load rows, build the spec, call the engine, record the outcome.

The Celery tasks (``caboose/tasks/deployments.py``) are one line each around these coroutines,
which take a :class:`WorkerContext` (sessions, Redis, the engine handles, how to send tasks) so
tests can run them against their own database session and a fake runtime.

How a deployment moves (every step a compare-and-set, see ``reporting.transition``)::

    QUEUED ─build task─▶ BUILDING ─deploy task (holding the service-environment lock)─▶ DEPLOYING
      │                    │                                                            │
      └─ rollback/restart: straight to the deploy task                                  ▼
                                                     ACTIVE (route switched; the previous ACTIVE
                                                     one becomes REMOVED and is retired)
    … or FAILED / CANCELLED on the way; ACTIVE → CRASHED (reaper) or REMOVED (replaced, DELETE).

While the engine works (in a thread, so the event loop stays free), the task polls the cancel
flag every 0.25 s and writes ``heartbeat_at`` every few seconds; the reaper ends deployments
whose heartbeat went quiet. Tasks are idempotent: a deployment already past the stage a task is
for is left alone, a build lock stops two workers building the same deployment, and a
redelivered deploy task of a DEPLOYING deployment (its worker died) starts the stage again.

Failures of the user's code or configuration end the deployment (FAILED, with the reason).
Database and Redis faults raised by this module's own bookkeeping propagate, so the task is
retried with backoff (``TRANSIENT_ERRORS``); a bug inside the engine is recorded as FAILED
("internal error") and logged with its traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import redis
import redis.asyncio
import redis.exceptions
import sqlalchemy.exc
from redis.asyncio.lock import Lock
from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from caboose.config import Settings
from caboose.core.keys import PlatformKeys
from caboose.deploys.actions import BUILD_TASK, DEPLOY_TASK, TaskSender
from caboose.deploys.domains import hostnames_for, private_domain, public_url
from caboose.deploys.handles import EngineHandles
from caboose.deploys.reporting import (
    DeploymentReporter,
    ProjectEvent,
    cancel_key,
    changed_files_key,
    deployment_event,
    publish_deployment_events,
    record_timings,
    transition,
)
from caboose.engine import pipeline
from caboose.engine.build import (
    collect_old_artifacts,
    collect_unused_cache_entries,
    load_build_result,
    referenced_cache_keys,
)
from caboose.engine.build.cache import force_rmtree
from caboose.engine.pipeline import (
    ArtifactSource,
    DeploySpec,
    GitSource,
    RunResult,
    UploadSource,
    replica_prefix,
    route_name_for,
)
from caboose.engine.routing import Route
from caboose.engine.routing.traefik import render_route_config
from caboose.engine.runtime import ReplicaState, ReplicaStatus
from caboose.engine.types import (
    EngineError,
    OperationCancelledError,
    RestartPolicyType,
    ServiceOverrides,
    SkippedError,
)
from caboose.logs.redaction import Redactor
from caboose.logs.shipper import LogFile, start_shipping, stop_shipping
from caboose.logs.writer import LogWriter
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
from caboose.models.base import utcnow
from caboose.models.enums import IN_PROGRESS_DEPLOYMENT_STATUSES
from caboose.variables.store import (
    VariableResolutionError,
    load_resolved_environment,
    secret_values_for_redaction,
)

__all__ = [
    "SessionFactory",
    "WorkerContext",
    "cancel",
    "collect_garbage",
    "fail",
    "reap",
    "reconcile",
    "remove",
    "run_build",
    "run_deploy",
    "sync_route",
]

logger = logging.getLogger("caboose.deploys")

T = TypeVar("T")
SyncRedis = redis.Redis
AsyncRedis = redis.asyncio.Redis
SessionFactory = Callable[[], AbstractAsyncContextManager[AsyncSession]]

_BUILD_STATES = frozenset({DeploymentStatus.QUEUED, DeploymentStatus.BUILDING})
_DEPLOY_FROM = frozenset(
    {DeploymentStatus.QUEUED, DeploymentStatus.BUILDING, DeploymentStatus.DEPLOYING}
)
_WORKING = frozenset({DeploymentStatus.BUILDING, DeploymentStatus.DEPLOYING})
# Faults of our own bookkeeping worth a retry (the task is retried with backoff).
_TRANSIENT = (
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.DisconnectionError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
)
WORKER_STOPPED = "worker stopped responding"


@dataclass
class WorkerContext:
    """Everything a deploy coroutine needs, injected (Celery builds it per task, tests their
    own). ``sync_redis`` is for the engine's thread (the reporter writes each log line)."""

    settings: Settings
    sessions: SessionFactory
    redis: AsyncRedis
    sync_redis: SyncRedis
    redis_url: str
    archive_root: Path
    handles: EngineHandles
    sender: TaskSender
    keys: PlatformKeys
    heartbeat_interval_s: float = 5.0
    cancel_poll_s: float = 0.25
    lock_ttl_s: float = 30.0
    deploy_lock_wait_s: float = 780.0
    build_timeout_s: float = 3000.0
    stale_after_s: float = 60.0
    queued_stale_after_s: float = 3600.0
    allow_local_git: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class _Clock:
    """Seconds between successive marks (recorded with a deployment's timings)."""

    def __init__(self) -> None:
        self.last = time.monotonic()
        self.marks: dict[str, float] = {}

    def mark(self, name: str) -> None:
        now = time.monotonic()
        self.marks[name] = now - self.last
        self.last = now


class _EngineCrashError(Exception):
    """An unexpected exception inside the engine's thread (a bug, not the user's failure)."""


# Loading ------------------------------------------------------------------------------------


@dataclass
class _Rows:
    deployment: Deployment
    build: Build | None
    service: Service
    environment: Environment
    project: Project
    redactor: Redactor | None = None


async def _load(session: AsyncSession, deployment_id: uuid.UUID) -> _Rows | None:
    deployment = await session.get(Deployment, deployment_id, populate_existing=True)
    if deployment is None:
        return None
    service = await session.get(Service, deployment.service_id)
    environment = await session.get(Environment, deployment.environment_id)
    if service is None or environment is None:
        return None
    project = await session.get(Project, service.project_id)
    if project is None:
        return None
    build = (
        await session.get(Build, deployment.build_id, populate_existing=True)
        if deployment.build_id
        else None
    )
    return _Rows(deployment, build, service, environment, project)


def _overrides(service: Service) -> ServiceOverrides:
    """The service's settings as the planner's overrides (unset stays None: the repository's
    config-as-code or detection decides)."""
    return ServiceOverrides(
        build_command=service.build_command,
        start_command=service.start_command,
        pre_deploy_command=(service.pre_deploy_command,) if service.pre_deploy_command else None,
        healthcheck_path=service.healthcheck_path,
        healthcheck_timeout=service.healthcheck_timeout,
        restart_policy_type=(
            RestartPolicyType(service.restart_policy_type) if service.restart_policy_type else None
        ),
        restart_policy_max_retries=service.restart_policy_max_retries,
        num_replicas=service.num_replicas,
        cron_schedule=service.cron_schedule,
        overlap_seconds=service.overlap_seconds,
        draining_seconds=service.draining_seconds,
        watch_patterns=tuple(service.watch_patterns) if service.watch_patterns else None,
    )


async def _spec(
    ctx: WorkerContext,
    session: AsyncSession,
    rows: _Rows,
    *,
    source: pipeline.Source,
    retire: Sequence[str] = (),
    previous_servers: Sequence[str] = (),
    run_pre_deploy: bool = True,
    changed_files: tuple[str, ...] | None = None,
) -> tuple[DeploySpec, Redactor]:
    """The engine's spec for a deployment, its variables resolved (and what to redact)."""
    deployment, service, environment, project = (
        rows.deployment,
        rows.service,
        rows.environment,
        rows.project,
    )
    paths = ctx.handles.paths
    hostnames = await hostnames_for(session, service.id, environment.id)
    commit_sha = (rows.build.commit_sha if rows.build else None) or deployment.commit_sha
    platform: dict[str, str] = {
        "CABOOSE_DEPLOYMENT_ID": str(deployment.id),
        "CABOOSE_PRIVATE_DOMAIN": private_domain(service.name),
    }
    if commit_sha:
        platform["CABOOSE_GIT_COMMIT_SHA"] = commit_sha
    if hostnames:
        platform["CABOOSE_PUBLIC_DOMAIN"] = hostnames[0]
    variables = await load_resolved_environment(
        session, ctx.keys, service.id, environment.id, {service.id: platform}
    )
    secrets = await secret_values_for_redaction(session, ctx.keys, service.id, environment.id)
    spec = DeploySpec(
        deployment_id=str(deployment.id),
        build_id=str(rows.build.id) if rows.build else str(deployment.id),
        project_id=str(project.id),
        project_name=project.name,
        service_id=str(service.id),
        service_name=service.name,
        environment_id=str(environment.id),
        environment_name=environment.name,
        source=source,
        artifacts_dir=paths.service_artifacts_dir(service.id),
        cache_dir=paths.project_cache_dir(project.id),
        logs_dir=paths.deployment_logs_dir(deployment.id),
        home_dir=paths.app_home(project.id),
        overrides=_overrides(service),
        variables=variables,
        hostnames=tuple(hostnames),
        private_domain=private_domain(service.name),
        commit_sha=commit_sha,
        memory_limit_mb=service.memory_limit_mb,
        retire=tuple(retire),
        previous_servers=tuple(previous_servers),
        run_pre_deploy=run_pre_deploy,
        build_timeout_s=ctx.build_timeout_s,
        changed_files=changed_files,
    )
    return spec, Redactor(secrets)


def _build_source(ctx: WorkerContext, rows: _Rows) -> pipeline.Source:
    build = rows.build
    assert build is not None
    if build.source_type == SourceType.UPLOAD:
        if not build.source_path:
            raise EngineError("the uploaded source is missing", status=409)
        return UploadSource(Path(build.source_path))
    if not rows.service.repo_url:
        raise EngineError("the service has no repository", status=409)
    return GitSource(
        url=rows.service.repo_url,
        branch=build.branch,
        commit=build.commit_sha,
        root_directory=rows.service.root_directory or None,
        allow_local=ctx.allow_local_git,
    )


# Recording ----------------------------------------------------------------------------------


async def _move(
    ctx: WorkerContext,
    rows: _Rows,
    to: DeploymentStatus,
    *,
    allowed_from: Iterable[DeploymentStatus],
    reason: str | None = None,
    values: dict[str, Any] | None = None,
) -> Deployment | None:
    """One transition in its own committed transaction, then published."""
    async with ctx.sessions() as session:
        moved = await transition(
            session,
            rows.deployment.id,
            to,
            allowed_from=frozenset(allowed_from),
            reason=_redact_reason(reason, rows),
            values=values,
        )
        event = deployment_event(moved, project_id=rows.project.id) if moved else None
    if event is not None:
        await publish_deployment_events(ctx.redis, [event])
    return moved


def _redact_reason(reason: str | None, rows: _Rows) -> str | None:
    if reason is None or rows.redactor is None:
        return reason
    return rows.redactor.redact(reason)


async def _update_build(ctx: WorkerContext, build_id: uuid.UUID, **values: Any) -> None:
    async with ctx.sessions() as session:
        await session.execute(
            update(Build)
            .where(Build.id == build_id)
            .values(updated_at=utcnow(), **values)
            .execution_options(synchronize_session=False)
        )


async def _heartbeat(ctx: WorkerContext, deployment_id: uuid.UUID) -> None:
    try:
        async with ctx.sessions() as session:
            await session.execute(
                update(Deployment)
                .where(Deployment.id == deployment_id)
                .values(heartbeat_at=utcnow())
                .execution_options(synchronize_session=False)
            )
    except _TRANSIENT as exc:  # a busy database must not stop the work it watches
        logger.warning("deployment %s: heartbeat not written (%s)", deployment_id, exc)


async def fail(ctx: WorkerContext, deployment_id: str, reason: str) -> bool:
    """End a deployment still in progress as FAILED (a task's time limit, a lost worker)."""
    async with ctx.sessions() as session:
        rows = await _load(session, uuid.UUID(deployment_id))
    if rows is None:
        return False
    moved = await _move(
        ctx,
        rows,
        DeploymentStatus.FAILED,
        allowed_from=IN_PROGRESS_DEPLOYMENT_STATUSES,
        reason=reason,
    )
    if moved is not None and rows.build is not None:
        await _update_build(
            ctx,
            rows.build.id,
            status=BuildStatus.FAILED,
            error=reason,
            finished_at=utcnow(),
        )
    return moved is not None


# Logs ---------------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def _reporter(
    ctx: WorkerContext, deployment_id: uuid.UUID, redactor: Redactor | None
) -> AsyncIterator[DeploymentReporter]:
    """The engine's reporter for one task: its lines are all stored when the block ends."""
    writer = await asyncio.to_thread(
        LogWriter,
        ctx.redis_url,
        str(deployment_id),
        redactor=redactor or Redactor(()),
        archive_root=ctx.archive_root,
    )
    try:
        yield DeploymentReporter(writer, ctx.sync_redis, deployment_id)
    finally:
        try:
            await asyncio.to_thread(writer.close)
        except TimeoutError:
            logger.warning("deployment %s: some log lines were not stored", deployment_id)


async def _ship(ctx: WorkerContext, spec: DeploySpec, replicas: int) -> None:
    """Tell the log shipper to follow the replicas' PM2 files (from their first line)."""
    files: list[LogFile] = []
    for index in range(replicas):
        out, err = ctx.handles.paths.replica_log_paths(spec.deployment_id, index)
        files.append(LogFile(spec.deployment_id, index, "stdout", out))
        files.append(LogFile(spec.deployment_id, index, "stderr", err))
    try:
        await start_shipping(ctx.redis, files)
    except redis.RedisError:
        logger.warning("deployment %s: its logs will not be shipped", spec.deployment_id)


async def _unship(ctx: WorkerContext, deployment_ids: Iterable[uuid.UUID | str]) -> None:
    """The deployments' processes are gone: drain their files, then archive their logs."""
    for deployment_id in deployment_ids:
        try:
            await stop_shipping(ctx.redis, str(deployment_id), archive=True)
        except redis.RedisError:
            logger.warning("deployment %s: its log shipping was not stopped", deployment_id)


# Running the engine in a thread -------------------------------------------------------------


async def _run_engine(
    ctx: WorkerContext,
    deployment_id: uuid.UUID,
    work: Callable[[threading.Event], T],
    *,
    locks: Sequence[Lock] = (),
) -> T:
    """Run ``work(cancel)`` in a thread; meanwhile poll the cancel flag, beat the heartbeat and
    keep ``locks`` alive. If this coroutine is interrupted (time limit, shutdown), the engine is
    cancelled and given time to kill its processes before the exception goes on."""
    cancel = threading.Event()

    def call() -> T:
        try:
            return work(cancel)
        except EngineError:
            raise
        except Exception as exc:
            raise _EngineCrashError(f"{type(exc).__name__}: {exc}") from exc

    future = asyncio.ensure_future(asyncio.to_thread(call))
    next_beat = 0.0
    try:
        while True:
            done, _ = await asyncio.wait({future}, timeout=ctx.cancel_poll_s)
            if done:
                return future.result()
            if not cancel.is_set():
                with contextlib.suppress(redis.RedisError):
                    if await ctx.redis.exists(cancel_key(deployment_id)):
                        cancel.set()
            now = time.monotonic()
            if now >= next_beat:
                next_beat = now + ctx.heartbeat_interval_s
                await _heartbeat(ctx, deployment_id)
                for lock in locks:
                    with contextlib.suppress(redis.RedisError):
                        await lock.reacquire()
    except BaseException:
        cancel.set()
        with contextlib.suppress(BaseException):
            await asyncio.wait({future}, timeout=30)
        raise


# Build ----------------------------------------------------------------------------------------


async def run_build(ctx: WorkerContext, deployment_id: str) -> str:
    """``deployments.build``: fetch, plan and build; then hand over to ``deployments.deploy``."""
    task_started = time.time()
    did = uuid.UUID(deployment_id)
    async with ctx.sessions() as session:
        rows = await _load(session, did)
    if rows is None:
        return "missing"
    if rows.deployment.status not in _BUILD_STATES:
        return f"skipped ({rows.deployment.status})"
    if rows.build is None:
        await _move(
            ctx,
            rows,
            DeploymentStatus.FAILED,
            allowed_from=_BUILD_STATES,
            reason="the deployment has no build",
        )
        return "failed"
    if rows.build.status == BuildStatus.SUCCEEDED:
        ctx.sender(DEPLOY_TASK, [deployment_id], str(uuid.uuid4()))
        return "already built"
    lock = ctx.redis.lock(f"caboose:lock:build:{did}", timeout=ctx.lock_ttl_s)
    if not await lock.acquire(blocking=False):
        return "already building"
    try:
        return await _build_locked(ctx, rows, lock, task_started)
    finally:
        with contextlib.suppress(redis.exceptions.LockError, redis.RedisError):
            await lock.release()


async def _build_locked(ctx: WorkerContext, rows: _Rows, lock: Lock, task_started: float) -> str:
    assert rows.build is not None
    did = rows.deployment.id
    moved = await _move(
        ctx,
        rows,
        DeploymentStatus.BUILDING,
        allowed_from=_BUILD_STATES,
        values={"heartbeat_at": utcnow()},
    )
    if moved is None:
        return "skipped"
    await _update_build(ctx, rows.build.id, status=BuildStatus.RUNNING, started_at=utcnow())
    try:
        source = _build_source(ctx, rows)
        changed = await _changed_files(ctx, did)
        async with ctx.sessions() as session:
            spec, redactor = await _spec(ctx, session, rows, source=source, changed_files=changed)
    except (VariableResolutionError, LookupError, EngineError) as exc:
        message = exc.message if isinstance(exc, EngineError) else str(exc)
        await _build_failed(ctx, rows, message)
        return "failed"
    rows.redactor = redactor
    tools = await asyncio.to_thread(lambda: ctx.handles.tools)
    try:
        async with _reporter(ctx, did, redactor) as reporter:
            outcome = await _run_engine(
                ctx,
                did,
                lambda cancel: pipeline.build(spec, tools, reporter, cancel),
                locks=[lock],
            )
    except OperationCancelledError:
        await _update_build(ctx, rows.build.id, status=BuildStatus.CANCELLED, finished_at=utcnow())
        await _move(
            ctx, rows, DeploymentStatus.CANCELLED, allowed_from=_BUILD_STATES, reason="cancelled"
        )
        await _unship(ctx, [did])
        return "cancelled"
    except SkippedError as exc:
        await _update_build(
            ctx,
            rows.build.id,
            status=BuildStatus.CANCELLED,
            error=exc.message,
            finished_at=utcnow(),
        )
        await _move(
            ctx, rows, DeploymentStatus.CANCELLED, allowed_from=_BUILD_STATES, reason=exc.message
        )
        await _unship(ctx, [did])
        return "skipped"
    except EngineError as exc:
        await _build_failed(ctx, rows, exc.message)
        return "failed"
    except _EngineCrashError as exc:
        logger.error("deployment %s: the build crashed: %s", did, exc, exc_info=exc.__cause__)
        await _build_failed(ctx, rows, f"internal error while building ({exc})")
        return "failed"
    result = outcome.result
    commit = outcome.commit
    values: dict[str, Any] = {
        "status": BuildStatus.SUCCEEDED,
        "provider": result.plan.provider,
        "plan": result.plan.to_dict(),
        "cache_key": result.cache_key,
        "artifact_path": str(result.artifact_dir),
        "finished_at": utcnow(),
        "error": None,
    }
    if commit is not None:
        values.update(
            commit_sha=commit.sha,
            commit_message=commit.message,
            commit_author=commit.author,
        )
    async with ctx.sessions() as session:
        await session.execute(
            update(Build)
            .where(Build.id == rows.build.id)
            .values(updated_at=utcnow(), **values)
            .execution_options(synchronize_session=False)
        )
        if commit is not None:
            await session.execute(
                update(Deployment)
                .where(Deployment.id == did)
                .values(
                    commit_sha=commit.sha,
                    commit_message=commit.message,
                    commit_author=commit.author,
                )
                .execution_options(synchronize_session=False)
            )
        current = await session.get(Deployment, did, populate_existing=True)
        still_building = current is not None and current.status == DeploymentStatus.BUILDING
    if still_building:  # committed above: the deploy task will see the build
        ctx.sender(DEPLOY_TASK, [str(did)], str(uuid.uuid4()))
    await record_timings(
        ctx.redis,
        did,
        {
            "build_total_s": result.duration,
            "install_s": 0.0 if result.cache_hit else result.install_seconds,
            "build_command_s": result.build_seconds,
            "build_task_started_at": task_started,
            "build_finished_at": time.time(),
        },
    )
    return "built" if still_building else "built (deployment no longer building)"


async def _changed_files(ctx: WorkerContext, deployment_id: uuid.UUID) -> tuple[str, ...] | None:
    """The paths a webhook push changed (``webhooks.processing`` stores them), if known."""
    raw = await ctx.redis.get(changed_files_key(deployment_id))
    if not raw:
        return None
    try:
        files = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        return None
    return tuple(files)


async def _build_failed(ctx: WorkerContext, rows: _Rows, message: str) -> None:
    assert rows.build is not None
    await _update_build(
        ctx, rows.build.id, status=BuildStatus.FAILED, error=message, finished_at=utcnow()
    )
    await _move(ctx, rows, DeploymentStatus.FAILED, allowed_from=_BUILD_STATES, reason=message)
    await _unship(ctx, [rows.deployment.id])


# Deploy ---------------------------------------------------------------------------------------


def _pair_lock_name(service_id: uuid.UUID, environment_id: uuid.UUID) -> str:
    return f"caboose:lock:deploy:{service_id}:{environment_id}"


async def _acquire(
    ctx: WorkerContext, lock: Lock, deployment_id: uuid.UUID | None, wait_s: float
) -> bool:
    """Take ``lock``, waiting up to ``wait_s``; stop waiting when the deployment is cancelled.
    Keeps the deployment's heartbeat while it waits (it is queued behind another deploy)."""
    deadline = time.monotonic() + wait_s
    next_beat = 0.0
    delay = 0.05
    while True:
        if await lock.acquire(blocking=False):
            return True
        if deployment_id is not None:
            if await ctx.redis.exists(cancel_key(deployment_id)):
                return False
            now = time.monotonic()
            if now >= next_beat:
                next_beat = now + ctx.heartbeat_interval_s
                await _heartbeat(ctx, deployment_id)
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(delay)  # poll interval of a lock held elsewhere, bounded above
        delay = min(delay * 1.5, 0.5)


async def _pair_deployments(
    session: AsyncSession,
    service_id: uuid.UUID,
    environment_id: uuid.UUID,
    statuses: Iterable[DeploymentStatus],
) -> list[Deployment]:
    result = await session.scalars(
        select(Deployment)
        .where(
            Deployment.service_id == service_id,
            Deployment.environment_id == environment_id,
            Deployment.status.in_(list(statuses)),
        )
        .order_by(Deployment.created_at)
    )
    return list(result.all())


def _names(deployment: Deployment) -> list[str]:
    return [str(r["name"]) for r in deployment.replicas or [] if r.get("name")]


def _servers(deployment: Deployment) -> list[str]:
    return [f"http://127.0.0.1:{r['port']}" for r in deployment.replicas or [] if r.get("port")]


async def run_deploy(ctx: WorkerContext, deployment_id: str) -> str:
    """``deployments.deploy``: release, run, health-check, route, retire the previous one."""
    task_started = time.time()
    did = uuid.UUID(deployment_id)
    async with ctx.sessions() as session:
        rows = await _load(session, did)
    if rows is None:
        return "missing"
    if rows.deployment.status not in _DEPLOY_FROM:
        return f"skipped ({rows.deployment.status})"
    build = rows.build
    if build is None or build.status != BuildStatus.SUCCEEDED:
        if build is not None and rows.deployment.status == DeploymentStatus.QUEUED:
            ctx.sender(BUILD_TASK, [deployment_id], str(uuid.uuid4()))
            return "needs a build first"
        await _move(
            ctx,
            rows,
            DeploymentStatus.FAILED,
            allowed_from=_DEPLOY_FROM,
            reason="the build of this deployment did not succeed",
        )
        return "failed"
    lock = ctx.redis.lock(
        _pair_lock_name(rows.service.id, rows.environment.id), timeout=ctx.lock_ttl_s
    )
    if not await _acquire(ctx, lock, did, ctx.deploy_lock_wait_s):
        async with ctx.sessions() as session:
            again = await _load(session, did)
        if again is not None and again.deployment.status in _DEPLOY_FROM:
            cancelled = await ctx.redis.exists(cancel_key(did))
            await _move(
                ctx,
                again,
                DeploymentStatus.CANCELLED if cancelled else DeploymentStatus.FAILED,
                allowed_from=_DEPLOY_FROM,
                reason="cancelled"
                if cancelled
                else "timed out waiting for the previous deployment of this service to finish",
            )
        return "not deployed"
    try:
        return await _deploy_locked(ctx, did, lock, task_started)
    finally:
        with contextlib.suppress(redis.exceptions.LockError, redis.RedisError):
            await lock.release()


async def _deploy_locked(
    ctx: WorkerContext, did: uuid.UUID, lock: Lock, task_started: float
) -> str:
    clock = _Clock()
    async with ctx.sessions() as session:
        rows = await _load(session, did)
        if rows is None or rows.deployment.status not in _DEPLOY_FROM:
            return "skipped"
        live = await _pair_deployments(
            session,
            rows.service.id,
            rows.environment.id,
            [DeploymentStatus.ACTIVE, DeploymentStatus.CRASHED],
        )
    newer = [
        d
        for d in live
        if d.status == DeploymentStatus.ACTIVE and d.created_at > rows.deployment.created_at
    ]
    if newer:
        await _move(
            ctx,
            rows,
            DeploymentStatus.CANCELLED,
            allowed_from=_DEPLOY_FROM,
            reason=f"superseded by deployment {newer[-1].id}",
        )
        return "superseded"
    if await ctx.redis.exists(cancel_key(did)):
        await _move(
            ctx, rows, DeploymentStatus.CANCELLED, allowed_from=_DEPLOY_FROM, reason="cancelled"
        )
        return "cancelled"
    moved = await _move(
        ctx,
        rows,
        DeploymentStatus.DEPLOYING,
        allowed_from=_DEPLOY_FROM,
        values={"heartbeat_at": utcnow()},
    )
    if moved is None:
        return "skipped"
    clock.mark("prep_claim_s")
    previous = [d for d in live if d.id != did]
    active = [d for d in previous if d.status == DeploymentStatus.ACTIVE]
    retire = [name for d in previous for name in _names(d)]
    previous_servers = _servers(active[-1]) if active else []
    build = rows.build
    assert build is not None and build.artifact_path is not None
    restart = rows.deployment.trigger == DeploymentTrigger.RESTART
    try:
        async with ctx.sessions() as session:
            spec, redactor = await _spec(
                ctx,
                session,
                rows,
                source=ArtifactSource(Path(build.artifact_path)),
                retire=retire,
                previous_servers=previous_servers,
                run_pre_deploy=not restart,
            )
    except (VariableResolutionError, LookupError) as exc:
        await _move(ctx, rows, DeploymentStatus.FAILED, allowed_from=_WORKING, reason=str(exc))
        return "failed"
    rows.redactor = redactor
    clock.mark("prep_spec_s")
    result = await asyncio.to_thread(load_build_result, Path(build.artifact_path))
    if result is None:
        await _move(
            ctx,
            rows,
            DeploymentStatus.FAILED,
            allowed_from=_WORKING,
            reason="the build of this deployment is no longer available (collected)",
        )
        return "failed"
    loop = asyncio.get_running_loop()
    handles = ctx.handles
    hostnames = spec.hostnames

    def on_live(run: RunResult) -> None:
        future = asyncio.run_coroutine_threadsafe(
            _mark_active(ctx, rows, run, hostnames, [d.id for d in active]), loop
        )
        future.result(timeout=120)

    await _ship(ctx, spec, max(1, result.plan.num_replicas))
    clock.mark("prep_ship_s")
    engine_started = time.time()
    try:
        async with _reporter(ctx, did, redactor) as reporter:
            clock.mark("prep_writer_s")
            run = await _run_engine(
                ctx,
                did,
                lambda cancel: pipeline.release_and_run(
                    spec,
                    result,
                    handles.runtime,
                    handles.router,
                    handles.ports,
                    reporter,
                    cancel,
                    on_live=on_live,
                ),
                locks=[lock],
            )
    except OperationCancelledError:
        await _move(
            ctx, rows, DeploymentStatus.CANCELLED, allowed_from=_WORKING, reason="cancelled"
        )
        await _unship(ctx, [did])
        return "cancelled"
    except EngineError as exc:
        await _move(ctx, rows, DeploymentStatus.FAILED, allowed_from=_WORKING, reason=exc.message)
        await _unship(ctx, [did])
        return "failed"
    except _EngineCrashError as exc:
        cause = exc.__cause__
        if isinstance(cause, _TRANSIENT):
            raise cause from None  # recording ACTIVE failed: retry the task
        logger.error("deployment %s: the deploy crashed: %s", did, exc, exc_info=cause)
        await _move(
            ctx,
            rows,
            DeploymentStatus.FAILED,
            allowed_from=_WORKING,
            reason=f"internal error while deploying ({exc})",
        )
        await _unship(ctx, [did])
        return "failed"
    await record_timings(
        ctx.redis,
        did,
        {
            **run.timings,
            **clock.marks,
            "deploy_task_started_at": task_started,
            "deploy_engine_started_at": engine_started,
            "deploy_prepare_s": engine_started - task_started,
        },
    )
    if run.retired:
        await _unship(ctx, [d.id for d in previous])
    return "active"


async def _mark_active(
    ctx: WorkerContext,
    rows: _Rows,
    run: RunResult,
    hostnames: Sequence[str],
    replaced: Sequence[uuid.UUID],
) -> None:
    """The new deployment serves: ACTIVE, with its URL and replicas; the one it replaces
    becomes REMOVED, in the same transaction (never two ACTIVE ones for a service)."""
    url = public_url(hostnames[0], ctx.settings.http_port) if run.routed and hostnames else None
    events: list[ProjectEvent] = []
    for attempt in range(5):
        try:
            async with ctx.sessions() as session:
                events = []
                active = await transition(
                    session,
                    rows.deployment.id,
                    DeploymentStatus.ACTIVE,
                    allowed_from={DeploymentStatus.DEPLOYING},
                    values={
                        "url": url,
                        "replicas": [r.to_dict() for r in run.replicas],
                        "heartbeat_at": utcnow(),
                    },
                )
                if active is not None:
                    events.append(deployment_event(active, project_id=rows.project.id))
                others = await _pair_deployments(
                    session, rows.service.id, rows.environment.id, [DeploymentStatus.ACTIVE]
                )
                for other in others:
                    if other.id == rows.deployment.id:
                        continue
                    removed = await transition(
                        session,
                        other.id,
                        DeploymentStatus.REMOVED,
                        allowed_from={DeploymentStatus.ACTIVE},
                        reason=f"replaced by deployment {rows.deployment.id}",
                    )
                    if removed is not None:
                        events.append(deployment_event(removed, project_id=rows.project.id))
            break
        except _TRANSIENT:
            if attempt == 4:
                raise
            await asyncio.sleep(0.2 * 2**attempt)  # backoff between retries of a busy database
    del replaced
    await publish_deployment_events(ctx.redis, events)


# Cancel, remove, routes ---------------------------------------------------------------------


async def cancel(ctx: WorkerContext, deployment_id: str) -> str:
    """``deployments.cancel``: raise the flag, end a queued/building deployment, and delete
    whatever processes a cancelled one left (its worker normally does that itself)."""
    did = uuid.UUID(deployment_id)
    await ctx.redis.set(cancel_key(did), "1", ex=24 * 3600)
    async with ctx.sessions() as session:
        rows = await _load(session, did)
    if rows is None:
        return "missing"
    await _move(
        ctx, rows, DeploymentStatus.CANCELLED, allowed_from=_BUILD_STATES, reason="cancelled"
    )
    async with ctx.sessions() as session:
        rows = await _load(session, did)
    if rows is None or rows.deployment.status not in (
        DeploymentStatus.CANCELLED,
        DeploymentStatus.FAILED,
    ):
        return "in progress" if rows else "missing"
    prefix = replica_prefix(rows.service.name, did) + "-"
    leftovers = await asyncio.to_thread(ctx.handles.runtime.status, None, prefix=prefix)
    if leftovers:
        await asyncio.to_thread(ctx.handles.runtime.delete, [s.name for s in leftovers])
    await _unship(ctx, [did])
    return "cancelled"


async def remove(ctx: WorkerContext, deployment_id: str) -> str:
    """``deployments.remove``: a REMOVED deployment's route (if it still owns it) and processes
    go away. Idempotent."""
    did = uuid.UUID(deployment_id)
    async with ctx.sessions() as session:
        rows = await _load(session, did)
    if rows is None:
        return "missing"
    if rows.deployment.status in IN_PROGRESS_DEPLOYMENT_STATUSES or (
        rows.deployment.status == DeploymentStatus.ACTIVE
    ):
        return f"skipped ({rows.deployment.status})"
    lock = ctx.redis.lock(
        _pair_lock_name(rows.service.id, rows.environment.id), timeout=ctx.lock_ttl_s
    )
    if not await _acquire(ctx, lock, None, ctx.deploy_lock_wait_s):
        raise TimeoutError("the service-environment stays locked by a deploy")
    try:
        async with ctx.sessions() as session:
            active = await _pair_deployments(
                session, rows.service.id, rows.environment.id, [DeploymentStatus.ACTIVE]
            )
        names = _names(rows.deployment)
        prefix = replica_prefix(rows.service.name, did) + "-"
        runtime = ctx.handles.runtime
        found = await asyncio.to_thread(runtime.status, None, prefix=prefix)
        names = sorted({*names, *(s.name for s in found)})
        route = None if active else route_name_for(rows.service.id, rows.environment.id)
        await asyncio.to_thread(
            pipeline.remove_replicas, runtime, ctx.handles.router, names, route_name=route
        )
        stopped = [{**r, "status": "stopped", "pid": None} for r in rows.deployment.replicas or []]
        async with ctx.sessions() as session:
            await session.execute(
                update(Deployment)
                .where(Deployment.id == did)
                .values(replicas=stopped)
                .execution_options(synchronize_session=False)
            )
    finally:
        with contextlib.suppress(redis.exceptions.LockError, redis.RedisError):
            await lock.release()
    await _unship(ctx, [did])
    return "removed"


async def sync_route(ctx: WorkerContext, service_id: str, environment_id: str) -> str:
    """``deployments.sync_route``: after a domain was added or deleted, route the
    service-environment's ACTIVE deployment to exactly its current hostnames."""
    sid, eid = uuid.UUID(service_id), uuid.UUID(environment_id)
    lock = ctx.redis.lock(_pair_lock_name(sid, eid), timeout=ctx.lock_ttl_s)
    if not await _acquire(ctx, lock, None, ctx.deploy_lock_wait_s):
        raise TimeoutError("the service-environment stays locked by a deploy")
    try:
        async with ctx.sessions() as session:
            active = await _pair_deployments(session, sid, eid, [DeploymentStatus.ACTIVE])
            hostnames = await hostnames_for(session, sid, eid)
            build = (
                await session.get(Build, active[-1].build_id)
                if active and active[-1].build_id
                else None
            )
        if not active or _is_cron(build):
            return "nothing to route"
        deployment = active[-1]
        servers = _servers(deployment)
        name = route_name_for(sid, eid)
        router = ctx.handles.router
        if not hostnames or not servers:
            await asyncio.to_thread(router.remove, name)
            url = None
        else:
            await asyncio.to_thread(router.apply, Route(name, tuple(hostnames), tuple(servers)))
            url = public_url(hostnames[0], ctx.settings.http_port)
        async with ctx.sessions() as session:
            await session.execute(
                update(Deployment)
                .where(Deployment.id == deployment.id)
                .values(url=url)
                .execution_options(synchronize_session=False)
            )
    finally:
        with contextlib.suppress(redis.exceptions.LockError, redis.RedisError):
            await lock.release()
    return "routed"


def _is_cron(build: Build | None) -> bool:
    return bool(build is not None and build.plan and build.plan.get("cron_schedule"))


# Reaper -------------------------------------------------------------------------------------


def _is_crashed(status: ReplicaStatus) -> bool:
    if status.state is ReplicaState.ERRORED:
        return True
    return status.state is ReplicaState.STOPPED and status.exit_code not in (0, None)


async def reap(ctx: WorkerContext, *, stale_after_s: float | None = None) -> dict[str, int]:
    """``deployments.reap``: end deployments whose worker died (FAILED "worker stopped
    responding": no heartbeat for ``stale_after_s``, default the context's), and mark ACTIVE
    ones whose replicas all crashed for good as CRASHED."""
    now = utcnow()
    quiet = ctx.stale_after_s if stale_after_s is None else stale_after_s
    stale = now - timedelta(seconds=quiet)
    queued_stale = now - timedelta(seconds=ctx.queued_stale_after_s)
    reaped: list[_Rows] = []
    async with ctx.sessions() as session:
        candidates = await session.scalars(
            select(Deployment.id).where(
                or_(
                    Deployment.status.in_(list(_WORKING))
                    & or_(
                        Deployment.heartbeat_at < stale,
                        Deployment.heartbeat_at.is_(None) & (Deployment.updated_at < stale),
                    ),
                    (Deployment.status == DeploymentStatus.QUEUED)
                    & (Deployment.created_at < queued_stale),
                )
            )
        )
        ids = list(candidates.all())
    for did in ids:
        async with ctx.sessions() as session:
            rows = await _load(session, did)
        if rows is None:
            continue
        queued = rows.deployment.status == DeploymentStatus.QUEUED
        moved = await _move(
            ctx,
            rows,
            DeploymentStatus.FAILED,
            allowed_from=[rows.deployment.status],
            reason="no worker picked this deployment up" if queued else WORKER_STOPPED,
        )
        if moved is not None:
            reaped.append(rows)
            if rows.build is not None and rows.build.status in (
                BuildStatus.QUEUED,
                BuildStatus.RUNNING,
            ):
                await _update_build(
                    ctx,
                    rows.build.id,
                    status=BuildStatus.FAILED,
                    error=WORKER_STOPPED,
                    finished_at=utcnow(),
                )
    async with ctx.sessions() as session:
        active = list(
            (
                await session.scalars(
                    select(Deployment).where(Deployment.status == DeploymentStatus.ACTIVE)
                )
            ).all()
        )
        builds = {
            b.id: b
            for b in (
                await session.scalars(
                    select(Build).where(Build.id.in_([d.build_id for d in active if d.build_id]))
                )
            ).all()
        }
    crashed = 0
    if not active and not reaped:
        return {"reaped": 0, "crashed": 0}
    runtime = ctx.handles.runtime
    statuses = await asyncio.to_thread(runtime.status)
    by_name = {s.name: s for s in statuses}
    leftovers = [
        s.name
        for rows in reaped
        for s in statuses
        if s.name.startswith(replica_prefix(rows.service.name, rows.deployment.id) + "-")
    ]
    if leftovers:
        await asyncio.to_thread(runtime.delete, leftovers)
    await _unship(ctx, [rows.deployment.id for rows in reaped])
    for deployment in active:
        names = _names(deployment)
        if not names or _is_cron(builds.get(deployment.build_id) if deployment.build_id else None):
            continue
        current = [by_name.get(n) for n in names]
        observed = [s for s in current if s is not None]
        if len(observed) == len(names) and all(_is_crashed(s) for s in observed):
            codes = sorted({str(s.exit_code) for s in observed if s.exit_code is not None})
            reason = "the app crashed and was not restarted" + (
                f" (exit code {', '.join(codes)})" if codes else ""
            )
            async with ctx.sessions() as session:
                rows = await _load(session, deployment.id)
            if rows is not None and await _move(
                ctx,
                rows,
                DeploymentStatus.CRASHED,
                allowed_from={DeploymentStatus.ACTIVE},
                reason=reason,
                values={"replicas": _observed(deployment, by_name)},
            ):
                crashed += 1
            continue
        fresh = _observed(deployment, by_name)
        if fresh != deployment.replicas:
            async with ctx.sessions() as session:
                await session.execute(
                    update(Deployment)
                    .where(
                        Deployment.id == deployment.id,
                        Deployment.status == DeploymentStatus.ACTIVE,
                    )
                    .values(replicas=fresh)
                    .execution_options(synchronize_session=False)
                )
    return {"reaped": len(reaped), "crashed": crashed}


def _observed(deployment: Deployment, by_name: dict[str, ReplicaStatus]) -> list[dict[str, Any]]:
    """The deployment's ``replicas`` with what PM2 says now (pid, status, restarts)."""
    out: list[dict[str, Any]] = []
    for replica in deployment.replicas or []:
        status = by_name.get(str(replica.get("name")))
        if status is None:
            out.append({**replica, "status": "missing", "pid": None})
        else:
            out.append(
                {
                    **replica,
                    "status": str(status.state),
                    "pid": status.pid,
                    "restarts": status.restarts,
                }
            )
    return out


# Reconcile ------------------------------------------------------------------------------------


async def reconcile(ctx: WorkerContext) -> dict[str, int]:
    """``deployments.reconcile`` (every minute, and once at ``caboosed up``): make PM2 and
    Traefik match the database.

    - every ACTIVE deployment's replicas run (missing ones are started again from the artifact,
      health-checked and routed), and its route file names its hostnames and servers;
    - PM2 processes and route files that belong to no ACTIVE or in-progress deployment are
      deleted (orphans: a crashed worker's half-started replicas, a deleted service's apps).

    A service-environment whose deploy lock is held is skipped this round: its deploy owns
    the processes and the route right now.
    """
    async with ctx.sessions() as session:
        deployments = list(
            (
                await session.scalars(
                    select(Deployment).where(
                        Deployment.status.in_(
                            [DeploymentStatus.ACTIVE, *IN_PROGRESS_DEPLOYMENT_STATUSES]
                        )
                    )
                )
            ).all()
        )
        services = {
            s.id: s
            for s in (
                await session.scalars(
                    select(Service).where(Service.id.in_({d.service_id for d in deployments}))
                )
            ).all()
        }
    runtime, router = ctx.handles.runtime, ctx.handles.router
    statuses = await asyncio.to_thread(runtime.status)
    present = {s.name for s in statuses}
    routes = set(await asyncio.to_thread(router.list_routes))
    keep_names: set[str] = set()
    keep_prefixes: list[str] = []
    keep_routes: set[str] = set()
    restored = fixed_routes = 0
    for deployment in deployments:
        service = services.get(deployment.service_id)
        if service is None:
            continue
        keep_routes.add(route_name_for(deployment.service_id, deployment.environment_id))
        if deployment.status != DeploymentStatus.ACTIVE:
            keep_prefixes.append(replica_prefix(service.name, deployment.id) + "-")
            continue
        names = _names(deployment)
        keep_names.update(names)
        lock = ctx.redis.lock(
            _pair_lock_name(deployment.service_id, deployment.environment_id),
            timeout=ctx.lock_ttl_s,
        )
        if not await lock.acquire(blocking=False):
            keep_prefixes.append(replica_prefix(service.name, deployment.id) + "-")
            continue
        try:
            if names and not set(names) <= present:
                if await _restore(ctx, deployment.id, lock):
                    restored += 1
            elif await _ensure_route(ctx, deployment):
                fixed_routes += 1
        finally:
            with contextlib.suppress(redis.exceptions.LockError, redis.RedisError):
                await lock.release()
    orphans = [
        name
        for name in sorted(present)
        if name not in keep_names and not any(name.startswith(p) for p in keep_prefixes)
    ]
    if orphans:
        logger.info("reconcile: deleting %d orphan process(es): %s", len(orphans), orphans)
        await asyncio.to_thread(runtime.delete, orphans)
    stale_routes = sorted(routes - keep_routes)
    for name in stale_routes:
        await asyncio.to_thread(router.remove, name)
    return {
        "restored": restored,
        "routes_fixed": fixed_routes,
        "orphans_deleted": len(orphans),
        "routes_deleted": len(stale_routes),
    }


async def _ensure_route(ctx: WorkerContext, deployment: Deployment) -> bool:
    """Rewrite the route file of an ACTIVE deployment if it differs from what it should be."""
    async with ctx.sessions() as session:
        hostnames = await hostnames_for(session, deployment.service_id, deployment.environment_id)
        build = await session.get(Build, deployment.build_id) if deployment.build_id else None
    if _is_cron(build):
        return False
    servers = _servers(deployment)
    name = route_name_for(deployment.service_id, deployment.environment_id)
    router = ctx.handles.router
    if not hostnames or not servers:
        return False
    route = Route(name, tuple(hostnames), tuple(servers))
    current = await asyncio.to_thread(router.read_route, name)
    if current == render_route_config(route):
        return False
    await asyncio.to_thread(router.apply, route)
    return True


async def _restore(ctx: WorkerContext, deployment_id: uuid.UUID, lock: Lock) -> bool:
    """Start an ACTIVE deployment's processes again from its artifact (PM2 lost them: the
    machine rebooted, the daemon was killed). CRASHED if that fails."""
    async with ctx.sessions() as session:
        rows = await _load(session, deployment_id)
    if rows is None or rows.build is None or not rows.build.artifact_path:
        return False
    artifact = Path(rows.build.artifact_path)
    result = await asyncio.to_thread(load_build_result, artifact)
    if result is None:
        await _move(
            ctx,
            rows,
            DeploymentStatus.CRASHED,
            allowed_from={DeploymentStatus.ACTIVE},
            reason="its processes were lost and its build is no longer available",
        )
        return False
    async with ctx.sessions() as session:
        spec, redactor = await _spec(
            ctx, session, rows, source=ArtifactSource(artifact), run_pre_deploy=False
        )
    handles = ctx.handles
    await _ship(ctx, spec, max(1, result.plan.num_replicas))
    try:
        async with _reporter(ctx, deployment_id, redactor) as reporter:
            reporter.log(
                "==> Restoring the processes of this deployment (reconcile)", stream="system"
            )
            run = await _run_engine(
                ctx,
                deployment_id,
                lambda cancel: pipeline.release_and_run(
                    spec, result, handles.runtime, handles.router, handles.ports, reporter, cancel
                ),
                locks=[lock],
            )
    except (EngineError, _EngineCrashError) as exc:
        message = exc.message if isinstance(exc, EngineError) else str(exc)
        await _move(
            ctx,
            rows,
            DeploymentStatus.CRASHED,
            allowed_from={DeploymentStatus.ACTIVE},
            reason=f"its processes were lost and could not be restarted: {message}",
        )
        return False
    url = public_url(spec.hostnames[0], ctx.settings.http_port) if run.routed else None
    async with ctx.sessions() as session:
        await session.execute(
            update(Deployment)
            .where(Deployment.id == deployment_id)
            .values(replicas=[r.to_dict() for r in run.replicas], url=url)
            .execution_options(synchronize_session=False)
        )
    return True


# Garbage collection ---------------------------------------------------------------------------


async def collect_garbage(ctx: WorkerContext, *, keep: int = 5) -> dict[str, int]:
    """``cleanup.collect``: keep the last ``keep`` successful builds of each service (and any a
    live or in-progress deployment uses), then the dependency cache entries no kept build
    refers to, and uploaded sources no kept or pending build needs."""
    paths = ctx.handles.paths
    async with ctx.sessions() as session:
        in_use = {
            str(build_id)
            for build_id in (
                await session.scalars(
                    select(Deployment.build_id).where(
                        Deployment.status.in_(
                            [DeploymentStatus.ACTIVE, *IN_PROGRESS_DEPLOYMENT_STATUSES]
                        ),
                        Deployment.build_id.is_not(None),
                    )
                )
            ).all()
        }
        services = {s.id: s for s in (await session.scalars(select(Service))).all()}
        builds = list((await session.scalars(select(Build))).all())
    removed_builds: list[str] = []
    for service_id in services:
        directory = paths.service_artifacts_dir(service_id)
        gone = await asyncio.to_thread(collect_old_artifacts, directory, keep, in_use)
        removed_builds += [p.name for p in gone]
    # Artifacts of services that no longer exist.
    known = {str(s) for s in services}
    if paths.builds_dir.is_dir():
        for child in await asyncio.to_thread(lambda: list(paths.builds_dir.iterdir())):
            if child.is_dir() and child.name not in known:
                await asyncio.to_thread(force_rmtree, child)
    if removed_builds:
        async with ctx.sessions() as session:
            await session.execute(
                update(Build)
                .where(Build.id.in_([uuid.UUID(b) for b in removed_builds]))
                .values(artifact_path=None, updated_at=utcnow())
                .execution_options(synchronize_session=False)
            )
    removed_set = set(removed_builds)
    caches = 0
    by_project: dict[uuid.UUID, list[Path]] = {}
    for build in builds:
        service = services.get(build.service_id)
        if service is None or not build.artifact_path or str(build.id) in removed_set:
            continue
        by_project.setdefault(service.project_id, []).append(Path(build.artifact_path))
    for project_id in {s.project_id for s in services.values()}:
        referenced = await asyncio.to_thread(referenced_cache_keys, by_project.get(project_id, []))
        cache_dir = paths.project_cache_dir(project_id)
        gone = await asyncio.to_thread(collect_unused_cache_entries, cache_dir, referenced)
        caches += len(gone)
    uploads = await asyncio.to_thread(_collect_uploads, paths.uploads_dir, builds, removed_set)
    return {"builds": len(removed_builds), "cache_entries": caches, "uploads": uploads}


def _collect_uploads(directory: Path, builds: Sequence[Build], removed: set[str]) -> int:
    """Delete uploaded tarballs no longer needed: kept while their build is pending or its
    artifact is kept (a redeploy rebuilds from them), and never younger than an hour."""
    needed = {
        b.source_path
        for b in builds
        if b.source_path
        and str(b.id) not in removed
        and (
            b.status in (BuildStatus.QUEUED, BuildStatus.RUNNING)
            or (b.status == BuildStatus.SUCCEEDED and b.artifact_path)
        )
    }
    if not directory.is_dir():
        return 0
    count = 0
    now = time.time()
    for path in directory.iterdir():
        if str(path) in needed or not path.is_file():
            continue
        if now - path.stat().st_mtime < 3600:
            continue
        path.unlink(missing_ok=True)
        count += 1
    return count
