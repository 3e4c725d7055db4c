"""Pages that many requests read and few change, kept ready between requests.

A workspace's project list is what the dashboard and the CLI ask for most, and it changes only
when a project is created, renamed or deleted. Each API process keeps the bytes of the pages it
served (``ReadCache``), tagged with the workspace's *generation*: a value in Redis that every
change to one of its projects replaces. This is the scheme of ``core/principals.py``, for data:

- The request already asks Redis whether its token was revoked and for the caller's principal
  generation (one ``MGET``); the workspace's generation comes back in the same round trip. A
  page counts only if its tag equals the current generation, so a change committed by any
  process is seen by every process on the next request.
- Writers don't call anything: an ORM ``after_flush`` listener notes the workspace of every
  project inserted, updated or deleted on the session (so a new write path cannot forget to),
  and the request's session dependency publishes new generations *after* the commit, before
  the response is sent (``publish_read_changes``).
- Race: a miss reads the generation *before* its query and tags the page with it; a writer
  replaces the generation only after committing, so a page read before that commit is stale
  from the moment it is stored and is never served.

Only sessions of API requests publish. Nothing else writes projects today; changes made by hand
in SQL are bounded by ``ttl_seconds``. Authorisation is never cached here: the revocation check,
the caller's role in the workspace and the rate limit run on every request (see
``middleware/cached_reads.py``).
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from redis.asyncio import Redis
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from caboose.core.generations import renew_generations
from caboose.models import Project

GENERATION_PREFIX: Final = "caboose:reads:gen:"
_CHANGED: Final = "caboose.read_cache_changed"

Headers = list[tuple[bytes, bytes]]


def workspace_generation_key(tenant_id: uuid.UUID) -> str:
    return f"{GENERATION_PREFIX}{tenant_id}"


@dataclass(frozen=True, slots=True)
class CachedPage:
    generation: str
    expires_at: float
    headers: Headers
    body: bytes


class ReadCache:
    """Per-process pages by key, valid for one generation and at most ``ttl_seconds``; the least
    recently used go first once they add up to more than ``max_bytes``."""

    def __init__(
        self,
        *,
        ttl_seconds: float = 60.0,
        max_bytes: int = 64 * 1024 * 1024,
        max_page_bytes: int = 1024 * 1024,
    ) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_bytes = max_bytes
        self.max_page_bytes = max_page_bytes
        self._pages: OrderedDict[Any, CachedPage] = OrderedDict()
        self._bytes = 0

    def get(self, key: Any, generation: str) -> CachedPage | None:
        page = self._pages.get(key)
        if page is None:
            return None
        if page.generation != generation or page.expires_at <= time.monotonic():
            self._drop(key)
            return None
        self._pages.move_to_end(key)
        return page

    def put(self, key: Any, generation: str, headers: Headers, body: bytes) -> None:
        """Remember a page read after ``generation`` was (too large ones are not kept)."""
        if len(body) > self.max_page_bytes:
            return
        self._drop(key)
        self._pages[key] = CachedPage(
            generation, time.monotonic() + self.ttl_seconds, headers, body
        )
        self._bytes += len(body)
        while self._bytes > self.max_bytes:
            self._drop(next(iter(self._pages)))

    def __len__(self) -> int:
        return len(self._pages)

    def clear(self) -> None:
        self._pages.clear()
        self._bytes = 0

    def _drop(self, key: Any) -> None:
        page = self._pages.pop(key, None)
        if page is not None:
            self._bytes -= len(page.body)


async def current_generation(redis: Redis, key: str, value: str | None) -> str:
    """``value`` (as read), or, when the key does not exist yet, a new one set in Redis. A page
    is never tagged "no generation": Redis restarting empty would make such a tag current again
    while the page is stale."""
    if value is not None:
        return value
    fresh = uuid.uuid4().hex
    if await redis.set(key, fresh, nx=True):
        return fresh
    stored = await redis.get(key)  # another process set it first
    if stored is None:
        return fresh  # and it is gone already: an unknown tag, which matches no page
    return stored if isinstance(stored, str) else stored.decode()


def note_read_change(session: Session, *tenant_ids: uuid.UUID) -> None:
    """Record that pages of these workspaces change in ``session``'s transaction."""
    changed: set[uuid.UUID] = session.info.setdefault(_CHANGED, set())
    changed.update(tenant_ids)


@event.listens_for(Session, "after_flush")
def _note_flushed_projects(session: Session, _context: Any) -> None:
    # new/dirty/deleted still hold what this flush wrote (they are reset after the event).
    tenants = {
        obj.tenant_id
        for obj in (*session.new, *session.dirty, *session.deleted)
        if isinstance(obj, Project)
    }
    if tenants:
        note_read_change(session, *tenants)


async def invalidate_reads(redis: Redis, tenant_ids: Iterable[uuid.UUID]) -> None:
    """Give each workspace a new generation: every process forgets the pages it kept of it."""
    await renew_generations(redis, map(workspace_generation_key, tenant_ids))


async def publish_read_changes(redis: Redis, session: AsyncSession) -> None:
    """After ``session`` committed: invalidate the workspaces whose pages it changed."""
    changed: set[uuid.UUID] | None = session.info.pop(_CHANGED, None)
    if changed:
        await invalidate_reads(redis, changed)
