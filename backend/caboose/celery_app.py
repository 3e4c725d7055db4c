"""The Celery application: Redis broker and results, five queues, routing, limits, beat.

Why these settings (the defaults would hurt a PaaS):

- **Late acknowledgement** (``task_acks_late`` + ``task_reject_on_worker_lost``): a message is
  acknowledged when its task *ends*, so a build whose worker process died is delivered again
  rather than lost. Every task must therefore be idempotent: it takes ids, reloads rows, and
  does nothing when the work is already done (a deployment in a final state, a route in place).
- **Prefetch 1**: a worker reserves one message per free process, so a 10-minute build never
  sits in the buffer of a busy worker while another one idles.
- **Visibility timeout above the longest time limit**: with Redis, a message not acknowledged
  within ``visibility_timeout`` is handed to another worker. It must exceed a build's hard limit,
  or a long build would run twice at once. The price is that a message of a worker killed
  outright (SIGKILL, power loss) comes back only after that timeout; the reaper ends its
  deployment long before. A worker stopped normally hands its unfinished messages back at once.
- **Time limits per queue** (hard/soft): builds 3600/3300 s, deploys 900/840 s, housekeeping
  less. The soft limit raises ``SoftTimeLimitExceeded`` inside the task so it can record why it
  stopped; the hard limit kills the process. A task declaring its own limits keeps them.
- **JSON only**: nothing pickled crosses the broker, which deployed apps cannot reach (the
  embedded Redis is password-protected) but which is still a network service.

The broker URL is resolved lazily, when the configuration is first read: the API imports task
modules (to send tasks) before its lifespan has started or found the embedded Redis.
"""

from __future__ import annotations

import logging
import pkgutil
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from celery import Celery
from celery.beat import PersistentScheduler
from celery.signals import setup_logging

from caboose.config import Settings, get_settings
from caboose.server.redis_embedded import EmbeddedRedis

__all__ = [
    "BUILD_TIME_LIMITS",
    "DEFAULT_QUEUE",
    "QUEUES",
    "VISIBILITY_TIMEOUT_S",
    "CabooseCelery",
    "RedisNotConfiguredError",
    "Scheduler",
    "TypedTask",
    "beat_schedule",
    "bound_task",
    "celery_app",
    "celery_config",
    "create_celery_app",
    "queue_for",
    "resolve_redis_url",
    "route_task",
    "task",
    "task_modules",
    "time_limits_for",
]

logger = logging.getLogger("caboose.celery")

QUEUES: tuple[str, ...] = ("build", "deploy", "monitor", "cleanup", "default")
DEFAULT_QUEUE = "default"

# (soft, hard) seconds per queue. Deploys cover a health check (default timeout 300 s) plus the
# overlap/draining of the previous deployment; monitor tasks are samples that must not pile up.
BUILD_TIME_LIMITS = (3300, 3600)
_TIME_LIMITS: Mapping[str, tuple[int, int]] = {
    "build": BUILD_TIME_LIMITS,
    "deploy": (840, 900),
    "monitor": (100, 120),
    "cleanup": (1500, 1800),
    "default": (270, 300),
}
VISIBILITY_TIMEOUT_S = 2 * BUILD_TIME_LIMITS[1]
# A stopping worker lets running tasks finish for this long, then hands them back to the broker.
SOFT_SHUTDOWN_TIMEOUT_S = 10.0

# Task name → queue, first match wins. A name ending in "." is a prefix, anything else exact.
# The reaper and the reconciler are housekeeping: they go to "monitor" so they never wait behind
# a long deploy in the "deploy" queue (ending stuck deployments is their whole point).
_ROUTES: tuple[tuple[str, str], ...] = (
    ("deployments.build", "build"),
    ("builds.", "build"),
    ("deployments.reap", "monitor"),
    ("deployments.reconcile", "monitor"),
    ("deployments.", "deploy"),
    ("monitor.", "monitor"),
    ("cleanup.", "cleanup"),
)

_P = ParamSpec("_P")
_R = TypeVar("_R", covariant=True)
_Ri = TypeVar("_Ri")


class RedisNotConfiguredError(RuntimeError):
    """No ``CABOOSE_REDIS_URL`` and no embedded Redis running for this data dir."""


def queue_for(task_name: str) -> str:
    """The queue a task goes to, from its name (``deployments.build`` → ``build``)."""
    for pattern, queue in _ROUTES:
        if task_name == pattern or (pattern.endswith(".") and task_name.startswith(pattern)):
            return queue
    return DEFAULT_QUEUE


