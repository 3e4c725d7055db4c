"""Projects: created with their production environment, listed per workspace (only its own for a
project-scoped token), renamed, deleted with everything they hold."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from caboose.config import Settings
from caboose.models import ApiToken, Deployment, Environment, Project, Role, Service
from tests.api.workspace_helpers import (
    API,
    assert_invalid,
    assert_problem,
    count,
    fresh,
    project_token,
)
from tests.conftest import Caller, MakeCaller
from tests.factories import (
    DeploymentFactory,
    EnvironmentFactory,
    ProjectFactory,
    ServiceFactory,
    persist,
)


def projects_url(caller: Caller) -> str:
    return f"{API}/workspaces/{caller.workspace.id}/projects"


# Creating ------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.OWNER, Role.ADMIN])
async def test_a_new_project_comes_with_its_production_environment(
    owner: Caller,
    make_caller: MakeCaller,
    client: httpx.AsyncClient,
    db_session: AsyncSession,
    role: Role,
) -> None:
    caller = await make_caller(role=role, workspace=owner.workspace)
    response = await client.post(
        projects_url(owner),
        json={"name": "shop", "description": "The storefront"},
        headers=caller.headers,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["name"] == "shop" and body["description"] == "The storefront"
    assert body["workspace_id"] == str(owner.workspace.id)
    assert body["preview_environments"] is False
    assert [e["name"] for e in body["environments"]] == ["production"]
    assert body["services"] == []
    stored = await fresh(db_session, Project, body["id"])
    assert stored is not None and stored.tenant_id == owner.workspace.id
    assert await count(db_session, Environment, project_id=stored.id) == 1


async def test_members_cannot_create_projects(
    owner: Caller, make_caller: MakeCaller, client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    member = await make_caller(role=Role.MEMBER, workspace=owner.workspace)
    stranger = await make_caller()
    body = {"name": "shop"}
    assert_problem(await client.post(projects_url(owner), json=body, headers=member.headers), 403)
    assert_problem(await client.post(projects_url(owner), json=body, headers=stranger.headers), 404)
    assert await count(db_session, Project, tenant_id=owner.workspace.id) == 0


async def test_project_names_are_unique_per_workspace(
    owner: Caller, make_caller: MakeCaller, client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    assert (
        await client.post(projects_url(owner), json={"name": "shop"}, headers=owner.headers)
    ).status_code == 201
    again = await client.post(projects_url(owner), json={"name": "shop"}, headers=owner.headers)
    assert_problem(again, 409)
    assert await count(db_session, Project, tenant_id=owner.workspace.id) == 1
    # Another workspace may use the same name.
    other = await make_caller()
    elsewhere = await client.post(projects_url(other), json={"name": "shop"}, headers=other.headers)
    assert elsewhere.status_code == 201


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "Shop"}, "name"),
        ({"name": "my_shop"}, "name"),
        ({"name": "-shop"}, "name"),
        ({"name": "shop-"}, "name"),
        ({"name": "a" * 64}, "name"),
        ({"name": ""}, "name"),
        ({}, "name"),
        ({"name": "shop", "description": "x" * 2001}, "description"),
        ({"name": "shop", "description": "nul\x00byte"}, "description"),
        ({"name": "shop", "tenant_id": "x"}, "tenant_id"),
    ],
)
async def test_invalid_projects_are_refused_and_nothing_is_written(
    owner: Caller,
    client: httpx.AsyncClient,
    db_session: AsyncSession,
    body: dict[str, object],
    field: str,
) -> None:
    response = await client.post(projects_url(owner), json=body, headers=owner.headers)
    assert_invalid(response, field)
    assert await count(db_session, Project, tenant_id=owner.workspace.id) == 0


async def test_a_project_scoped_token_sees_only_its_project_and_creates_none(
    owner: Caller, client: httpx.AsyncClient, db_session: AsyncSession, settings: Settings
) -> None:
    mine, other = (ProjectFactory.build(tenant=owner.workspace) for _ in range(2))
    await persist(db_session, mine, other)
    headers = await project_token(db_session, settings, owner.user, mine)
    listed = (await client.get(projects_url(owner), headers=headers)).json()
    assert [p["id"] for p in listed["items"]] == [str(mine.id)] and listed["total"] == 1
    assert (await client.get(f"{API}/projects/{mine.id}", headers=headers)).status_code == 200
    assert_problem(await client.get(f"{API}/projects/{other.id}", headers=headers), 404)
    assert_problem(await client.delete(f"{API}/projects/{other.id}", headers=headers), 404)
    created = await client.post(projects_url(owner), json={"name": "more"}, headers=headers)
    assert_problem(created, 403)
    assert await count(db_session, Project, tenant_id=owner.workspace.id) == 2


# Listing and reading -------------------------------------------------------------------------


async def test_projects_page_sort_and_filter(
    owner: Caller, make_caller: MakeCaller, client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    names = ["delta", "alpha", "charlie", "bravo", "echo"]
    await persist(
        db_session, *(ProjectFactory.build(tenant=owner.workspace, name=n) for n in names)
    )
    stranger = await make_caller()
    await persist(db_session, ProjectFactory.build(tenant=stranger.workspace, name="secret"))
    member = await make_caller(role=Role.MEMBER, workspace=owner.workspace)
    params: dict[str, str | int] = {"sort_by": "name", "sort_order": "asc", "limit": 2, "skip": 2}
    page = (await client.get(projects_url(owner), params=params, headers=member.headers)).json()
    assert [p["name"] for p in page["items"]] == ["charlie", "delta"]
    assert page["total"] == 5 and page["skip"] == 2 and page["has_more"] is True
    desc = (
        await client.get(projects_url(owner), params={"sort_by": "name"}, headers=member.headers)
    ).json()
    assert [p["name"] for p in desc["items"]] == sorted(names, reverse=True)
    named = (
        await client.get(projects_url(owner), params={"name": "echo"}, headers=member.headers)
    ).json()
    assert [p["name"] for p in named["items"]] == ["echo"]
    assert "environments" not in named["items"][0]
    nul = await client.get(projects_url(owner), params={"name": "a\x00"}, headers=member.headers)
    assert_invalid(nul, "name")
    assert_problem(await client.get(projects_url(owner), headers=stranger.headers), 404)
    assert_invalid(
        await client.get(projects_url(owner), params={"skip": -1}, headers=owner.headers), "skip"
    )


async def test_a_project_shows_its_environments_and_services(
    owner: Caller, make_caller: MakeCaller, client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    project = ProjectFactory.build(tenant=owner.workspace, name="shop")
    await persist(
        db_session,
        project,
        EnvironmentFactory.build(project=project, name="production"),
        ServiceFactory.build(project=project, name="web"),
    )
    await persist(db_session, EnvironmentFactory.build(project=project, name="staging"))
    member = await make_caller(role=Role.MEMBER, workspace=owner.workspace)
    response = await client.get(f"{API}/projects/{project.id}", headers=member.headers)
    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "shop"
    assert [e["name"] for e in body["environments"]] == ["production", "staging"]
    assert [s["name"] for s in body["services"]] == ["web"]
    stranger = await make_caller()
    assert_problem(await client.get(f"{API}/projects/{project.id}", headers=stranger.headers), 404)
    assert_problem(await client.get(f"{API}/projects/nope", headers=owner.headers), 404)


# Changing ------------------------------------------------------------------------------------


async def test_admins_rename_describe_and_enable_previews(
    owner: Caller, make_caller: MakeCaller, client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    admin = await make_caller(role=Role.ADMIN, workspace=owner.workspace)
    project = ProjectFactory.build(tenant=owner.workspace, name="shop", description="old")
    await persist(db_session, project)
    url = f"{API}/projects/{project.id}"
    response = await client.patch(url, json={"preview_environments": True}, headers=admin.headers)
    assert response.status_code == 200
    assert response.json()["preview_environments"] is True
    assert response.json()["name"] == "shop" and response.json()["description"] == "old"
    response = await client.patch(
        url, json={"name": "store", "description": ""}, headers=admin.headers
    )
    assert response.status_code == 200
    stored = await fresh(db_session, Project, project.id)
    assert (stored.name, stored.description, stored.preview_environments) == ("store", "", True)


async def test_project_changes_are_validated(
    owner: Caller, client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    project, taken = (ProjectFactory.build(tenant=owner.workspace) for _ in range(2))
    await persist(db_session, project, taken)
    url = f"{API}/projects/{project.id}"
    for body, field in (
        ({"name": None}, "name"),
        ({"name": "Bad Name"}, "name"),
        ({"preview_environments": "maybe"}, "preview_environments"),
        ({"description": None}, "description"),
        ({"owner": "me"}, "owner"),
    ):
        assert_invalid(await client.patch(url, json=body, headers=owner.headers), field)
    assert_problem(await client.patch(url, json={"name": taken.name}, headers=owner.headers), 409)
    assert (await fresh(db_session, Project, project.id)).name == project.name


async def test_members_cannot_change_or_delete_projects(
    owner: Caller, make_caller: MakeCaller, client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    member = await make_caller(role=Role.MEMBER, workspace=owner.workspace)
    stranger = await make_caller()
    project = ProjectFactory.build(tenant=owner.workspace, name="shop")
    await persist(db_session, project)
    url = f"{API}/projects/{project.id}"
    assert_problem(await client.patch(url, json={"name": "x"}, headers=member.headers), 403)
    assert_problem(await client.delete(url, headers=member.headers), 403)
    assert_problem(await client.patch(url, json={"name": "x"}, headers=stranger.headers), 404)
    assert_problem(await client.delete(url, headers=stranger.headers), 404)
    stored = await fresh(db_session, Project, project.id)
    assert stored is not None and stored.name == "shop"


# Deleting ------------------------------------------------------------------------------------


async def test_deleting_a_project_removes_everything_it_holds(
    owner: Caller, client: httpx.AsyncClient, db_session: AsyncSession, settings: Settings
) -> None:
    deployment = DeploymentFactory.build(service__project__tenant=owner.workspace)
    await persist(db_session, deployment)
    project = deployment.service.project
    neighbour = ProjectFactory.build(tenant=owner.workspace)
    await persist(db_session, neighbour, EnvironmentFactory.build(project=neighbour))
    await project_token(db_session, settings, owner.user, project)

    response = await client.delete(f"{API}/projects/{project.id}", headers=owner.headers)
    assert response.status_code == 204 and response.content == b""

    assert await fresh(db_session, Project, project.id) is None
    assert await count(db_session, Environment, project_id=project.id) == 0
    assert await count(db_session, Service, project_id=project.id) == 0
    assert await fresh(db_session, Deployment, deployment.id) is None
    assert await count(db_session, ApiToken, project_id=project.id) == 0
    assert await count(db_session, Environment, project_id=neighbour.id) == 1
    assert_problem(await client.get(f"{API}/projects/{project.id}", headers=owner.headers), 404)
