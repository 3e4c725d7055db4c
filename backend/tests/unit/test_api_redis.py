"""The API's Redis client: a burst of commands larger than its pool waits, it does not fail."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from redis.asyncio import Redis
from redis.exceptions import MaxConnectionsError

from caboose.main import api_redis

POOL = 10
BURST = 4 * POOL  # each command holds its connection for a while (BLPOP on an empty list)


async def _burst(client: Redis) -> list[object]:
    prefix = f"test:burst:{uuid.uuid4()}"
    return await asyncio.gather(
        *(client.blpop([f"{prefix}:{i}"], timeout=0.2) for i in range(BURST))
    )


async def test_more_commands_than_connections_wait_for_one(redis_url: str, redis: Redis) -> None:
    name = f"burst-{uuid.uuid4().hex[:8]}"
    client = api_redis(f"{redis_url}{'&' if '?' in redis_url else '?'}client_name={name}", POOL)
    try:
        assert await _burst(client) == [None] * BURST
        # The pool opened as many connections as it may, no more (they stay open, idle, for reuse).
        opened = [c for c in await redis.client_list() if c.get("name") == name]
        assert len(opened) == POOL
    finally:
        await client.aclose()


async def test_why_redis_pys_default_pool_is_not_used(redis_url: str) -> None:
    # The same burst through redis-py's own pool of the same size: commands past it fail at once,
    # which the API answered with 500s while 100 log viewers connected.
    client = Redis.from_url(redis_url, decode_responses=True, max_connections=POOL)
    try:
        with pytest.raises(MaxConnectionsError):
            await _burst(client)
    finally:
        await client.aclose()
