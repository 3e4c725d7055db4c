"""The principal cache never outlives what it caches: each change below is seen by the very next
request of the user it concerns, although that user's roles were cached by a request before it
(see ``core/principals.py``)."""

from __future__ import annotations

import httpx
from redis.asyncio import Redis

from caboose.core.principals import generation_key
from caboose.core.sessions import SessionPolicy, decode_access_token, revoke_token
from caboose.models import Role
from tests.api.workspace_helpers import API, assert_problem
from tests.conftest import Caller, MakeCaller


def projects_url(caller: Caller) -> str:
    return f"{API}/workspaces/{caller.workspace.id}/projects"


async def warm(client: httpx.AsyncClient, caller: Caller, url: str) -> None:
    """A request that caches ``caller``'s principal."""
    assert (await client.get(url, headers=caller.headers)).status_code == 200


async def test_a_removed_member_loses_the_workspace_at_once(
    owner: Caller, make_caller: MakeCaller, client: httpx.AsyncClient
) -> None:
    member = await make_caller(role=Role.MEMBER, workspace=owner.workspace)
    await warm(client, member, projects_url(owner))
    response = await client.delete(
        f"{API}/workspaces/{owner.workspace.id}/members/{member.user.id}", headers=owner.headers
    )
    assert response.status_code == 204
    assert_problem(await client.get(projects_url(owner), headers=member.headers), 404)
    assert_problem(
        await client.get(f"{API}/workspaces/{owner.workspace.id}", headers=member.headers), 404
    )


async def test_a_member_who_leaves_loses_the_workspace_at_once(
    owner: Caller, make_caller: MakeCaller, client: httpx.AsyncClient
) -> None:
    member = await make_caller(role=Role.MEMBER, workspace=owner.workspace)
    await warm(client, member, projects_url(owner))
    response = await client.delete(
        f"{API}/workspaces/{owner.workspace.id}/members/{member.user.id}", headers=member.headers
    )
    assert response.status_code == 204
    assert_problem(await client.get(projects_url(owner), headers=member.headers), 404)


async def test_a_role_downgrade_takes_effect_on_the_next_request(
    owner: Caller, make_caller: MakeCaller, client: httpx.AsyncClient
) -> None:
    admin = await make_caller(role=Role.ADMIN, workspace=owner.workspace)
    created = await client.post(projects_url(owner), json={"name": "before"}, headers=admin.headers)
    assert created.status_code == 201
    response = await client.patch(
        f"{API}/workspaces/{owner.workspace.id}/members/{admin.user.id}",
        json={"role": "member"},
        headers=owner.headers,
    )
    assert response.status_code == 200
    refused = await client.post(projects_url(owner), json={"name": "after"}, headers=admin.headers)
    assert_problem(refused, 403)
    me = (await client.get(f"{API}/me", headers=admin.headers)).json()
    roles = {w["id"]: w["role"] for w in me["workspaces"]}
    assert roles[str(owner.workspace.id)] == "member"


async def test_a_promotion_takes_effect_on_the_next_request(
    owner: Caller, make_caller: MakeCaller, client: httpx.AsyncClient
) -> None:
    member = await make_caller(role=Role.MEMBER, workspace=owner.workspace)
    refused = await client.post(projects_url(owner), json={"name": "x"}, headers=member.headers)
    assert_problem(refused, 403)
    response = await client.patch(
        f"{API}/workspaces/{owner.workspace.id}/members/{member.user.id}",
        json={"role": "admin"},
        headers=owner.headers,
    )
    assert response.status_code == 200
    created = await client.post(projects_url(owner), json={"name": "x"}, headers=member.headers)
    assert created.status_code == 201