def route_task(
    name: str,
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    options: Mapping[str, Any],
    task: Any = None,
    **extra: Any,
) -> dict[str, str]:
    """Celery router (``task_routes``): by name, so beat and ``send_task`` route like calls."""
    return {"queue": queue_for(name)}


def time_limits_for(task_name: str) -> tuple[int, int]:
    """(soft, hard) time limits in seconds of the queue ``task_name`` goes to."""
    return _TIME_LIMITS[queue_for(task_name)]


class _QueueTimeLimits:
    """A ``task_annotations`` entry giving each task its queue's limits unless it set its own."""

    def annotate(self, task: Any) -> dict[str, int] | None:
        if getattr(task, "time_limit", None) is not None:
            return None
        if getattr(task, "soft_time_limit", None) is not None:
            return None
        soft, hard = time_limits_for(str(task.name))
        return {"soft_time_limit": soft, "time_limit": hard}

    def annotate_any(self) -> None:
        return None


def beat_schedule() -> dict[str, dict[str, Any]]:
    """The periodic tasks. Each expires after its own period: if no worker took it by then, the
    next run supersedes it instead of queueing behind it (a stopped worker must not come back
    to a pile of stale reaper runs)."""
    return {
        "reap-stuck-deployments": {
            "task": "deployments.reap",
            "schedule": 30.0,
            "options": {"expires": 30},
        },
        "reconcile-runtime": {
            "task": "deployments.reconcile",
            "schedule": 60.0,
            "options": {"expires": 60},
        },
        "collect-garbage": {
            "task": "cleanup.collect",
            "schedule": 3600.0,
            "options": {"expires": 3600},
        },
    }


def task_modules() -> list[str]:
    """Every public module of :mod:`caboose.tasks`: what workers import to register tasks."""
    import caboose.tasks

    return sorted(
        f"caboose.tasks.{module.name}"
        for module in pkgutil.iter_modules(caboose.tasks.__path__)
        if not module.name.startswith("_")
    )


def resolve_redis_url(settings: Settings) -> str:
    """``CABOOSE_REDIS_URL``, else the data dir's embedded Redis (the same rule as the API)."""
    if settings.redis_url:
        return settings.redis_url
    url = EmbeddedRedis(settings.data_dir).attach()
    if url is None:
        raise RedisNotConfiguredError(
            f"no Redis: set CABOOSE_REDIS_URL, or start the platform (`caboosed up`) so the "
            f"embedded Redis of {settings.data_dir} runs"
        )
    return url


def celery_config(redis_url: str) -> dict[str, Any]:
    """The whole configuration, for a broker and result backend at ``redis_url``."""
    return {
        "broker_url": redis_url,
        "result_backend": redis_url,
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": {"visibility_timeout": VISIBILITY_TIMEOUT_S},
        "result_backend_transport_options": {"visibility_timeout": VISIBILITY_TIMEOUT_S},
        # Serialization: JSON only, both ways.
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        "timezone": "UTC",
        "enable_utc": True,
        # Queues and routing.
        # {name: options} declares each queue (exchange and routing key named after it).
        "task_queues": {name: {"exchange": name, "routing_key": name} for name in QUEUES},
        "task_default_queue": DEFAULT_QUEUE,
        "task_default_routing_key": DEFAULT_QUEUE,
        "task_create_missing_queues": True,  # node.<name> queues of runtime nodes, later
        "task_routes": (route_task,),
        # Limits per queue, set on each task class (no global task_time_limit: Celery copies
        # it onto every task before annotations run, hiding which tasks chose their own).
        "task_annotations": (_QueueTimeLimits(),),
        # Delivery: late acks, redelivery of a lost worker's task, one message per process.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        # With late acks, a task still running when the broker connection drops cannot be
        # acknowledged any more: cancel it (it is redelivered) rather than finish it twice.
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        "worker_soft_shutdown_timeout": SOFT_SHUTDOWN_TIMEOUT_S,
        # Results and states: small, short-lived; STARTED lets the API tell queued from running.
        "task_track_started": True,
        "result_expires": timedelta(days=1),
        # No task events (-E off): nothing consumes them, and they cost a publish per state.
        "worker_send_task_events": False,
        "task_send_sent_event": False,
        # Beat.
        "beat_schedule": beat_schedule(),
        "beat_scheduler": "caboose.celery_app:Scheduler",
        "include": task_modules(),
    }


