"""The platform's own Prometheus metrics (``GET /metrics``).

Three kinds, by where the truth lives:

- **Requests** (counts and latency by method, route *template* and status) are counted in the
  API process by :class:`PrometheusMiddleware`: pure ASGI, so it costs two ``perf_counter``
  calls per request and leaves WebSockets alone. The template (``/api/v1/deployments/
  {deployment_id}``), never the raw path, keeps the number of series bounded.
- **Build durations** are observed by the build task, in a worker process the API cannot see:
  :func:`observe_build_duration` adds to a histogram kept in a Redis hash, read at scrape time.
- **Deployments by status** and **queue depth** are read at scrape time (one ``GROUP BY`` on an
  indexed column, a few ``LLEN``): always true, never double counted, nothing to keep in step.

With several API processes each counts its own requests; run them with one
``PROMETHEUS_MULTIPROC_DIR`` (prometheus_client's multi-process mode) to sum them in one scrape.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from caboose.models import Deployment, DeploymentStatus

REGISTRY: Final = CollectorRegistry(auto_describe=True)

HTTP_REQUESTS: Final = Counter(
    "caboose_http_requests",
    "HTTP requests served, by method, route template and status code.",
    ["method", "route", "status"],
    registry=REGISTRY,
)
HTTP_DURATION: Final = Histogram(
    "caboose_http_request_duration_seconds",
    "Time to serve an HTTP request, by method and route template.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=REGISTRY,
)

UNMATCHED_ROUTE: Final = "<unmatched>"


def route_template(scope: Scope) -> str:
    """The path template of the route that served ``scope``, e.g.
    ``/api/v1/deployments/{deployment_id}/logs``.

    The router records the route in ``scope["route"]``; a route of an included router keeps its
    own path there, without the prefixes it was included under. Every template segment matches
    one path segment (no ``{x:path}`` routes here), so the prefix is the path's leading segments
    that the template does not cover.
    """
    route = scope.get("route")
    template = getattr(route, "path", None)
    if not isinstance(template, str) or not template:
        return UNMATCHED_ROUTE
    if ":path}" in template:
        return template
    segments = str(scope.get("path", "")).lstrip("/").split("/")
    covered = len(template.lstrip("/").split("/"))
    if len(segments) <= covered:
        return template
    return "/" + "/".join(segments[: len(segments) - covered]) + template


class PrometheusMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            method = str(scope.get("method", "GET"))
            route = route_template(scope)
            HTTP_REQUESTS.labels(method, route, str(status)).inc()
            HTTP_DURATION.labels(method, route).observe(time.perf_counter() - started)


# Build durations, kept in Redis -------------------------------------------------------------

BUILD_DURATIONS_KEY: Final = "caboose:metrics:build-durations"
BUILD_BUCKETS: Final = (5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0)


def _bucket_label(seconds: float) -> str:
    for bound in BUILD_BUCKETS:
        if seconds <= bound:
            return repr(bound)
    return "+Inf"


async def observe_build_duration(redis: Redis, seconds: float, *, outcome: str) -> None:
    """Record one build that took ``seconds``; ``outcome`` is ``succeeded``, ``failed`` or
    ``cancelled`` (called by the build task when a build ends)."""
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hincrby(BUILD_DURATIONS_KEY, f"{outcome}|{_bucket_label(seconds)}", 1)
        pipe.hincrbyfloat(BUILD_DURATIONS_KEY, f"{outcome}|sum", seconds)
        pipe.hincrby(BUILD_DURATIONS_KEY, f"{outcome}|count", 1)
        await pipe.execute()


# Scrape-time values ---------------------------------------------------------------------------

# Kombu's Redis transport keeps a queue's messages in a list named after it, and prioritised
# ones in "<queue>\x06\x16<priority>" lists.
_PRIORITY_SUFFIXES: Final = ("", "\x06\x163", "\x06\x166", "\x06\x169")


@dataclass(slots=True)
class PlatformSnapshot:
    deployments: dict[str, int] = field(default_factory=dict)
    queues: dict[str, int] = field(default_factory=dict)
    builds: dict[str, dict[str, float]] = field(default_factory=dict)


async def take_snapshot(
    session: AsyncSession, redis: Redis, queues: Sequence[str]
) -> PlatformSnapshot:
    snapshot = PlatformSnapshot()
    rows = await session.execute(
        select(Deployment.status, func.count()).group_by(Deployment.status)
    )
    counts = {str(status): int(count) for status, count in rows.all()}
    snapshot.deployments = {
        status.value: counts.get(status.value, 0) for status in DeploymentStatus
    }
    async with redis.pipeline(transaction=False) as pipe:
        for queue in queues:
            for suffix in _PRIORITY_SUFFIXES:
                pipe.llen(queue + suffix)
        pipe.hgetall(BUILD_DURATIONS_KEY)
        results = await pipe.execute()
    lengths, raw_builds = results[:-1], results[-1]
    per_queue = len(_PRIORITY_SUFFIXES)
    for position, queue in enumerate(queues):
        chunk = lengths[position * per_queue : (position + 1) * per_queue]
        snapshot.queues[queue] = sum(int(n) for n in chunk)
    for name, value in (raw_builds or {}).items():
        key = name.decode() if isinstance(name, bytes) else str(name)
        outcome, _, part = key.partition("|")
        snapshot.builds.setdefault(outcome, {})[part] = float(value)
    return snapshot


class _SnapshotCollector(Collector):
    def __init__(self, snapshot: PlatformSnapshot) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        deployments = GaugeMetricFamily(
            "caboose_deployments", "Deployments by status.", labels=["status"]
        )
        for status, count in sorted(self.snapshot.deployments.items()):
            deployments.add_metric([status], count)
        yield deployments
        queues = GaugeMetricFamily(
            "caboose_queue_depth", "Tasks waiting in each Celery queue.", labels=["queue"]
        )
        for queue, depth in sorted(self.snapshot.queues.items()):
            queues.add_metric([queue], depth)
        yield queues
        builds = HistogramMetricFamily(
            "caboose_build_duration_seconds",
            "How long builds took, by outcome.",
            labels=["outcome"],
        )
        for outcome, parts in sorted(self.snapshot.builds.items()):
            builds.add_metric([outcome], _cumulative(parts), parts.get("sum", 0.0))
        yield builds


def _cumulative(parts: dict[str, float]) -> list[tuple[str, float]]:
    buckets: list[tuple[str, float]] = []
    running = 0.0
    for bound in BUILD_BUCKETS:
        running += parts.get(repr(bound), 0.0)
        buckets.append((repr(bound), running))
    buckets.append(("+Inf", parts.get("count", running + parts.get("+Inf", 0.0))))
    return buckets


def render(snapshot: PlatformSnapshot, extra: Iterable[CollectorRegistry] = ()) -> bytes:
    """The exposition text: request metrics, then the scrape-time ones."""
    scraped = CollectorRegistry(auto_describe=False)
    scraped.register(_SnapshotCollector(snapshot))
    return b"".join(generate_latest(r) for r in (REGISTRY, *extra, scraped))
