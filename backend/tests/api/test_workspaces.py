"""Workspaces: listing mine with my role, creating, renaming, deleting (with everything in it)."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from caboose.config import Settings
from caboose.models import (
    ApiToken,
    Deployment,
    Environment,
    Invitation,
    Project,
    Role,
    Service,
    TeamMember,
    Tenant,
)
from tests.api.workspace_helpers import (
    API,
    assert_invalid,
    assert_problem,
    count,
    fresh,
    project_token,
)
from tests.conftest import Caller, MakeCaller
from tests.factories import DeploymentFactory, ProjectFactory, TenantFactory, persist

# Listing -------------------------------------------------------------------------------------


async def test_i_see_my_workspaces_with_my_role_and_nobody_elses(
    make_caller: MakeCaller, client: httpx.AsyncClient
) -> None:
    me = await make_caller(role=Role.OWNER)
    stranger = await make_caller()
    response = await client.get(f"{API}/workspaces", headers=me.headers)
    assert response.status_code == 200
    body = response.json()
    assert body["total"] == 1 and body["has_more"] is False
    (item,) = body["items"]
    assert item["id"] == str(me.workspace.id)
    assert item["role"] == "owner"
    assert item["slug"] == me.workspace.slug
    assert str(stranger.workspace.id) not in {i["id"] for i in body["items"]}


async def test_each_workspace_shows_my_own_role(
    make_caller: MakeCaller, client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    me = await make_caller(role=Role.OWNER)
    other = await make_caller(role=Role.OWNER)
    await persist(db_session, TeamMember(tenant_id=other.workspace.id, user_id=me.user.id))
    body = (await client.get(f"{API}/workspaces", headers=me.headers)).json()
    roles = {item["id"]: item["role"] for item in body["items"]}
    assert roles == {str(me.workspace.id): "owner", str(other.workspace.id): "member"}


async def test_workspaces_page_sort_and_filter(
    owner: Caller, client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    extra = [TenantFactory.build(name=name) for name in ("Charlie", "Alpha", "Bravo")]
    await persist(db_session, *extra)
    await persist(
        db_session,
        *(TeamMember(tenant_id=t.id, user_id=owner.user.id, role=Role.ADMIN) for t in extra),
    )
    params: dict[str, str | int] = {"sort_by": "name", "sort_order": "asc", "limit": 2}
    first = (await client.get(f"{API}/workspaces", params=params, headers=owner.headers)).json()
    assert [i["name"] for i in first["items"]] == ["Alpha", "Bravo"]
    assert first["total"] == 4 and first["has_more"] is True and first["limit"] == 2
    second = (
        await client.get(f"{API}/workspaces", params={**params, "skip": 2}, headers=owner.headers)
    ).json()
    assert [i["name"] for i in second["items"]] == ["Charlie", owner.workspace.name]
    assert second["has_more"] is False
    only = (
        await client.get(f"{API}/workspaces", params={"name": "Bravo"}, headers=owner.headers)
    ).json()
    assert [i["name"] for i in only["items"]] == ["Bravo"]
    too_big = await client.get(f"{API}/workspaces", params={"limit": 1001}, headers=owner.headers)
    assert_invalid(too_big, "limit")
    nul = await client.get(f"{API}/workspaces", params={"name": "a\x00"}, headers=owner.headers)
    assert_invalid(nul, "name")


async def test_signing_in_is_required(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get(f"{API}/workspaces"), 401)
    assert_problem(await client.post(f"{API}/workspaces", json={"name": "x"}), 401)


# Creating ------------------------------------------------------------------------------------


async def test_creating_a_workspace_makes_me_its_owner(
    owner: Caller, client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    response = await client.post(
        f"{API}/workspaces", json={"name": "  Acme Corp  "}, headers=owner.headers
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["name"] == "Acme Corp"
    assert body["slug"] == "acme-corp"
    assert body["role"] == "owner" and body["is_personal"] is False
    stored = await fresh(db_session, Tenant, body["id"])
    assert stored is not None and stored.name == "Acme Corp"
    member = await db_session.scalar(
        select(TeamMember).where(
            TeamMember.tenant_id == stored.id, TeamMember.user_id == owner.user.id
        )
    )
    assert member is not None and member.role == Role.OWNER
    listed = (await client.get(f"{API}/workspaces", headers=owner.headers)).json()
    assert body["id"] in {i["id"] for i in listed["items"]}


async def test_slugs_stay_unique_when_names_repeat(
    owner: Caller, client: httpx.AsyncClient
) -> None:
    slugs = set()
    for _ in range(3):
        response = await client.post(
            f"{API}/workspaces", json={"name": "Acme"}, headers=owner.headers
        )
        assert response.status_code == 201
        slugs.add(response.json()["slug"])
    assert len(slugs) == 3 and "acme" in slugs


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": ""},
        {"name": "   "},
        {"name": "x" * 101},
        {"name": 5},
        {"name": None},
        {"name": "nul\x00byte"},
        {"name": "two\nlines"},
    ],
)
async def test_invalid_workspace_names_are_refused(
    owner: Caller, client: httpx.AsyncClient, db_session: AsyncSession, body: dict[str, object]
) -> None:
    before = await count(db_session, Tenant)
    assert_invalid(await client.post(f"{API}/workspaces", json=body, headers=owner.headers), "name")
    assert await count(db_session, Tenant) == before


async def test_unknown_fields_are_refused(owner: Caller, client: httpx.AsyncClient) -> None:
    response = await client.post(
        f"{API}/workspaces", json={"name": "x", "slug": "mine"}, headers=owner.headers
    )
    assert_invalid(response, "slug")


async def test_a_project_scoped_token_cannot_create_workspaces(
    owner: Caller, client: httpx.AsyncClient, db_session: AsyncSession, settings: Settings
) -> None:
    project = ProjectFactory.build(tenant=owner.workspace)
    await persist(db_session, project)
    headers = await project_token(db_session, settings, owner.user, project)
    before = await count(db_session, Tenant)
    assert_problem(await client.post(f"{API}/workspaces", json={"name": "x"}, headers=headers), 403)
    assert await count(db_session, Tenant) == before


# Reading -------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.OWNER, Role.ADMIN, Role.MEMBER])
async def test_every_member_can_read_the_workspace(
    make_caller: MakeCaller, owner: Caller, client: httpx.AsyncClient, role: Role
) -> None:
    caller = await make_caller(role=role, workspace=owner.workspace)
    response = await client.get(f"{API}/workspaces/{owner.workspace.id}", headers=caller.headers)
    assert response.status_code == 200
    assert response.json()["role"] == role.value
    assert response.json()["name"] == owner.workspace.name


async def test_another_workspace_is_not_found(
    owner: Caller, make_caller: MakeCaller, client: httpx.AsyncClient
) -> None:
    stranger = await make_caller()
    response = await client.get(f"{API}/workspaces/{owner.workspace.id}", headers=stranger.headers)
    body = assert_problem(response, 404)
    assert str(owner.workspace.id) in body["detail"]
    assert_problem(await client.get(f"{API}/workspaces/not-a-uuid", headers=owner.headers), 404)


# Renaming ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("role", "status"), [(Role.OWNER, 200), (Role.ADMIN, 200)])
async def test_owners_and_admins_rename(
    make_caller: MakeCaller,
    owner: Caller,
    client: httpx.AsyncClient,
    db_session: AsyncSession,
    role: Role,
    status: int,
) -> None:
    caller = await make_caller(role=role, workspace=owner.workspace)
    slug = owner.workspace.slug
    response = await client.patch(
        f"{API}/workspaces/{owner.workspace.id}", json={"name": "Renamed"}, headers=caller.headers
    )
    assert response.status_code == status
    assert response.json()["name"] == "Renamed" and response.json()["slug"] == slug
    stored = await fresh(db_session, Tenant, owner.workspace.id)
    assert stored.name == "Renamed" and stored.slug == slug


async def test_members_cannot_rename_and_strangers_cannot_see(
    make_caller: MakeCaller, owner: Caller, client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    member = await make_caller(role=Role.MEMBER, workspace=owner.workspace)
    stranger = await make_caller()
    url = f"{API}/workspaces/{owner.workspace.id}"
    body = assert_problem(await client.patch(url, json={"name": "x"}, headers=member.headers), 403)
    assert "member" in body["detail"]
    assert_problem(await client.patch(url, json={"name": "x"}, headers=stranger.headers), 404)
    assert (await fresh(db_session, Tenant, owner.workspace.id)).name == owner.workspace.name


async def test_renaming_validates_the_name(
    owner: Caller, client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    url = f"{API}/workspaces/{owner.workspace.id}"
    for body in ({"name": ""}, {"name": None}, {"name": "x" * 101}):
        assert_invalid(await client.patch(url, json=body, headers=owner.headers), "name")
    assert (await fresh(db_session, Tenant, owner.workspace.id)).name == owner.workspace.name
    unchanged = await client.patch(url, json={}, headers=owner.headers)
    assert unchanged.status_code == 200 and unchanged.json()["name"] == owner.workspace.name


async def test_a_project_scoped_token_cannot_rename_or_delete_its_workspace(
    owner: Caller, client: httpx.AsyncClient, db_session: AsyncSession, settings: Settings
) -> None:
    project = ProjectFactory.build(tenant=owner.workspace)
    await persist(db_session, project)
    headers = await project_token(db_session, settings, owner.user, project)
    url = f"{API}/workspaces/{owner.workspace.id}"
    assert (await client.get(url, headers=headers)).status_code == 200
    assert_problem(await client.patch(url, json={"name": "x"}, headers=headers), 403)
    assert_problem(await client.delete(url, headers=headers), 403)
    assert await fresh(db_session, Tenant, owner.workspace.id) is not None


# Deleting ------------------------------------------------------------------------------------


async def test_deleting_a_workspace_removes_everything_in_it(
    owner: Caller,
    make_caller: MakeCaller,
    client: httpx.AsyncClient,
    db_session: AsyncSession,
    settings: Settings,
) -> None:
    colleague = await make_caller(role=Role.MEMBER, workspace=owner.workspace)
    deployment = DeploymentFactory.build(
        service__project__tenant=owner.workspace, service__project__name="doomed"
    )
    await persist(db_session, deployment)
    project = deployment.service.project
    await project_token(db_session, settings, owner.user, project)
    invited = await client.post(
        f"{API}/workspaces/{owner.workspace.id}/invitations",
        json={"email": "someone@example.com"},
        headers=owner.headers,
    )
    assert invited.status_code == 201
    # Another workspace is untouched.
    survivor = await make_caller()
    kept = ProjectFactory.build(tenant=survivor.workspace)
    await persist(db_session, kept)

    response = await client.delete(f"{API}/workspaces/{owner.workspace.id}", headers=owner.headers)
    assert response.status_code == 204 and response.content == b""

    assert await fresh(db_session, Tenant, owner.workspace.id) is None
    assert await count(db_session, TeamMember, tenant_id=owner.workspace.id) == 0
    assert await count(db_session, Invitation, tenant_id=owner.workspace.id) == 0
    assert await count(db_session, Project, tenant_id=owner.workspace.id) == 0
    assert await count(db_session, Environment, project_id=project.id) == 0
    assert await count(db_session, Service, project_id=project.id) == 0
    assert await fresh(db_session, Deployment, deployment.id) is None
    assert await count(db_session, ApiToken, project_id=project.id) == 0
    # The people still exist; they just lost the workspace.
    assert await count(db_session, ApiToken, user_id=owner.user.id) == 0
    listed = (await client.get(f"{API}/workspaces", headers=colleague.headers)).json()
    assert listed["total"] == 0
    assert await fresh(db_session, Project, kept.id) is not None
    assert_problem(
        await client.get(f"{API}/workspaces/{owner.workspace.id}", headers=owner.headers), 404
    )


@pytest.mark.parametrize("role", [Role.ADMIN, Role.MEMBER])
async def test_only_owners_delete_workspaces(
    make_caller: MakeCaller,
    owner: Caller,
    client: httpx.AsyncClient,
    db_session: AsyncSession,
    role: Role,
) -> None:
    caller = await make_caller(role=role, workspace=owner.workspace)
    response = await client.delete(f"{API}/workspaces/{owner.workspace.id}", headers=caller.headers)
    assert_problem(response, 403)
    assert await fresh(db_session, Tenant, owner.workspace.id) is not None


async def test_strangers_cannot_delete_a_workspace(
    make_caller: MakeCaller, owner: Caller, client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    stranger = await make_caller()
    response = await client.delete(
        f"{API}/workspaces/{owner.workspace.id}", headers=stranger.headers
    )
    assert_problem(response, 404)
    assert await fresh(db_session, Tenant, owner.workspace.id) is not None
