"""Rate limits in Redis, shared by every API process.

Built on ``limits`` (the library slowapi wraps) through its asyncio Redis storage: slowapi itself
calls Redis synchronously, which would block the event loop on every request. The policy is
slowapi's: the key is ``user:<id>`` once signed in, ``ip:<address>`` before; reads and writes have
separate budgets; sign-in and registration have a small per-address budget of their own.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.aio.storage import RedisStorage
from limits.aio.strategies import FixedWindowRateLimiter

from caboose.core.errors import RateLimitedError


@dataclass(frozen=True, slots=True)
class RateLimitPolicy:
    reads: RateLimitItem
    writes: RateLimitItem
    auth: RateLimitItem

    @classmethod
    def parse(cls, *, reads: str, writes: str, auth: str) -> RateLimitPolicy:
        return cls(reads=parse(reads), writes=parse(writes), auth=parse(auth))


class RateLimiter:
    def __init__(self, redis_url: str, policy: RateLimitPolicy) -> None:
        self.storage = RedisStorage(
            redis_url.replace("redis://", "async+redis://", 1).replace(
                "rediss://", "async+rediss://", 1
            ),
            implementation="redispy",
            key_prefix="caboose:ratelimit",
        )
        self.strategy = FixedWindowRateLimiter(self.storage)
        self.policy = policy

    async def hit(self, item: RateLimitItem, key: str) -> None:
        """Count one request against ``key``; over budget raises 429 with ``Retry-After``."""
        if await self.strategy.hit(item, key):
            return
        stats = await self.strategy.get_window_stats(item, key)
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        raise RateLimitedError(
            f"Rate limit of {item} exceeded; retry in {retry_after} s",
            retry_after=retry_after,
        )
