"""CPU and memory of each replica, sampled with psutil into bounded Redis series.

A replica is the process PM2 started (``bash -c`` running the user's command) *and its
descendants*: the app is usually a child of that shell, so the whole tree is summed.

Series are per service, environment and replica index — not per deployment — so a chart spans
redeploys. Each sample is a Redis Stream entry (the id is the time; ``XADD MINID ~`` drops what
is older than the retention, 24 h by default), keeping the tree's cumulative CPU seconds next
to the percentage: CPU % is the CPU time used since the previous sample over the time elapsed,
computed from that stored value. The sampler therefore keeps no state in memory and can run in
any worker process, whichever one the ``monitor`` queue hands the next tick to.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import psutil
from redis.asyncio import Redis
from redis.typing import EncodableT, FieldT

from caboose.logs.streams import decode_entries

PREFIX: Final = "caboose:metrics:"
# Charts get at most about this many points whatever the window (a 24 h window of 10 s samples
# would otherwise be 8 640 points per replica).
MAX_POINTS: Final = 360


def series_key(service_id: str | uuid.UUID, environment_id: str | uuid.UUID, index: int) -> str:
    return f"{PREFIX}{service_id}:{environment_id}:{index}"


def replicas_key(service_id: str | uuid.UUID, environment_id: str | uuid.UUID) -> str:
    return f"{PREFIX}{service_id}:{environment_id}:replicas"


@dataclass(frozen=True, slots=True)
class ProcessTree:
    pid: int
    create_time: float
    cpu_seconds: float
    rss_bytes: int


def measure(pid: int) -> ProcessTree | None:
    """The process ``pid`` and its descendants (None if it is gone). Blocking: reads /proc."""
    try:
        root = psutil.Process(pid)
        with root.oneshot():
            create_time = float(root.create_time())
            times = root.cpu_times()
            cpu = float(times.user + times.system)
            rss = int(root.memory_info().rss)
        children = root.children(recursive=True)
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None
    for child in children:
        try:
            with child.oneshot():
                child_times = child.cpu_times()
                cpu += float(child_times.user + child_times.system)
                rss += int(child.memory_info().rss)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue  # exited between listing and reading: it no longer uses anything
    return ProcessTree(pid, create_time, cpu, rss)


@dataclass(frozen=True, slots=True)
class MetricPoint:
    at_ms: int
    cpu_percent: float
    memory_bytes: int


@dataclass(slots=True)
class ReplicaSeries:
    index: int
    deployment_id: str | None = None
    pid: int | None = None
    restarts: int = 0
    points: list[MetricPoint] = field(default_factory=list)


def _cpu_percent(tree: ProcessTree, now: float, previous: Mapping[str, str] | None) -> float:
    if previous is not None:
        same_process = previous.get("pid") == str(tree.pid) and previous.get("ct") == repr(
            tree.create_time
        )
        elapsed = now - float(previous.get("at", "0"))
        if same_process and elapsed > 0:
            used = tree.cpu_seconds - float(previous.get("cpu_s", "0"))
            return max(0.0, used / elapsed * 100)
    # First sample of this process: its average since it started.
    lifetime = now - tree.create_time
    return max(0.0, tree.cpu_seconds / lifetime * 100) if lifetime > 0 else 0.0


class MetricsSampler:
    def __init__(self, redis: Redis, *, retention_seconds: float = 24 * 3600) -> None:
        self.redis = redis
        self.retention_ms = round(retention_seconds * 1000)

    async def sample(
        self,
        *,
        service_id: str | uuid.UUID,
        environment_id: str | uuid.UUID,
        deployment_id: str | uuid.UUID,
        replicas: Iterable[Mapping[str, Any]],
    ) -> int:
        """Sample the replicas of one deployment (``[{index, pid, restarts, ...}]`` as the
        pipeline stores them); returns the number of samples stored."""
        running = [
            (int(replica["index"]), int(replica["pid"]), int(replica.get("restarts") or 0))
            for replica in replicas
            if replica.get("pid")
        ]
        if not running:
            return 0
        trees = await asyncio.to_thread(lambda: [measure(pid) for _, pid, _ in running])
        now = time.time()
        keys = [series_key(service_id, environment_id, index) for index, _, _ in running]
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.xrevrange(key, count=1)
            previous_raw = await pipe.execute()
        minid = f"{round(now * 1000) - self.retention_ms}-0"
        stored = 0
        async with self.redis.pipeline(transaction=False) as pipe:
            for (index, _, restarts), key, tree, raw in zip(
                running, keys, trees, previous_raw, strict=True
            ):
                if tree is None:
                    continue
                last = decode_entries(raw)
                previous = (
                    {**last[0][1], "at": str(int(last[0][0].split("-")[0]) / 1000)}
                    if last
                    else None
                )
                fields: dict[FieldT, EncodableT] = {
                    "cpu": f"{_cpu_percent(tree, now, previous):.2f}",
                    "rss": str(tree.rss_bytes),
                    "cpu_s": repr(tree.cpu_seconds),
                    "pid": str(tree.pid),
                    "ct": repr(tree.create_time),
                    "restarts": str(restarts),
                    "deployment": str(deployment_id),
                }
                pipe.xadd(key, fields, minid=minid, approximate=True)
                pipe.sadd(replicas_key(service_id, environment_id), str(index))
                pipe.pexpire(replicas_key(service_id, environment_id), self.retention_ms)
                pipe.pexpire(key, self.retention_ms)
                stored += 1
            await pipe.execute()
        return stored

    async def series(
        self,
        *,
        service_id: str | uuid.UUID,
        environment_id: str | uuid.UUID,
        window_seconds: int,
        now: float | None = None,
    ) -> tuple[int, list[ReplicaSeries]]:
        """``(resolution_seconds, series per replica)``: points averaged over buckets of
        ``resolution_seconds`` so a window has at most :data:`MAX_POINTS` points."""
        resolution = max(10, -(-window_seconds // MAX_POINTS))
        now = time.time() if now is None else now
        start_ms = round((now - window_seconds) * 1000)
        members = await self.redis.smembers(replicas_key(service_id, environment_id))
        indexes = sorted(int(m) for m in members)
        async with self.redis.pipeline(transaction=False) as pipe:
            for index in indexes:
                pipe.xrange(series_key(service_id, environment_id, index), min=f"{start_ms}-0")
            results = await pipe.execute()
        series: list[ReplicaSeries] = []
        for index, raw in zip(indexes, results, strict=True):
            entries = decode_entries(raw)
            if not entries:
                continue
            replica = ReplicaSeries(index)
            latest = entries[-1][1]
            replica.deployment_id = latest.get("deployment") or None
            replica.pid = int(latest["pid"]) if latest.get("pid") else None
            replica.restarts = int(latest.get("restarts") or 0)
            buckets: dict[int, list[tuple[float, int]]] = {}
            for entry_id, fields in entries:
                at_ms = int(entry_id.split("-")[0])
                bucket = at_ms // (resolution * 1000) * resolution * 1000
                buckets.setdefault(bucket, []).append(
                    (float(fields.get("cpu", 0)), int(fields.get("rss", 0)))
                )
            for bucket, values in sorted(buckets.items()):
                replica.points.append(
                    MetricPoint(
                        bucket,
                        round(sum(v[0] for v in values) / len(values), 2),
                        sum(v[1] for v in values) // len(values),
                    )
                )
            series.append(replica)
        return resolution, series
