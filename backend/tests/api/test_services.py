"""Services: every deploy setting stored as sent, refused when unsafe or out of range (422 naming
the field, nothing written), credentials in repository URLs never shown back."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from caboose.config import Settings
from caboose.models import Deployment, Project, Role, Service
from tests.api.workspace_helpers import (
    API,
    assert_invalid,
    assert_problem,
    count,
    fresh,
    project_token,
)
from tests.conftest import Caller, MakeCaller
from tests.factories import DeploymentFactory, ProjectFactory, ServiceFactory, persist

FULL_SETTINGS: dict[str, Any] = {
    "name": "web",
    "repo_url": "https://github.com/acme/shop.git",
    "branch": "release/2024.1",
    "root_directory": "./apps//web/",
    "build_command": "npm ci && npm run build",
    "start_command": "npm start",
    "pre_deploy_command": "npm run migrate",
    "healthcheck_path": "/health?full=1",
    "healthcheck_timeout": 120,
    "num_replicas": 3,
    "restart_policy_type": "ON_FAILURE",
    "restart_policy_max_retries": 5,
    "memory_limit_mb": 512,
    "cron_schedule": "*/15 9-17 * * mon-fri",
    "watch_patterns": ["apps/web/**", "!**/*.md"],
    "overlap_seconds": 30,
    "draining_seconds": 10,
}


async def make_project(session: AsyncSession, caller: Caller) -> Project:
    project: Project = ProjectFactory.build(tenant=caller.workspace)
    await persist(session, project)
    return project


def services_url(project: Project) -> str:
    return f"{API}/projects/{project.id}/services"


# Creating ------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.OWNER, Role.ADMIN])
async def test_a_service_stores_every_setting(
    owner: Caller,
    make_caller: MakeCaller,
    client: httpx.AsyncClient,
    db_session: AsyncSession,
    role: Role,
) -> None:
    caller = await make_caller(role=role, workspace=owner.workspace)
    project = await make_project(db_session, owner)
    response = await client.post(services_url(project), json=FULL_SETTINGS, headers=caller.headers)
    assert response.status_code == 201, response.text
    body = response.json()
    expected = {**FULL_SETTINGS, "root_directory": "apps/web"}
    assert {key: body[key] for key in expected} == expected
    assert body["project_id"] == str(project.id)
    stored = await fresh(db_session, Service, body["id"])
    for key, value in expected.items():
        assert getattr(stored, key) == value, key


async def test_a_minimal_service_has_defaults_and_no_source(
    owner: Caller, client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    project = await make_project(db_session, owner)
    response = await client.post(services_url(project), json={"name": "api"}, headers=owner.headers)
    assert response.status_code == 201
    body = response.json()
    assert body["repo_url"] is None and body["branch"] == "main" and body["root_directory"] == ""
    assert body["num_replicas"] is None and body["watch_patterns"] is None


async def test_members_cannot_create_services_and_strangers_cannot_see(
    owner: Caller, make_caller: MakeCaller, client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    member = await make_caller(role=Role.MEMBER, workspace=owner.workspace)
    stranger = await make_caller()
    project = await make_project(db_session, owner)
    body = {"name": "web"}
    assert_problem(await client.post(services_url(project), json=body, headers=member.headers), 403)
    assert_problem(
        await client.post(services_url(project), json=body, headers=stranger.headers), 404
    )
    assert await count(db_session, Service, project_id=project.id) == 0


async def test_service_names_are_unique_per_project(
    owner: Caller, client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    project = await make_project(db_session, owner)
    url = services_url(project)
    assert (await client.post(url, json={"name": "web"}, headers=owner.headers)).status_code == 201
    assert_problem(await client.post(url, json={"name": "web"}, headers=owner.headers), 409)
    assert await count(db_session, Service, project_id=project.id) == 1


INVALID: list[tuple[str, Any]] = [
    ("name", "Web"),
    ("name", "web_app"),
    ("name", "a" * 64),
    ("name", None),
    # Repository URLs: only https, http and git@host:path.
    ("repo_url", "file:///etc/passwd"),
    ("repo_url", "/srv/repos/shop.git"),
    ("repo_url", "ssh://git@github.com/acme/shop.git"),
    ("repo_url", "ssh://user:secret@github.com/acme/shop.git"),
    ("repo_url", "ext::sh -c touch% /tmp/pwned"),
    ("repo_url", "--upload-pack=touch /tmp/pwned"),
    ("repo_url", "-uhttps://github.com/a/b"),
    ("repo_url", "https://github.com/acme/my shop"),
    ("repo_url", "https://github.com/acme/shop\n--config=x"),
    ("repo_url", "http://user:secret@github.com/acme/shop.git"),
    ("repo_url", "https://github.com"),
    ("repo_url", "https://github.com/acme/../../etc"),
    ("repo_url", "https://github.com/acme/shop?ref=x"),
    ("repo_url", "git@github.com:../../etc/passwd"),
    ("repo_url", "git@-oProxyCommand=sh:acme/shop"),
    ("repo_url", "git@github.com:"),
    ("repo_url", "ftp://github.com/acme/shop"),
    ("repo_url", "https://" + "a" * 500 + ".com/x"),
    # Branches: what git check-ref-format --branch refuses.
    ("branch", ""),
    ("branch", "-b"),
    ("branch", "feature..x"),
    ("branch", "feature x"),
    ("branch", "feature~1"),
    ("branch", "a:b"),
    ("branch", "refs/heads/x.lock"),
    ("branch", "x/"),
    ("branch", ".hidden"),
    ("branch", "@{-1}"),
    ("branch", None),
    # Root directory: relative, inside the checkout.
    ("root_directory", "/etc"),
    ("root_directory", "../outside"),
    ("root_directory", "apps/../../outside"),
    ("root_directory", "apps\\web"),
    # Health checks.
    ("healthcheck_path", "health"),
    ("healthcheck_path", "//evil.example.com/"),
    ("healthcheck_path", "/a b"),
    ("healthcheck_timeout", 0),
    ("healthcheck_timeout", 3601),
    ("healthcheck_timeout", "10"),
    # Replicas and restarts.
    ("num_replicas", 0),
    ("num_replicas", 21),
    ("num_replicas", 1.5),
    ("restart_policy_type", "on_failure"),
    ("restart_policy_type", "SOMETIMES"),
    ("restart_policy_max_retries", -1),
    ("restart_policy_max_retries", 101),
    ("memory_limit_mb", 63),
    ("memory_limit_mb", 65537),
    # Cron.
    ("cron_schedule", "* * * *"),
    ("cron_schedule", "60 * * * *"),
    ("cron_schedule", "* 24 * * *"),
    ("cron_schedule", "* * 0 * *"),
    ("cron_schedule", "* * * 13 *"),
    ("cron_schedule", "* * * * 8"),
    ("cron_schedule", "5-1 * * * *"),
    ("cron_schedule", "*/0 * * * *"),
    ("cron_schedule", "@daily"),
    ("cron_schedule", "a b c d e"),
    # Watch patterns.
    ("watch_patterns", ["x"] * 101),
    ("watch_patterns", [""]),
    ("watch_patterns", ["a\nb"]),
    ("watch_patterns", "src/**"),
    # Deploy timing.
    ("overlap_seconds", -1),
    ("overlap_seconds", 3601),
    ("draining_seconds", 3601),
    # Commands.
    ("build_command", "x" * 4097),
    ("start_command", "x" * 4097),
    ("pre_deploy_command", "a\x00b"),
    # Not a setting at all.
    ("project_id", "00000000-0000-0000-0000-000000000000"),
]


@pytest.mark.parametrize(("field", "value"), INVALID, ids=[f"{f}={v!r:.40}" for f, v in INVALID])
async def test_invalid_settings_are_refused_and_nothing_is_written(
    owner: Caller, client: httpx.AsyncClient, db_session: AsyncSession, field: str, value: Any
) -> None:
    project = await make_project(db_session, owner)
    body = {"name": "web", field: value}
    response = await client.post(services_url(project), json=body, headers=owner.headers)
    assert_invalid(response, field)
    assert await count(db_session, Service, project_id=project.id) == 0


VALID: list[tuple[str, Any, Any]] = [
    ("repo_url", "http://git.internal:3000/acme/shop", None),
    ("repo_url", "https://x-access-token:ghp_abc@github.com/acme/private.git", None),
    ("repo_url", "git@gitlab.example.com:group/sub/project.git", None),
    ("repo_url", "", None),
    ("branch", "feature/login-v2", None),
    ("root_directory", ".", ""),
    ("root_directory", "services/api/", "services/api"),
    ("cron_schedule", "0  3 * *  SUN", "0 3 * * SUN"),
    ("cron_schedule", "0,30 */2 1-15/2 jan-jun 0-6", None),
    ("cron_schedule", "5/10 * * * 7", None),
    ("build_command", "", None),
    ("build_command", "set -e\nmake build", None),
    ("healthcheck_path", "/", None),
    ("watch_patterns", [], None),
]


@pytest.mark.parametrize(("field", "value", "stored"), VALID)
async def test_valid_edge_settings_are_accepted(
    owner: Caller,
    client: httpx.AsyncClient,
    db_session: AsyncSession,
    field: str,
    value: Any,
    stored: Any,
) -> None:
    project = await make_project(db_session, owner)
    response = await client.post(
        services_url(project), json={"name": "web", field: value}, headers=owner.headers
    )
    assert response.status_code == 201, response.text
    expected = stored if stored is not None or value == "" else value
    assert getattr(await fresh(db_session, Service, response.json()["id"]), field) == expected


async def test_credentials_in_a_repository_url_are_never_shown(
    owner: Caller, make_caller: MakeCaller, client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    project = await make_project(db_session, owner)
    url = "https://x-access-token:ghp_secret123@github.com/acme/private.git"
    created = await client.post(
        services_url(project), json={"name": "web", "repo_url": url}, headers=owner.headers
    )
    assert created.status_code == 201
    masked = "https://***@github.com/acme/private.git"
    assert created.json()["repo_url"] == masked
    member = await make_caller(role=Role.MEMBER, workspace=owner.workspace)
    for response in (
        await client.get(f"{API}/services/{created.json()['id']}", headers=member.headers),
        await client.get(services_url(project), headers=member.headers),
        await client.get(f"{API}/projects/{project.id}", headers=member.headers),
    ):
        assert "ghp_secret123" not in response.text and masked in response.text
    # The real URL is what the platform clones from.
    assert (await fresh(db_session, Service, created.json()["id"])).repo_url == url
    # Sending the masked value back is refused rather than overwriting the secret.
    echoed = await client.patch(
        f"{API}/services/{created.json()['id']}", json={"repo_url": masked}, headers=owner.headers
    )
    assert_invalid(echoed, "repo_url")
    assert (await fresh(db_session, Service, created.json()["id"])).repo_url == url


# Listing and reading -------------------------------------------------------------------------


async def test_services_page_sort_and_filter(
    owner: Caller, make_caller: MakeCaller, client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    project = await make_project(db_session, owner)
    names = ["worker", "api", "web", "cron"]
    await persist(db_session, *(ServiceFactory.build(project=project, name=n) for n in names))
    other = await make_project(db_session, owner)
    await persist(db_session, ServiceFactory.build(project=other, name="hidden"))
    member = await make_caller(role=Role.MEMBER, workspace=owner.workspace)
    params: dict[str, str | int] = {"sort_by": "name", "sort_order": "asc", "limit": 3}
    page = (await client.get(services_url(project), params=params, headers=member.headers)).json()
    assert [s["name"] for s in page["items"]] == ["api", "cron", "web"]
    assert page["total"] == 4 and page["has_more"] is True
    named = (
        await client.get(services_url(project), params={"name": "web"}, headers=member.headers)
    ).json()
    assert [s["name"] for s in named["items"]] == ["web"]
    stranger = await make_caller()
    assert_problem(await client.get(services_url(project), headers=stranger.headers), 404)


async def test_reading_a_service(
    owner: Caller, make_caller: MakeCaller, client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    project = await make_project(db_session, owner)
    service = ServiceFactory.build(project=project, name="web", num_replicas=2)
    await persist(db_session, service)
    member = await make_caller(role=Role.MEMBER, workspace=owner.workspace)
    response = await client.get(f"{API}/services/{service.id}", headers=member.headers)
    assert response.status_code == 200
    assert response.json()["name"] == "web" and response.json()["num_replicas"] == 2
    stranger = await make_caller()
    assert_problem(await client.get(f"{API}/services/{service.id}", headers=stranger.headers), 404)


async def test_a_project_scoped_token_reaches_only_its_projects_services(
    owner: Caller, client: httpx.AsyncClient, db_session: AsyncSession, settings: Settings
) -> None:
    mine, other = await make_project(db_session, owner), await make_project(db_session, owner)
    theirs = ServiceFactory.build(project=other)
    await persist(db_session, theirs)
    headers = await project_token(db_session, settings, owner.user, mine)
    created = await client.post(services_url(mine), json={"name": "web"}, headers=headers)
    assert created.status_code == 201
    assert_problem(await client.get(f"{API}/services/{theirs.id}", headers=headers), 404)
    assert_problem(
        await client.patch(f"{API}/services/{theirs.id}", json={"name": "x"}, headers=headers),
        404,
    )
    assert_problem(await client.post(services_url(other), json={"name": "x"}, headers=headers), 404)


# Changing ------------------------------------------------------------------------------------


async def test_patch_changes_only_what_is_sent_and_null_unsets(
    owner: Caller, make_caller: MakeCaller, client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    admin = await make_caller(role=Role.ADMIN, workspace=owner.workspace)
    project = await make_project(db_session, owner)
    created = (
        await client.post(services_url(project), json=FULL_SETTINGS, headers=owner.headers)
    ).json()
    url = f"{API}/services/{created['id']}"
    response = await client.patch(
        url,
        json={"num_replicas": 5, "healthcheck_path": None, "branch": "main"},
        headers=admin.headers,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["num_replicas"] == 5 and body["healthcheck_path"] is None
    assert body["branch"] == "main"
    assert body["start_command"] == FULL_SETTINGS["start_command"]
    stored = await fresh(db_session, Service, created["id"])
    assert (stored.num_replicas, stored.healthcheck_path, stored.branch) == (5, None, "main")
    assert stored.cron_schedule == FULL_SETTINGS["cron_schedule"]


async def test_patch_validates_like_create(
    owner: Caller, client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    project = await make_project(db_session, owner)
    service, taken = (ServiceFactory.build(project=project) for _ in range(2))
    await persist(db_session, service, taken)
    url = f"{API}/services/{service.id}"
    for body, field in (
        ({"name": None}, "name"),
        ({"branch": None}, "branch"),
        ({"root_directory": None}, "root_directory"),
        ({"repo_url": "file:///etc"}, "repo_url"),
        ({"num_replicas": 100}, "num_replicas"),
        ({"cron_schedule": "nope"}, "cron_schedule"),
        ({"unknown": 1}, "unknown"),
    ):
        assert_invalid(await client.patch(url, json=body, headers=owner.headers), field)
    assert_problem(await client.patch(url, json={"name": taken.name}, headers=owner.headers), 409)
    stored = await fresh(db_session, Service, service.id)
    assert stored.name == service.name and stored.num_replicas is None


async def test_members_cannot_change_or_delete_services(
    owner: Caller, make_caller: MakeCaller, client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    member = await make_caller(role=Role.MEMBER, workspace=owner.workspace)
    stranger = await make_caller()
    project = await make_project(db_session, owner)
    service = ServiceFactory.build(project=project, name="web")
    await persist(db_session, service)
    url = f"{API}/services/{service.id}"
    assert_problem(await client.patch(url, json={"num_replicas": 2}, headers=member.headers), 403)
    assert_problem(await client.delete(url, headers=member.headers), 403)
    assert_problem(await client.patch(url, json={"num_replicas": 2}, headers=stranger.headers), 404)
    assert_problem(await client.delete(url, headers=stranger.headers), 404)
    stored = await fresh(db_session, Service, service.id)
    assert stored is not None and stored.num_replicas is None


# Deleting ------------------------------------------------------------------------------------


async def test_deleting_a_service_removes_its_deployments(
    owner: Caller, make_caller: MakeCaller, client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    admin = await make_caller(role=Role.ADMIN, workspace=owner.workspace)
    deployment = DeploymentFactory.build(service__project__tenant=owner.workspace)
    await persist(db_session, deployment)
    sibling = ServiceFactory.build(project=deployment.service.project)
    await persist(db_session, sibling)
    response = await client.delete(f"{API}/services/{deployment.service.id}", headers=admin.headers)
    assert response.status_code == 204 and response.content == b""
    assert await fresh(db_session, Service, deployment.service.id) is None
    assert await fresh(db_session, Deployment, deployment.id) is None
    assert await fresh(db_session, Service, sibling.id) is not None
    assert_problem(
        await client.get(f"{API}/services/{deployment.service.id}", headers=admin.headers), 404
    )
