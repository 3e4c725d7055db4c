"""Generations: one value in Redis per cached subject (a user's roles, a workspace's pages).

A process keeps what it read tagged with the subject's generation as read *before* it read it,
and uses it only while the generation is unchanged; writers replace the generation after their
commit. See ``core/principals.py`` and ``core/read_cache.py``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from redis.asyncio import Redis


async def renew_generations(redis: Redis, keys: Iterable[str]) -> None:
    """Give each key a new generation (one round trip): every process's copies go stale."""
    keys = list(keys)
    if not keys:
        return
    async with redis.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.set(key, uuid.uuid4().hex)
        await pipe.execute()
