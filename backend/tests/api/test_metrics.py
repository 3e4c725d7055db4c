"""Replica metrics (psutil samples of real processes) and the platform's ``/metrics``."""

from __future__ import annotations

import asyncio
import contextlib
import re
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import psutil
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from caboose.api.metrics import metrics_router
from caboose.logs.config import LiveSettings
from caboose.models import Deployment, DeploymentStatus
from caboose.monitoring.prometheus import PrometheusMiddleware, observe_build_duration
from caboose.monitoring.sampler import MetricsSampler, replicas_key, series_key
from caboose.tasks.metrics import sample_active_deployments
from tests.conftest import Caller, MakeCaller
from tests.factories import DeploymentFactory, EnvironmentFactory, persist

API = "/api/v1"

# A replica as PM2 runs it: a shell whose child does the work (and holds the memory).
_APP = 'blob = b"x" * (40 * 1024 * 1024)\nwhile True:\n    sum(range(10000))\n'


@pytest.fixture
def replica() -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(["bash", "-c", f"{sys.executable} -c '{_APP}'; exit"])
    try:
        yield process
    finally:
        for child in psutil.Process(process.pid).children(recursive=True):
            child.kill()
        process.kill()
        process.wait()


@pytest.fixture
async def deployment(db_session: AsyncSession, owner: Caller) -> Deployment:
    deployment: Deployment = DeploymentFactory.build(
        service__project__tenant=owner.workspace, status=DeploymentStatus.ACTIVE
    )
    await persist(db_session, deployment)
    return deployment


@pytest.fixture
async def series_cleanup(redis: Redis, deployment: Deployment) -> AsyncIterator[None]:
    yield
    service, environment = deployment.service_id, deployment.environment_id
    await redis.delete(
        replicas_key(service, environment), *(series_key(service, environment, i) for i in (0, 1))
    )


async def memory_reaches(pid: int, size: int) -> None:
    """Wait (with a deadline) until the tree's children hold ``size`` bytes."""
    root = psutil.Process(pid)
    deadline = asyncio.get_running_loop().time() + 20
    while sum(c.memory_info().rss for c in root.children(recursive=True)) < size:
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.05)


async def cpu_time_grows(pid: int) -> None:
    """Wait (with a deadline) until the process tree has used measurably more CPU."""
    root = psutil.Process(pid)

    def total() -> float:
        times = [root.cpu_times(), *(c.cpu_times() for c in root.children(recursive=True))]
        return float(sum(t.user + t.system for t in times))

    start = total()
    deadline = asyncio.get_running_loop().time() + 10
    while total() < start + 0.2:
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.05)


async def test_replicas_are_sampled_with_their_children(
    client: httpx.AsyncClient,
    db_session: AsyncSession,
    owner: Caller,
    deployment: Deployment,
    redis: Redis,
    replica: subprocess.Popen[bytes],
    series_cleanup: None,
) -> None:
    sampler = MetricsSampler(redis)
    replicas = [
        {"index": 0, "port": 4000, "status": "online", "restarts": 2, "pid": replica.pid},
        {"index": 1, "port": 4001, "status": "errored", "restarts": 9, "pid": None},
    ]
    options = {
        "service_id": deployment.service_id,
        "environment_id": deployment.environment_id,
        "deployment_id": deployment.id,
        "replicas": replicas,
    }
    await memory_reaches(replica.pid, 40 * 1024 * 1024)
    assert await sampler.sample(**options) == 1  # type: ignore[arg-type]
    await cpu_time_grows(replica.pid)
    # The monitor task's pass over ACTIVE deployments takes the second sample.
    deployment.replicas = replicas
    await persist(db_session, deployment)
    assert await sample_active_deployments(db_session, sampler) == 1

    response = await client.get(
        f"{API}/services/{deployment.service_id}/metrics",
        params={"environment_id": str(deployment.environment_id), "window": "1h"},
        headers=owner.headers,
    )
    assert response.status_code == 200
    body = response.json()
    assert body["window"] == "1h" and body["resolution_seconds"] == 10
    (series,) = body["replicas"]
    assert (series["index"], series["restarts"], series["pid"]) == (0, 2, replica.pid)
    assert series["deployment_id"] == str(deployment.id)
    assert 1 <= len(series["points"]) <= 2
    latest = series["points"][-1]
    assert latest["memory_bytes"] > 40 * 1024 * 1024  # the child's allocation counts
    assert 5 < latest["cpu_percent"] < 250  # a busy loop: about one core
    assert latest["at"].endswith("Z")


