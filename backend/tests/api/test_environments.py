"""Environments: per project, DNS-label names, renamable, never the last one deleted."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from caboose.config import Settings
from caboose.models import Deployment, Environment, Project, Role
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


async def make_project(session: AsyncSession, caller: Caller, *names: str) -> Project:
    project: Project = ProjectFactory.build(tenant=caller.workspace)
    await persist(
        session,
        project,
        *(EnvironmentFactory.build(project=project, name=n) for n in names or ("production",)),
    )
    return project


# Listing and reading -------------------------------------------------------------------------


async def test_environments_page_sort_and_filter(
    owner: Caller, make_caller: MakeCaller, client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    project = await make_project(db_session, owner, "production", "staging", "dev")
    preview = EnvironmentFactory.build(project=project, name="pr-7", is_preview=True, pr_number=7)
    await persist(db_session, preview)
    other = await make_project(db_session, owner, "elsewhere")
    member = await make_caller(role=Role.MEMBER, workspace=owner.workspace)
    url = f"{API}/projects/{project.id}/environments"
    params: dict[str, str | int] = {"sort_by": "name", "sort_order": "asc", "limit": 3}
    page = (await client.get(url, params=params, headers=member.headers)).json()
    assert [e["name"] for e in page["items"]] == ["dev", "pr-7", "production"]
    assert page["total"] == 4 and page["has_more"] is True
    assert {e["project_id"] for e in page["items"]} == {str(project.id)}
    previews = (await client.get(url, params={"is_preview": True}, headers=member.headers)).json()
    assert [(e["name"], e["pr_number"]) for e in previews["items"]] == [("pr-7", 7)]
    named = (await client.get(url, params={"name": "staging"}, headers=member.headers)).json()
    assert [e["name"] for e in named["items"]] == ["staging"]
    everything = (await client.get(url, params={"limit": 100}, headers=member.headers)).json()
    assert "elsewhere" not in {e["name"] for e in everything["items"]}
    assert other.id != project.id


async def test_reading_one_environment(
    owner: Caller, make_caller: MakeCaller, client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    project = await make_project(db_session, owner)
    environment = EnvironmentFactory.build(project=project, name="staging")
    await persist(db_session, environment)
    member = await make_caller(role=Role.MEMBER, workspace=owner.workspace)
    response = await client.get(f"{API}/environments/{environment.id}", headers=member.headers)
    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "staging" and body["project_id"] == str(project.id)
    assert body["is_preview"] is False and body["pr_number"] is None


async def test_other_workspaces_environments_are_not_found(
    owner: Caller, make_caller: MakeCaller, client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    project = await make_project(db_session, owner, "production", "staging")
    environment = (
        await client.get(f"{API}/projects/{project.id}/environments", headers=owner.headers)
    ).json()["items"][0]
    stranger = await make_caller()
    url = f"{API}/environments/{environment['id']}"
    assert_problem(await client.get(url, headers=stranger.headers), 404)
    assert_problem(await client.patch(url, json={"name": "x"}, headers=stranger.headers), 404)
    assert_problem(await client.delete(url, headers=stranger.headers), 404)
    listing = f"{API}/projects/{project.id}/environments"
    assert_problem(await client.get(listing, headers=stranger.headers), 404)
    assert_problem(await client.post(listing, json={"name": "x"}, headers=stranger.headers), 404)
    assert await count(db_session, Environment, project_id=project.id) == 2


async def test_a_project_scoped_token_reaches_only_its_projects_environments(
    owner: Caller, client: httpx.AsyncClient, db_session: AsyncSession, settings: Settings
) -> None:
    mine = await make_project(db_session, owner)
    other = await make_project(db_session, owner, "production", "staging")
    headers = await project_token(db_session, settings, owner.user, mine)
    assert (
        await client.get(f"{API}/projects/{mine.id}/environments", headers=headers)
    ).status_code == 200
    assert_problem(
        await client.get(f"{API}/projects/{other.id}/environments", headers=headers), 404
    )
    assert await count(db_session, Environment, project_id=other.id) == 2


# Creating ------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.OWNER, Role.ADMIN])
async def test_admins_create_environments(
    owner: Caller,
    make_caller: MakeCaller,
    client: httpx.AsyncClient,
    db_session: AsyncSession,
    role: Role,
) -> None:
    caller = await make_caller(role=role, workspace=owner.workspace)
    project = await make_project(db_session, owner)
    response = await client.post(
        f"{API}/projects/{project.id}/environments",
        json={"name": "staging"},
        headers=caller.headers,
    )
    assert response.status_code == 201, response.text
    assert response.json()["name"] == "staging" and response.json()["is_preview"] is False
    stored = await fresh(db_session, Environment, response.json()["id"])
    assert stored is not None and stored.project_id == project.id


async def test_members_cannot_create_environments(
    owner: Caller, make_caller: MakeCaller, client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    member = await make_caller(role=Role.MEMBER, workspace=owner.workspace)
    project = await make_project(db_session, owner)
    response = await client.post(
        f"{API}/projects/{project.id}/environments",
        json={"name": "staging"},
        headers=member.headers,
    )
    assert_problem(response, 403)
    assert await count(db_session, Environment, project_id=project.id) == 1


async def test_environment_names_are_unique_per_project(
    owner: Caller, client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    project = await make_project(db_session, owner)
    response = await client.post(
        f"{API}/projects/{project.id}/environments",
        json={"name": "production"},
        headers=owner.headers,
    )
    assert_problem(response, 409)
    assert await count(db_session, Environment, project_id=project.id) == 1


@pytest.mark.parametrize(
    "body",
    [{"name": "Staging"}, {"name": "pr-12"}, {"name": "a" * 64}, {"name": ""}, {}, {"name": 3}],
)
async def test_invalid_environment_names_are_refused(
    owner: Caller, client: httpx.AsyncClient, db_session: AsyncSession, body: dict[str, object]
) -> None:
    project = await make_project(db_session, owner)
    response = await client.post(
        f"{API}/projects/{project.id}/environments", json=body, headers=owner.headers
    )
    assert_invalid(response, "name")
    assert await count(db_session, Environment, project_id=project.id) == 1


# Renaming ------------------------------------------------------------------------------------


async def test_production_can_be_renamed(
    owner: Caller, make_caller: MakeCaller, client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    admin = await make_caller(role=Role.ADMIN, workspace=owner.workspace)
    project = await make_project(db_session, owner, "production", "staging")
    listing = (
        await client.get(
            f"{API}/projects/{project.id}/environments",
            params={"name": "production"},
            headers=owner.headers,
        )
    ).json()
    url = f"{API}/environments/{listing['items'][0]['id']}"
    response = await client.patch(url, json={"name": "prod"}, headers=admin.headers)
    assert response.status_code == 200 and response.json()["name"] == "prod"
    assert (await fresh(db_session, Environment, listing["items"][0]["id"])).name == "prod"
    assert_problem(await client.patch(url, json={"name": "staging"}, headers=admin.headers), 409)
    assert_invalid(await client.patch(url, json={"name": None}, headers=admin.headers), "name")
    assert_invalid(await client.patch(url, json={"name": "PROD"}, headers=admin.headers), "name")
    member = await make_caller(role=Role.MEMBER, workspace=owner.workspace)
    assert_problem(await client.patch(url, json={"name": "x"}, headers=member.headers), 403)
    assert (await fresh(db_session, Environment, listing["items"][0]["id"])).name == "prod"


async def test_preview_environments_keep_their_name(
    owner: Caller, client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    project = await make_project(db_session, owner)
    preview = EnvironmentFactory.build(project=project, name="pr-3", is_preview=True, pr_number=3)
    await persist(db_session, preview)
    response = await client.patch(
        f"{API}/environments/{preview.id}", json={"name": "feature"}, headers=owner.headers
    )
    assert_problem(response, 409)
    assert (await fresh(db_session, Environment, preview.id)).name == "pr-3"


# Deleting ------------------------------------------------------------------------------------


async def test_deleting_an_environment_removes_its_deployments(
    owner: Caller, client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    project = await make_project(db_session, owner, "production", "staging")
    staging = EnvironmentFactory.build(project=project, name="staging-2")
    service = ServiceFactory.build(project=project)
    deployment = DeploymentFactory.build(service=service, environment=staging)
    await persist(db_session, staging, service, deployment)
    response = await client.delete(f"{API}/environments/{staging.id}", headers=owner.headers)
    assert response.status_code == 204 and response.content == b""
    assert await fresh(db_session, Environment, staging.id) is None
    assert await fresh(db_session, Deployment, deployment.id) is None
    assert await count(db_session, Environment, project_id=project.id) == 2


async def test_the_last_environment_cannot_be_deleted(
    owner: Caller, client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    project = await make_project(db_session, owner)
    (only,) = (
        await client.get(f"{API}/projects/{project.id}/environments", headers=owner.headers)
    ).json()["items"]
    response = await client.delete(f"{API}/environments/{only['id']}", headers=owner.headers)
    body = assert_problem(response, 409)
    assert "at least one environment" in body["detail"]
    assert await fresh(db_session, Environment, only["id"]) is not None


async def test_members_cannot_delete_environments(
    owner: Caller, make_caller: MakeCaller, client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    member = await make_caller(role=Role.MEMBER, workspace=owner.workspace)
    project = await make_project(db_session, owner, "production", "staging")
    staging = (
        await client.get(
            f"{API}/projects/{project.id}/environments",
            params={"name": "staging"},
            headers=owner.headers,
        )
    ).json()["items"][0]
    assert_problem(
        await client.delete(f"{API}/environments/{staging['id']}", headers=member.headers), 403
    )
    assert await count(db_session, Environment, project_id=project.id) == 2