async def test_an_added_member_sees_the_workspace_at_once(
    owner: Caller, make_caller: MakeCaller, client: httpx.AsyncClient
) -> None:
    newcomer = await make_caller()
    assert_problem(await client.get(projects_url(owner), headers=newcomer.headers), 404)
    response = await client.post(
        f"{API}/workspaces/{owner.workspace.id}/members",
        json={"email": newcomer.user.email, "role": "member"},
        headers=owner.headers,
    )
    assert response.status_code == 201
    assert (await client.get(projects_url(owner), headers=newcomer.headers)).status_code == 200


async def test_an_accepted_invitation_opens_the_workspace_at_once(
    owner: Caller, make_caller: MakeCaller, client: httpx.AsyncClient
) -> None:
    invitee = await make_caller()
    assert_problem(await client.get(projects_url(owner), headers=invitee.headers), 404)
    invited = await client.post(
        f"{API}/workspaces/{owner.workspace.id}/invitations",
        json={"email": invitee.user.email, "role": "member"},
        headers=owner.headers,
    )
    assert invited.status_code == 201
    accepted = await client.post(
        f"{API}/invitations/accept",
        json={"token": invited.json()["token"]},
        headers=invitee.headers,
    )
    assert accepted.status_code == 200
    assert (await client.get(projects_url(owner), headers=invitee.headers)).status_code == 200


async def test_a_deleted_workspace_is_gone_for_every_member_at_once(
    owner: Caller, make_caller: MakeCaller, client: httpx.AsyncClient
) -> None:
    member = await make_caller(role=Role.MEMBER, workspace=owner.workspace)
    await warm(client, member, projects_url(owner))
    await warm(client, owner, projects_url(owner))
    response = await client.delete(f"{API}/workspaces/{owner.workspace.id}", headers=owner.headers)
    assert response.status_code == 204
    for caller in (owner, member):
        assert_problem(await client.get(projects_url(owner), headers=caller.headers), 404)


async def test_a_revoked_token_stops_working_although_its_principal_is_cached(
    owner: Caller, client: httpx.AsyncClient, redis: Redis, session_policy: SessionPolicy
) -> None:
    await warm(client, owner, projects_url(owner))
    await revoke_token(redis, decode_access_token(session_policy, owner.access_token))
    assert_problem(await client.get(projects_url(owner), headers=owner.headers), 401)


async def test_logout_ends_the_session_although_its_principal_is_cached(
    owner: Caller, client: httpx.AsyncClient
) -> None:
    await warm(client, owner, projects_url(owner))
    response = await client.post(f"{API}/auth/logout", headers=owner.headers)
    assert response.status_code == 204
    assert_problem(await client.get(projects_url(owner), headers=owner.headers), 401)
    assert_problem(await client.get(f"{API}/me", headers=owner.headers), 401)


async def test_membership_changes_are_announced_to_other_processes(
    owner: Caller, make_caller: MakeCaller, client: httpx.AsyncClient, redis: Redis
) -> None:
    # Another API process knows of a change only through the user's generation in Redis.
    member = await make_caller(role=Role.MEMBER, workspace=owner.workspace)
    before = await redis.get(generation_key(member.user.id))
    response = await client.patch(
        f"{API}/workspaces/{owner.workspace.id}/members/{member.user.id}",
        json={"role": "admin"},
        headers=owner.headers,
    )
    assert response.status_code == 200
    after = await redis.get(generation_key(member.user.id))
    assert after is not None and after != before


async def test_a_refused_change_announces_nothing(
    owner: Caller, make_caller: MakeCaller, client: httpx.AsyncClient, redis: Redis
) -> None:
    member = await make_caller(role=Role.MEMBER, workspace=owner.workspace)
    before = await redis.get(generation_key(owner.user.id))
    # The last owner cannot be demoted: the request fails, nothing is committed or announced.
    response = await client.patch(
        f"{API}/workspaces/{owner.workspace.id}/members/{owner.user.id}",
        json={"role": "member"},
        headers=owner.headers,
    )
    assert_problem(response, 409)
    assert await redis.get(generation_key(owner.user.id)) == before
    assert (await client.get(projects_url(owner), headers=member.headers)).status_code == 200