async def test_metrics_windows_and_access(
    client: httpx.AsyncClient,
    owner: Caller,
    make_caller: MakeCaller,
    db_session: AsyncSession,
    deployment: Deployment,
) -> None:
    url = f"{API}/services/{deployment.service_id}/metrics"
    params = {"environment_id": str(deployment.environment_id)}
    for window, resolution in (("6h", 60), ("24h", 240)):
        response = await client.get(url, params={**params, "window": window}, headers=owner.headers)
        assert response.status_code == 200
        assert response.json()["resolution_seconds"] == resolution
        assert response.json()["replicas"] == []
    bad = await client.get(url, params={**params, "window": "7d"}, headers=owner.headers)
    assert bad.status_code == 422
    elsewhere = EnvironmentFactory.build()  # another project's environment
    await persist(db_session, elsewhere)
    response = await client.get(
        url, params={"environment_id": str(elsewhere.id)}, headers=owner.headers
    )
    assert response.status_code == 404
    stranger = await make_caller()
    assert (await client.get(url, params=params, headers=stranger.headers)).status_code == 404


@pytest.fixture
async def metrics_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app with ``/metrics`` and the request middleware, as main.py wires them
    (added here when main.py does not yet; the shared app gets its routes back afterwards)."""
    if not any(getattr(route, "path", None) == "/metrics" for route in app.routes):
        app.include_router(metrics_router)
    wired = any(getattr(m, "cls", None) is PrometheusMiddleware for m in app.user_middleware)
    asgi: Any = app if wired else PrometheusMiddleware(app)
    transport = httpx.ASGITransport(app=asgi, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http
    with contextlib.suppress(AttributeError):
        del app.state.live_settings  # the app is shared by every test


def sample(text: str, name: str, **labels: str) -> float:
    selector = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        metric, _, value = line.rpartition(" ")
        match = re.fullmatch(rf"{re.escape(name)}(?:\{{(.*)\}})?", metric)
        if match and ",".join(sorted((match.group(1) or "").split(","))) == selector:
            return float(value)
    raise AssertionError(f"{name}{{{selector}}} not in /metrics")


async def test_prometheus_metrics(
    metrics_client: httpx.AsyncClient,
    owner: Caller,
    deployment: Deployment,
    redis: Redis,
) -> None:
    client = metrics_client
    logs_url = f"{API}/deployments/{deployment.id}/logs"
    route = "/api/v1/deployments/{deployment_id}/logs"
    before = (await client.get("/metrics")).text
    assert (await client.get(logs_url, headers=owner.headers)).status_code == 200
    assert (await client.get(f"{API}/deployments/{uuid.uuid4()}/logs")).status_code == 401
    await observe_build_duration(redis, 42.0, outcome="succeeded")
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text

    def delta(name: str, **labels: str) -> float:
        try:
            previous = sample(before, name, **labels)
        except AssertionError:
            previous = 0.0
        return sample(text, name, **labels) - previous

    requests = "caboose_http_requests_total"
    assert delta(requests, method="GET", route=route, status="200") == 1
    assert delta(requests, method="GET", route=route, status="401") == 1
    assert delta("caboose_http_request_duration_seconds_count", method="GET", route=route) == 2
    assert sample(text, "caboose_deployments", status="ACTIVE") >= 1
    assert sample(text, "caboose_deployments", status="REMOVED") >= 0
    assert sample(text, "caboose_queue_depth", queue="build") >= 0
    build = "caboose_build_duration_seconds"
    assert delta(f"{build}_bucket", outcome="succeeded", le="60.0") == 1
    assert delta(f"{build}_bucket", outcome="succeeded", le="30.0") == 0
    assert delta(f"{build}_count", outcome="succeeded") == 1
    assert delta(f"{build}_sum", outcome="succeeded") == pytest.approx(42.0)
    # No raw ids in route labels: the number of series stays bounded.
    assert str(deployment.id) not in text


async def test_the_metrics_token_protects_metrics(
    app: FastAPI, metrics_client: httpx.AsyncClient
) -> None:
    client = metrics_client
    app.state.live_settings = LiveSettings(metrics_token="scrape-me-0123456789")
    assert (await client.get("/metrics")).status_code == 401
    wrong = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    right = await client.get("/metrics", headers={"Authorization": "Bearer scrape-me-0123456789"})
    assert right.status_code == 200
