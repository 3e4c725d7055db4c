"""API tokens: shown once, stored hashed, usable as Bearer, revocable, expiring, scoped."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from caboose.models import ApiToken, Role
from tests.conftest import Caller, MakeCaller
from tests.factories import ProjectFactory, persist


async def create(client: httpx.AsyncClient, caller: Caller, **body: object) -> httpx.Response:
    return await client.post("/api/v1/tokens", json={"name": "ci", **body}, headers=caller.headers)


async def test_a_token_is_shown_once_and_stored_hashed(
    owner: Caller, client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    response = await create(client, owner)
    assert response.status_code == 201
    created = response.json()
    secret = created["token"]
    assert secret.startswith("cb_") and created["prefix"] == secret[: len(created["prefix"])]
    stored = await db_session.get(ApiToken, uuid.UUID(created["id"]))
    assert stored is not None and secret not in stored.token_hash
    listed = (await client.get("/api/v1/tokens", headers=owner.headers)).json()
    assert listed["total"] == 1
    assert "token" not in listed["items"][0] and secret not in str(listed)


async def test_a_token_authenticates_and_records_its_use(
    owner: Caller, client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    secret = (await create(client, owner)).json()["token"]
    me = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"})
    assert me.status_code == 200 and me.json()["id"] == str(owner.user.id)
    stored = await db_session.scalar(select(ApiToken).where(ApiToken.user_id == owner.user.id))
    assert stored is not None and stored.last_used_at is not None


async def test_a_revoked_token_stops_working(owner: Caller, client: httpx.AsyncClient) -> None:
    created = (await create(client, owner)).json()
    auth = {"Authorization": f"Bearer {created['token']}"}
    revoke = await client.delete(f"/api/v1/tokens/{created['id']}", headers=owner.headers)
    assert revoke.status_code == 204
    assert (await client.get("/api/v1/me", headers=auth)).status_code == 401
    listed = (await client.get("/api/v1/tokens", headers=owner.headers)).json()
    assert listed["items"][0]["revoked_at"] is not None


async def test_an_expired_token_stops_working(
    owner: Caller, client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    created = (await create(client, owner, expires_in_days=1)).json()
    stored = await db_session.get(ApiToken, uuid.UUID(created["id"]))
    assert stored is not None
    stored.expires_at = datetime.now(UTC) - timedelta(seconds=1)
    await db_session.flush()
    response = await client.get(
        "/api/v1/me", headers={"Authorization": f"Bearer {created['token']}"}
    )
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]


async def test_nobody_else_can_see_or_revoke_my_tokens(
    owner: Caller, make_caller: MakeCaller, client: httpx.AsyncClient
) -> None:
    created = (await create(client, owner)).json()
    stranger = await make_caller()
    assert (await client.get("/api/v1/tokens", headers=stranger.headers)).json()["total"] == 0
    response = await client.delete(f"/api/v1/tokens/{created['id']}", headers=stranger.headers)
    assert response.status_code == 404


async def test_a_project_scope_must_be_a_project_i_can_see(
    owner: Caller, make_caller: MakeCaller, client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    stranger = await make_caller()
    theirs = ProjectFactory.build(tenant=stranger.workspace)
    mine = ProjectFactory.build(tenant=owner.workspace)
    await persist(db_session, theirs, mine)
    assert (await create(client, owner, project_id=str(theirs.id))).status_code == 404
    scoped = await create(client, owner, project_id=str(mine.id))
    assert scoped.status_code == 201
    # A project-scoped token cannot mint more tokens.
    auth = {"Authorization": f"Bearer {scoped.json()['token']}"}
    assert (
        await client.post("/api/v1/tokens", json={"name": "x"}, headers=auth)
    ).status_code == 403


async def test_token_bodies_are_validated(owner: Caller, client: httpx.AsyncClient) -> None:
    for body in ({"name": ""}, {"name": "x", "expires_in_days": 0}, {"name": "x", "scope": "all"}):
        response = await client.post("/api/v1/tokens", json=body, headers=owner.headers)
        assert response.status_code == 422, body


async def test_members_get_tokens_too(make_caller: MakeCaller, client: httpx.AsyncClient) -> None:
    member = await make_caller(role=Role.MEMBER)
    assert (await create(client, member)).status_code == 201
