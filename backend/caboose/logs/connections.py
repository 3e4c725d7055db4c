"""A cap on live connections per deployment (or project), shared by every API process.

Each connection holds a *slot*: a member of a Redis sorted set whose score is the time it
expires. Taking a slot (one Lua call, on Redis' own clock so API hosts need not agree on the
time) first drops expired members, then admits the connection if fewer than ``limit`` remain.
A live connection pushes its expiry forward every ``ttl / 3``; a process that crashes stops
doing so, and its slots free themselves within ``ttl``: nothing leaks, and no process needs to
know about the others.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Final

from redis.asyncio import Redis

PREFIX: Final = "caboose:ws-slots:"

_ACQUIRE = """
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ms)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ms + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]) * 2)
return 1
"""

_REFRESH = """
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZADD', KEYS[1], ms + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 2)
return 1
"""


@dataclass(frozen=True, slots=True)
class Slot:
    key: str
    member: str


class ConnectionLimiter:
    def __init__(self, redis: Redis, *, ttl_seconds: float = 60.0) -> None:
        self.redis = redis
        self.ttl_ms = max(1, round(ttl_seconds * 1000))
        self._acquire = redis.register_script(_ACQUIRE)
        self._refresh = redis.register_script(_REFRESH)

    @property
    def refresh_interval(self) -> float:
        return self.ttl_ms / 3000

    async def acquire(self, name: str, limit: int) -> Slot | None:
        """A slot under ``name`` (e.g. ``logs:<deployment_id>``), or None when all are taken."""
        slot = Slot(PREFIX + name, secrets.token_hex(8))
        admitted = await self._acquire(keys=[slot.key], args=[slot.member, limit, self.ttl_ms])
        return slot if int(admitted) == 1 else None

    async def refresh(self, slot: Slot) -> None:
        await self._refresh(keys=[slot.key], args=[slot.member, self.ttl_ms])

    async def release(self, slot: Slot) -> None:
        await self.redis.zrem(slot.key, slot.member)

    async def count(self, name: str) -> int:
        """Live slots under ``name`` (expired ones excluded)."""
        now_s, now_us = await self.redis.time()
        now_ms = int(now_s) * 1000 + int(now_us) // 1000
        return int(await self.redis.zcount(PREFIX + name, f"({now_ms}", "+inf"))
