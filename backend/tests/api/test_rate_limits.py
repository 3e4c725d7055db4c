"""Rate limits: per user once signed in, per address before; 429 problem with Retry-After."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis

from caboose.core.rate_limit import RateLimiter, RateLimitPolicy
from tests.conftest import Caller, MakeCaller


@pytest.fixture
async def limited_app(app: FastAPI, redis: Redis, redis_url: str) -> AsyncIterator[FastAPI]:
    async for key in redis.scan_iter("caboose:ratelimit*"):
        await redis.delete(key)
    app.state.rate_limiter = RateLimiter(
        redis_url, RateLimitPolicy.parse(reads="5/minute", writes="3/minute", auth="2/minute")
    )
    yield app


async def test_reads_over_budget_get_429_with_retry_after(
    limited_app: FastAPI, owner: Caller, client: httpx.AsyncClient
) -> None:
    statuses = [
        (await client.get("/api/v1/me", headers=owner.headers)).status_code for _ in range(6)
    ]
    assert statuses == [200] * 5 + [429]
    response = await client.get("/api/v1/me", headers=owner.headers)
    assert response.headers["content-type"] == "application/problem+json"
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= 60
    assert response.json()["retry_after"] == retry_after


async def test_budgets_are_per_user(
    limited_app: FastAPI, owner: Caller, make_caller: MakeCaller, client: httpx.AsyncClient
) -> None:
    for _ in range(5):
        await client.get("/api/v1/me", headers=owner.headers)
    other = await make_caller()
    assert (await client.get("/api/v1/me", headers=owner.headers)).status_code == 429
    assert (await client.get("/api/v1/me", headers=other.headers)).status_code == 200


async def test_writes_have_their_own_budget(
    limited_app: FastAPI, owner: Caller, client: httpx.AsyncClient
) -> None:
    for _ in range(3):
        response = await client.post("/api/v1/tokens", json={"name": "t"}, headers=owner.headers)
        assert response.status_code == 201
    assert (
        await client.post("/api/v1/tokens", json={"name": "t"}, headers=owner.headers)
    ).status_code == 429
    assert (await client.get("/api/v1/me", headers=owner.headers)).status_code == 200


async def test_sign_in_is_limited_per_address(
    limited_app: FastAPI, client: httpx.AsyncClient
) -> None:
    body = {"email": "guess@example.com", "password": "guess guess guess"}
    statuses = [(await client.post("/api/v1/auth/login", json=body)).status_code for _ in range(3)]
    assert statuses == [401, 401, 429]


async def test_webhook_deliveries_are_counted_per_webhook_not_per_address(
    limited_app: FastAPI, client: httpx.AsyncClient
) -> None:
    """Every repository's deliveries come from the same few provider addresses."""
    first, second = (f"/api/v1/hooks/github/{uuid.uuid4()}" for _ in range(2))
    statuses = [(await client.post(first, content=b"{}")).status_code for _ in range(4)]
    assert statuses == [404, 404, 404, 429]
    assert (await client.post(second, content=b"{}")).status_code == 404
    # The address's own write budget is untouched.
    assert (await client.post("/api/v1/auth/refresh")).status_code != 429
