"""The Celery app's configuration: queues, routing, limits, serialization, beat; task helpers."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from caboose.celery_app import (
    BUILD_TIME_LIMITS,
    QUEUES,
    VISIBILITY_TIMEOUT_S,
    RedisNotConfiguredError,
    beat_schedule,
    create_celery_app,
    queue_for,
    resolve_redis_url,
    task_modules,
    time_limits_for,
)
from caboose.config import Settings
from caboose.tasks import base

REDIS_URL = "redis://:secret@127.0.0.1:6390/0"


@pytest.mark.parametrize(
    ("task_name", "queue"),
    [
        ("deployments.build", "build"),
        ("builds.prune_cache", "build"),
        ("deployments.deploy", "deploy"),
        ("deployments.cancel", "deploy"),
        ("deployments.buildx", "deploy"),  # exact names are exact
        ("deployments.reap", "monitor"),
        ("deployments.reconcile", "monitor"),
        ("monitor.sample", "monitor"),
        ("cleanup.collect", "cleanup"),
        ("platform.ping", "default"),
        ("webhooks.github", "default"),
    ],
)
def test_tasks_are_routed_by_name(task_name: str, queue: str) -> None:
    assert queue_for(task_name) == queue
    app = create_celery_app(REDIS_URL)
    route = app.amqp.router.route({}, task_name)
    assert route["queue"].name == queue


def test_configuration() -> None:
    conf = create_celery_app(REDIS_URL).conf
    assert conf.broker_url == REDIS_URL
    assert conf.result_backend == REDIS_URL
    assert (
        set(conf.task_queues)
        == set(QUEUES)
        == {
            "build",
            "deploy",
            "monitor",
            "cleanup",
            "default",
        }
    )
    assert conf.task_default_queue == "default"
    assert conf.accept_content == ["json"]
    assert conf.task_serializer == conf.result_serializer == "json"
    assert conf.worker_prefetch_multiplier == 1
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.broker_connection_retry_on_startup is True
    assert conf.task_track_started is True
    assert conf.result_expires.total_seconds() == 86400
    assert conf.worker_send_task_events is False
    # Longer than the longest task: a running build is never handed to a second worker.
    assert conf.broker_transport_options["visibility_timeout"] == VISIBILITY_TIMEOUT_S
    assert BUILD_TIME_LIMITS[1] < VISIBILITY_TIMEOUT_S


def test_time_limits_follow_the_queue_unless_the_task_sets_its_own() -> None:
    assert time_limits_for("deployments.build") == (3300, 3600)
    app = create_celery_app(REDIS_URL)

    @app.task(name="deployments.build")
    def build() -> None:
        return None

    @app.task(name="deployments.deploy")
    def deploy() -> None:
        return None

    @app.task(name="monitor.custom", time_limit=5, soft_time_limit=4)
    def custom() -> None:
        return None

    app.finalize()
    assert (app.tasks["deployments.build"].soft_time_limit, build.time_limit) == (3300, 3600)
    deploy_task = app.tasks["deployments.deploy"]
    assert (deploy_task.soft_time_limit, deploy_task.time_limit) == (840, 900)
    assert (custom.soft_time_limit, custom.time_limit) == (4, 5)


def test_beat_schedule_has_the_housekeeping_tasks() -> None:
    schedule = beat_schedule()
    by_task = {entry["task"]: entry for entry in schedule.values()}
    assert by_task["deployments.reap"]["schedule"] == 30.0
    assert by_task["deployments.reconcile"]["schedule"] == 60.0
    assert by_task["cleanup.collect"]["schedule"] == 3600.0
    # A periodic run nobody took before the next is due is dropped, not stacked.
    assert all(e["options"]["expires"] <= e["schedule"] for e in schedule.values())


def test_task_modules_are_discovered_and_ping_is_registered(redis_url: str) -> None:
    modules = task_modules()
    assert "caboose.tasks.platform" in modules
    assert all(m.startswith("caboose.tasks.") for m in modules)

    from caboose.celery_app import celery_app
    from caboose.tasks.platform import ping

    celery_app.use_redis(redis_url)  # as a test harness would: the session's Redis
    assert celery_app.conf.broker_url == redis_url

    assert ping.name == "platform.ping"
    assert ping() == "pong"
    assert queue_for(ping.name) == "default"


def test_the_redis_url_is_resolved_lazily(tmp_path: Path) -> None:
    """Importing the app must not need Redis (the API imports task modules at start-up)."""
    settings = Settings(data_dir=tmp_path, redis_url=None)
    app = create_celery_app(settings=settings)  # nothing resolved yet
    with pytest.raises(RedisNotConfiguredError, match="CABOOSE_REDIS_URL"):
        _ = app.conf.broker_url
    configured = Settings(data_dir=tmp_path, redis_url=REDIS_URL)
    assert resolve_redis_url(configured) == REDIS_URL
    assert create_celery_app(settings=configured).conf.broker_url == REDIS_URL

    unresolvable = create_celery_app(settings=settings)
    unresolvable.use_redis(REDIS_URL)  # named before first use: no resolution at all
    assert unresolvable.conf.broker_url == REDIS_URL
    unresolvable.use_redis("redis://127.0.0.1:6391/0")  # and after
    assert unresolvable.conf.result_backend == "redis://127.0.0.1:6391/0"


# The helpers of tasks/base.py ----------------------------------------------------------------


@pytest.fixture
def task_runtime(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Task helpers bound to the test database, disposed after the test."""
    monkeypatch.setattr(base, "get_settings", lambda: settings)
    base.dispose_runtime()
    try:
        yield
    finally:
        base.dispose_runtime()


def test_run_async_reuses_one_loop_per_process(task_runtime: None) -> None:
    async def current_loop() -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    first = base.run_async(current_loop())
    assert base.run_async(current_loop()) is first
    assert not first.is_closed()


def test_task_session_reads_the_database(task_runtime: None) -> None:
    async def query() -> int:
        async with base.task_session() as session:
            return int((await session.execute(text("SELECT 41 + 1"))).scalar_one())

    assert base.run_async(query()) == 42
    assert base.run_async(query()) == 42  # same engine, same loop: the pool is reused


class SoftLimitError(Exception):
    """Stands for Celery's SoftTimeLimitExceeded, raised from a signal handler."""


def test_an_interrupted_run_is_cancelled_and_the_loop_stays_usable(task_runtime: None) -> None:
    cleaned_up: list[str] = []

    async def long_work() -> None:
        try:
            await asyncio.sleep(30)
        finally:
            cleaned_up.append("rolled back")

    def raise_soft_limit(_signum: int, _frame: object) -> None:
        raise SoftLimitError

    previous = signal.signal(signal.SIGALRM, raise_soft_limit)
    signal.setitimer(signal.ITIMER_REAL, 0.1)
    try:
        with pytest.raises(SoftLimitError):
            base.run_async(long_work())
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert cleaned_up == ["rolled back"]

    async def answer() -> str:
        return "still works"

    assert base.run_async(answer()) == "still works"


def test_run_async_refuses_to_nest(task_runtime: None) -> None:
    async def nested() -> None:
        coro = asyncio.sleep(0)
        base.run_async(coro)

    with pytest.raises(RuntimeError, match="inside the event loop"):
        base.run_async(nested())
