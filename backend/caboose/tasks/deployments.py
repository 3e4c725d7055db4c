"""Celery tasks of the deploy pipeline: thin wrappers, ids in, the work in ``deploys.executor``.

| task | queue | what |
| --- | --- | --- |
| ``deployments.build`` | build | fetch, plan, build; then sends ``deployments.deploy`` |
| ``deployments.deploy`` | deploy | release, run, health, route, retire the previous one |
| ``deployments.cancel`` | deploy | raise the cancel flag, clean up what a cancelled one left |
| ``deployments.remove`` | deploy | unroute and stop a REMOVED deployment |
| ``deployments.sync_route`` | deploy | re-route a service-environment after a domain change |
| ``deployments.reap`` | monitor | every 30 s: end deployments of dead workers; CRASHED |
| ``deployments.reconcile`` | monitor | every 60 s and at start: PM2 and Traefik match the DB |
| ``cleanup.collect`` | cleanup | hourly: old builds, unused cache entries, old uploads |

Every task is idempotent (see the executor's docstring) and retried with exponential backoff
only for transient faults (database or Redis unreachable or busy); a user's failing build is
never retried. A soft time limit ends the deployment FAILED with the reason before the hard
limit kills the process.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import redis
import redis.asyncio
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import worker_process_init

from caboose.celery_app import resolve_redis_url, task
from caboose.config import Settings, get_settings
from caboose.core.keys import platform_keys
from caboose.deploys import executor
from caboose.deploys.actions import celery_sender
from caboose.deploys.executor import WorkerContext
from caboose.deploys.handles import engine_handles
from caboose.deploys.pm2_bridge import BridgedPm2Runtime
from caboose.logs.config import archive_root
from caboose.tasks.base import TRANSIENT_ERRORS, DatabaseTask, run_async, task_session

__all__ = [
    "build",
    "cancel",
    "collect",
    "deploy",
    "reap",
    "reconcile",
    "remove",
    "sync_route",
    "worker_context",
]

T = TypeVar("T")
logger = logging.getLogger("caboose.tasks")

# How long a BUILDING/DEPLOYING deployment may go without a heartbeat before the reaper ends it
# (workers beat every 5 s). A setting may lower it (tests of the reaper).
DEFAULT_STALE_AFTER_S = 60.0

_sync_clients: dict[tuple[int, str], redis.Redis] = {}
_sync_lock = threading.Lock()


def _sync_redis(url: str) -> redis.Redis:
    """One synchronous client per process (the engine's thread writes log lines with it)."""
    key = (os.getpid(), url)
    with _sync_lock:
        client = _sync_clients.get(key)
        if client is None:
            client = redis.Redis.from_url(url, decode_responses=True)
            _sync_clients[key] = client
        return client


def _float_setting(settings: Settings, name: str, default: float) -> float:
    value = getattr(settings, name, None)
    if value is None:
        value = os.environ.get(f"CABOOSE_{name.upper()}")
    try:
        return float(value) if value is not None else default
    except ValueError:
        return default


@contextlib.asynccontextmanager
async def worker_context(settings: Settings | None = None) -> AsyncIterator[WorkerContext]:
    """The executor's context in a worker process: its sessions, Redis, PM2 and Traefik."""
    settings = settings or get_settings()
    url = resolve_redis_url(settings)
    client = redis.asyncio.Redis.from_url(url, decode_responses=True)
    try:
        yield WorkerContext(
            settings=settings,
            sessions=task_session,
            redis=client,
            sync_redis=_sync_redis(url),
            redis_url=url,
            archive_root=archive_root(settings),
            handles=engine_handles(settings.data_dir),
            sender=celery_sender,
            keys=platform_keys(settings),
            stale_after_s=_float_setting(
                settings, "deploy_stale_after_seconds", DEFAULT_STALE_AFTER_S
            ),
        )
    finally:
        await client.aclose()


def _prewarm(**_: object) -> None:
    """A new worker process: start its PM2 bridge and probe the build tools in the background,
    so the first deploy it takes does not pay for them."""

    def warm() -> None:
        try:
            handles = engine_handles(get_settings().data_dir)
            if isinstance(handles.runtime, BridgedPm2Runtime):
                handles.runtime.bridge.call("ping")
            handles.tools.runtimes()
        except Exception:  # a cold start is still correct, only slower
            logger.debug("worker pre-warm failed", exc_info=True)

    threading.Thread(target=warm, name="deploy-prewarm", daemon=True).start()


worker_process_init.connect(_prewarm, weak=False)


def _run(work: Callable[[WorkerContext], Awaitable[T]]) -> T:
    async def main() -> T:
        async with worker_context() as ctx:
            return await work(ctx)

    return run_async(main())


def _fail_on_time_limit(deployment_id: str, what: str) -> str:
    reason = f"the {what} ran past its time limit and was stopped"
    _run(lambda ctx: executor.fail(ctx, deployment_id, reason))
    return "timed out"


@task("deployments.build", base=DatabaseTask, autoretry_for=TRANSIENT_ERRORS)
def build(deployment_id: str) -> str:
    """Build a deployment's source (see ``executor.run_build``)."""
    try:
        return _run(lambda ctx: executor.run_build(ctx, deployment_id))
    except SoftTimeLimitExceeded:
        return _fail_on_time_limit(deployment_id, "build")


@task("deployments.deploy", base=DatabaseTask, autoretry_for=TRANSIENT_ERRORS)
def deploy(deployment_id: str) -> str:
    """Run a built deployment and swap it in (see ``executor.run_deploy``)."""
    try:
        return _run(lambda ctx: executor.run_deploy(ctx, deployment_id))
    except SoftTimeLimitExceeded:
        return _fail_on_time_limit(deployment_id, "deploy")


@task("deployments.cancel", base=DatabaseTask, autoretry_for=TRANSIENT_ERRORS)
def cancel(deployment_id: str) -> str:
    return _run(lambda ctx: executor.cancel(ctx, deployment_id))


@task("deployments.remove", base=DatabaseTask, autoretry_for=TRANSIENT_ERRORS)
def remove(deployment_id: str) -> str:
    return _run(lambda ctx: executor.remove(ctx, deployment_id))


@task("deployments.sync_route", base=DatabaseTask, autoretry_for=TRANSIENT_ERRORS)
def sync_route(service_id: str, environment_id: str) -> str:
    return _run(lambda ctx: executor.sync_route(ctx, service_id, environment_id))


@task("deployments.reap", base=DatabaseTask)
def reap(stale_after_s: float | None = None) -> dict[str, int]:
    """Periodic: no retries (the next run comes in 30 s anyway). ``stale_after_s`` overrides
    how long a heartbeat may be quiet (an operator reaping after killing a worker)."""
    return _run(lambda ctx: executor.reap(ctx, stale_after_s=stale_after_s))


@task("deployments.reconcile", base=DatabaseTask)
def reconcile() -> dict[str, int]:
    return _run(executor.reconcile)


@task("cleanup.collect", base=DatabaseTask)
def collect() -> dict[str, int]:
    return _run(executor.collect_garbage)
