"""``/health`` says the process is up; ``/ready`` checks the database and Redis for real."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from redis.asyncio import Redis

from caboose.database import Database
from caboose.server.redis_embedded import free_port


async def test_health(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "healthy"}


async def test_ready_when_database_and_redis_answer(client: httpx.AsyncClient) -> None:
    response = await client.get("/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"database": "ok", "redis": "ok"}}


async def test_not_ready_when_redis_is_down(app: FastAPI, client: httpx.AsyncClient) -> None:
    dead = Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=0.5)
    app.state.redis = dead
    try:
        response = await client.get("/ready")
    finally:
        await dead.aclose()
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["redis"].startswith("error:")


async def test_not_ready_when_the_database_is_unreachable(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    # A PostgreSQL URL pointing at a loopback port nobody listens on.
    broken = Database(f"postgresql+asyncpg://caboose:x@127.0.0.1:{free_port()}/caboose")
    app.state.database = broken
    try:
        response = await client.get("/ready")
    finally:
        await broken.dispose()
    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["redis"] == "ok"
    assert body["checks"]["database"].startswith("error:")


async def test_openapi_operation_ids_are_stable_and_unique(app: FastAPI) -> None:
    operations = [
        op
        for path in app.openapi()["paths"].values()
        for op in path.values()
        if isinstance(op, dict) and "operationId" in op
    ]
    ids = [op["operationId"] for op in operations]
    assert len(ids) == len(set(ids))
    assert "health-health" in ids and "health-ready" in ids
    for op in operations:
        assert op["operationId"].startswith(op["tags"][0] + "-")
