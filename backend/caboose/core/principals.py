"""Who a signed-in user is, remembered between requests: their workspaces and roles.

Authenticating a session token used to cost two queries per request (the user, then their
memberships). Each API process now keeps the answer in memory, keyed by user id and tagged with
that user's *generation*, a value in Redis that changes whenever their memberships do:

- The request already asks Redis whether the token was revoked (one ``MGET``); the generation
  comes back in the same round trip. A remembered entry counts only if its tag equals the
  current generation, so a change made by any process is seen by every process on the next
  request, with no time window.
- Writers don't touch Redis themselves: the repositories that change memberships note the user
  ids on the session (:func:`note_principal_change`) and the request's session dependency
  publishes new generations *after* the commit (:func:`publish_principal_changes`), before the
  response is sent.
- Race: a request that read the memberships just before a commit stores them tagged with the
  generation it read *before* its query; the writer replaces that generation only after
  committing, so such an entry is already stale when stored and is never used.

Revocation (logout, the token blacklist, refresh-token families) is untouched: it is checked in
Redis on every request. Entries also expire after ``ttl_seconds``: the bound for changes made
outside the API (SQL by hand), which nothing announces.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Final

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from caboose.core.generations import renew_generations
from caboose.models.enums import Role

GENERATION_PREFIX: Final = "caboose:principal:gen:"
_CHANGED: Final = "caboose.principals_changed"

Roles = Mapping[uuid.UUID, Role]


def generation_key(user_id: uuid.UUID) -> str:
    return f"{GENERATION_PREFIX}{user_id}"


class PrincipalCache:
    """Per-process memory of users' roles, valid for one generation and at most ``ttl_seconds``."""

    def __init__(self, *, ttl_seconds: float = 60.0, max_entries: int = 10_000) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self._entries: dict[uuid.UUID, tuple[str | None, float, Roles]] = {}

    def get(self, user_id: uuid.UUID, generation: str | None) -> Roles | None:
        entry = self._entries.get(user_id)
        if entry is None:
            return None
        tag, expires_at, roles = entry
        if tag != generation or expires_at <= time.monotonic():
            del self._entries[user_id]
            return None
        return roles

    def put(
        self, user_id: uuid.UUID, generation: str | None, roles: Mapping[uuid.UUID, Role]
    ) -> Roles:
        """Remember ``roles`` (read after ``generation`` was); returns the read-only copy kept."""
        frozen: Roles = MappingProxyType(dict(roles))
        self._entries.pop(user_id, None)
        if len(self._entries) >= self.max_entries:
            del self._entries[next(iter(self._entries))]  # the oldest entry
        self._entries[user_id] = (generation, time.monotonic() + self.ttl_seconds, frozen)
        return frozen

    def clear(self) -> None:
        self._entries.clear()


def note_principal_change(session: AsyncSession, *user_ids: uuid.UUID) -> None:
    """Record that these users' memberships change in ``session``'s transaction."""
    changed: set[uuid.UUID] = session.info.setdefault(_CHANGED, set())
    changed.update(user_ids)


async def invalidate_principals(redis: Redis, user_ids: Iterable[uuid.UUID]) -> None:
    """Give each user a new generation: every process forgets what it remembered of them."""
    await renew_generations(redis, map(generation_key, user_ids))


async def publish_principal_changes(redis: Redis, session: AsyncSession) -> None:
    """After ``session`` committed: invalidate the users whose memberships it changed."""
    changed: set[uuid.UUID] | None = session.info.pop(_CHANGED, None)
    if changed:
        await invalidate_principals(redis, changed)


def discard_principal_changes(session: AsyncSession) -> None:
    """After a rollback: nothing changed."""
    session.info.pop(_CHANGED, None)
