"""The read cache's store, its generations, and the listener that notes project changes."""

from __future__ import annotations

import uuid

import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from caboose.core import read_cache
from caboose.core.read_cache import (
    ReadCache,
    current_generation,
    publish_read_changes,
    workspace_generation_key,
)
from tests.factories import ProjectFactory, TenantFactory, persist

HEADERS = [(b"content-type", b"application/json")]


def test_a_page_counts_only_for_its_generation() -> None:
    cache = ReadCache()
    cache.put("k", "g1", HEADERS, b"[1]")
    assert cache.get("k", "g1") is not None
    assert cache.get("k", "g2") is None
    assert cache.get("k", "g1") is None  # a stale page is dropped, not kept for later


def test_a_page_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(read_cache.time, "monotonic", lambda: now[0])
    cache = ReadCache(ttl_seconds=60)
    cache.put("k", "g", HEADERS, b"[]")
    now[0] += 59
    assert cache.get("k", "g") is not None
    now[0] += 2
    assert cache.get("k", "g") is None


def test_the_least_recently_used_pages_go_first_past_the_byte_budget() -> None:
    cache = ReadCache(max_bytes=30, max_page_bytes=20)
    cache.put("a", "g", HEADERS, b"a" * 10)
    cache.put("b", "g", HEADERS, b"b" * 10)
    assert cache.get("a", "g") is not None  # "a" is now the most recently used
    cache.put("c", "g", HEADERS, b"c" * 15)
    assert cache.get("b", "g") is None
    assert cache.get("a", "g") is not None and cache.get("c", "g") is not None
    cache.put("huge", "g", HEADERS, b"x" * 21)
    assert cache.get("huge", "g") is None
    assert len(cache) == 2


def test_replacing_a_page_keeps_the_byte_count_right() -> None:
    cache = ReadCache(max_bytes=20, max_page_bytes=20)
    for _ in range(5):
        cache.put("a", "g", HEADERS, b"a" * 15)
    cache.put("b", "g", HEADERS, b"b" * 5)
    assert len(cache) == 2


async def test_a_workspace_without_a_generation_gets_one(redis: Redis) -> None:
    key = workspace_generation_key(uuid.uuid4())
    first = await current_generation(redis, key, None)
    assert first and await redis.get(key) == first
    assert await current_generation(redis, key, None) == first  # set once, then read
    assert await current_generation(redis, key, "read-before") == "read-before"


async def test_inserting_updating_and_deleting_a_project_are_noted_for_its_workspace(
    db_session: AsyncSession, redis: Redis
) -> None:
    tenant = TenantFactory.build()
    await persist(db_session, tenant)
    key = workspace_generation_key(tenant.id)
    await redis.set(key, "before")

    async def published() -> str | None:
        await publish_read_changes(redis, db_session)
        value = await redis.get(key)
        await redis.set(key, "before")
        return value

    project = ProjectFactory.build(tenant=tenant)
    await persist(db_session, project)
    assert await published() != "before"
    project.description = "changed"
    await db_session.flush()
    assert await published() != "before"
    await db_session.delete(project)
    await db_session.flush()
    assert await published() != "before"
    assert await published() == "before"  # nothing since
