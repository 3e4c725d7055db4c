"""The principal cache and the verified-token memory: what they may and may not answer."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from redis.asyncio import Redis

from caboose.core.errors import AuthenticationError
from caboose.core.jwt import create_token
from caboose.core.principals import PrincipalCache, generation_key, invalidate_principals
from caboose.core.sessions import SessionPolicy, decode_access_token
from caboose.models import Role

SECRET = "unit-test-secret-that-is-long-enough-for-hs256-000"


def test_an_entry_counts_only_for_its_generation() -> None:
    cache = PrincipalCache()
    user, workspace = uuid.uuid4(), uuid.uuid4()
    cache.put(user, None, {workspace: Role.ADMIN})
    assert cache.get(user, None) == {workspace: Role.ADMIN}
    assert cache.get(user, "new-generation") is None
    assert cache.get(user, None) is None  # a stale entry is dropped, not kept for later


def test_entries_expire_and_are_read_only() -> None:
    cache = PrincipalCache(ttl_seconds=0.0)
    user = uuid.uuid4()
    roles = cache.put(user, "g", {uuid.uuid4(): Role.OWNER})
    with pytest.raises(TypeError):
        roles[uuid.uuid4()] = Role.OWNER  # type: ignore[index]
    assert cache.get(user, "g") is None


def test_the_cache_is_bounded() -> None:
    cache = PrincipalCache(max_entries=2)
    first, second, third = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    for user in (first, second, third):
        cache.put(user, None, {})
    assert cache.get(first, None) is None
    assert cache.get(second, None) == {} and cache.get(third, None) == {}


async def test_invalidation_gives_a_new_generation_each_time(redis: Redis) -> None:
    user = uuid.uuid4()
    seen = {await redis.get(generation_key(user))}
    for _ in range(3):
        await invalidate_principals(redis, [user])
        seen.add(await redis.get(generation_key(user)))
    assert len(seen) == 4  # None, then three distinct values: no generation comes back


async def test_roles_read_before_a_change_are_stale_once_stored(redis: Redis) -> None:
    # A request reads the generation, then the memberships; a writer commits and announces in
    # between. What that request stores is tagged with the old generation: never used.
    cache = PrincipalCache()
    user, workspace = uuid.uuid4(), uuid.uuid4()
    read_generation = await redis.get(generation_key(user))
    await invalidate_principals(redis, [user])  # the writer, after its commit
    cache.put(user, read_generation, {workspace: Role.OWNER})  # the reader, late
    assert cache.get(user, await redis.get(generation_key(user))) is None


def _policy() -> SessionPolicy:
    return SessionPolicy(SECRET, timedelta(minutes=15), timedelta(days=7))


def test_a_remembered_token_is_still_refused_once_expired() -> None:
    policy = _policy()
    issued = datetime.now(UTC) - timedelta(minutes=15) + timedelta(seconds=2)
    token, claims = create_token(
        str(uuid.uuid4()),
        token_type="access",
        secret=SECRET,
        expires_in=timedelta(minutes=15),
        now=issued,
    )
    assert decode_access_token(policy, token) == claims  # verified and remembered
    deadline = time.monotonic() + 10
    while True:
        try:
            decode_access_token(policy, token)
        except AuthenticationError as exc:
            assert "expired" in exc.detail
            break
        assert time.monotonic() < deadline, "an expired token was still accepted"
        time.sleep(0.05)


def test_a_token_is_remembered_per_secret() -> None:
    token, _ = create_token(
        str(uuid.uuid4()),
        token_type="access",
        secret=SECRET,
        expires_in=timedelta(minutes=15),
    )
    decode_access_token(_policy(), token)
    other = SessionPolicy(SECRET.replace("unit", "else"), timedelta(minutes=15), timedelta(days=7))
    with pytest.raises(AuthenticationError):
        decode_access_token(other, token)