class CabooseCelery(Celery):  # type: ignore[misc]  # Celery is untyped
    """Celery, configured on first use for the Redis that settings resolve to, unless
    :meth:`use_redis` named one first."""

    redis_url: str | None = None

    def use_redis(self, url: str) -> None:
        """Point broker and results at ``url`` (the test harness; code that knows better).
        Works before and after the configuration was first read."""
        self.redis_url = url
        if self.configured:
            self.conf.update(celery_config(url))


def create_celery_app(
    redis_url: str | None = None,
    *,
    settings: Settings | None = None,
    set_as_current: bool = False,
) -> CabooseCelery:
    """A Celery app for ``redis_url``, or (None) for the URL settings resolve to when the
    configuration is first read."""
    app = CabooseCelery("caboose", set_as_current=set_as_current)
    app.redis_url = redis_url

    def lazy_config() -> dict[str, Any]:
        url = app.redis_url or resolve_redis_url(settings or get_settings())
        return celery_config(url)

    app.add_defaults(lazy_config)
    return app


celery_app = create_celery_app(set_as_current=True)


# Typed decorators ---------------------------------------------------------------------------
# Celery ships no type information: these keep task signatures checked by mypy at call sites.


class TypedTask(Protocol[_P, _R]):
    """What ``@task`` returns: the Celery task, with its arguments typed."""

    name: str

    def __call__(self, *args: _P.args, **kwargs: _P.kwargs) -> _R: ...

    def delay(self, *args: _P.args, **kwargs: _P.kwargs) -> Any: ...

    def apply_async(
        self,
        args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> Any: ...


def task(name: str, **options: Any) -> Callable[[Callable[_P, _Ri]], TypedTask[_P, _Ri]]:
    """``@celery_app.task`` with an explicit name (required: names route to queues).

    Example::

        @task("deployments.build", base=DatabaseTask, autoretry_for=TRANSIENT_ERRORS)
        def build(deployment_id: str) -> None: ...
    """

    def decorate(fn: Callable[_P, _Ri]) -> TypedTask[_P, _Ri]:
        created: TypedTask[_P, _Ri] = celery_app.task(name=name, **options)(fn)
        return created

    return decorate


def bound_task(
    name: str, **options: Any
) -> Callable[[Callable[Concatenate[Any, _P], _Ri]], TypedTask[_P, _Ri]]:
    """Like :func:`task` with ``bind=True``: the function receives the task as ``self``
    (for ``self.retry``, ``self.request``)."""

    def decorate(fn: Callable[Concatenate[Any, _P], _Ri]) -> TypedTask[_P, _Ri]:
        created: TypedTask[_P, _Ri] = celery_app.task(name=name, bind=True, **options)(fn)
        return created

    return decorate


# Signals -------------------------------------------------------------------------------------


def _configure_logging(loglevel: Any = None, **_: Any) -> None:
    """Workers and beat log like the API (key=value, JSON in production) instead of Celery's
    own format: connecting this signal is how Celery is told not to configure logging."""
    from caboose.core.logging import configure_logging

    settings = get_settings()
    level = loglevel if isinstance(loglevel, str) else settings.log_level
    if isinstance(loglevel, int):
        level = logging.getLevelName(loglevel)
    configure_logging(level=level, as_json=settings.logs_as_json)


class Scheduler(PersistentScheduler):  # type: ignore[misc]  # Celery is untyped
    """Beat's scheduler (``beat_scheduler``): the persistent one, leaving out schedule entries
    whose task no module registers (yet), with a warning, rather than have workers log
    "unregistered task" at every tick. Tasks are all imported when beat sets up its schedule."""

    def setup_schedule(self) -> None:
        schedule = dict(self.app.conf.beat_schedule or {})
        missing = {
            key: entry["task"]
            for key, entry in schedule.items()
            if entry["task"] not in self.app.tasks
        }
        if missing:
            logger.warning(
                "beat: not scheduling %s: no such task registered",
                ", ".join(f"{key} ({name})" for key, name in sorted(missing.items())),
            )
            self.app.conf.beat_schedule = {
                key: entry for key, entry in schedule.items() if key not in missing
            }
        super().setup_schedule()


setup_logging.connect(_configure_logging, weak=False)
