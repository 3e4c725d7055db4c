"""Deployments and domains over HTTP: what is accepted, refused, stored, and handed to workers.

Workers are not running here: the app's task sender is replaced by a recorder, so each test sees
exactly which task would run for which deployment (after the rows were committed). What the
tasks then do is covered by ``test_deploy_tasks.py`` and the end-to-end suite.
"""

from __future__ import annotations

import gzip
import io
import tarfile
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from caboose.config import Settings
from caboose.deploys.reporting import cancel_key
from caboose.engine.build.artifacts import BuildResult, write_manifest
from caboose.engine.types import BuildPlan
from caboose.logs.events import read_events
from caboose.models import (
    Build,
    BuildStatus,
    Deployment,
    DeploymentEvent,
    DeploymentStatus,
    Domain,
    DomainKind,
    Environment,
    Project,
    Role,
    Service,
    SourceType,
)
from tests.api.workspace_helpers import API, assert_invalid, assert_problem, fresh, project_token
from tests.conftest import Caller, MakeCaller
from tests.factories import EnvironmentFactory, ProjectFactory, ServiceFactory, persist

PUBLIC_KEYS = {
    "id",
    "service_id",
    "environment_id",
    "build_id",
    "status",
    "status_reason",
    "created_at",
    "updated_at",
    "started_at",
    "finished_at",
    "commit_sha",
    "url",
    "replicas",
}


@dataclass
class Sent:
    """Tasks the API handed to workers."""

    tasks: list[tuple[str, list[str], str]] = field(default_factory=list)

    def __call__(self, name: str, args: list[str], task_id: str) -> None:
        self.tasks.append((name, args, task_id))

    def named(self, name: str) -> list[list[str]]:
        return [args for task, args, _ in self.tasks if task == name]


@pytest.fixture
def sent(app: FastAPI) -> Sent:
    recorder = Sent()
    app.state.task_sender = recorder
    return recorder


@dataclass
class Target:
    project: Project
    environment: Environment
    service: Service


@pytest.fixture
def make_target(db_session: AsyncSession) -> Callable[..., Any]:
    async def make(
        caller: Caller,
        *,
        repo_url: str | None = "https://example.com/acme/shop.git",
        project_name: str | None = None,
        service_name: str = "web",
    ) -> Target:
        project = ProjectFactory.build(tenant=caller.workspace)
        if project_name:
            project.name = project_name
        environment = EnvironmentFactory.build(project=project, name="production")
        service = ServiceFactory.build(project=project, name=service_name, repo_url=repo_url)
        await persist(db_session, project, environment, service)
        return Target(project, environment, service)

    return make


def tarball(
    files: Mapping[str, str | bytes], *, extra: Callable[[tarfile.TarFile], None] | None = None
) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, content in files.items():
            data = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = int(time.time())
            archive.addfile(info, io.BytesIO(data))
        if extra is not None:
            extra(archive)
    return buffer.getvalue()


SITE = {"index.html": "<h1>hello</h1>\n"}


def deployments_url(target: Target) -> str:
    return f"{API}/services/{target.service.id}/deployments"


def uploads_url(target: Target) -> str:
    return f"{API}/services/{target.service.id}/uploads?environment_id={target.environment.id}"


async def upload(
    client: httpx.AsyncClient, caller: Caller, target: Target, body: bytes
) -> httpx.Response:
    return await client.post(
        uploads_url(target),
        content=body,
        headers={**caller.headers, "Content-Type": "application/gzip"},
    )


# Deploying from git -----------------------------------------------------------------------------


async def test_deploy_from_git_is_queued_with_a_build_and_a_domain(
    client: httpx.AsyncClient,
    owner: Caller,
    make_target: Any,
    sent: Sent,
    db_session: AsyncSession,
) -> None:
    target = await make_target(owner, project_name="shop")
    response = await client.post(
        deployments_url(target),
        json={"environment_id": str(target.environment.id), "commit_sha": "ABCDEF1"},
        headers=owner.headers,
    )
    assert response.status_code == 202, response.text
    body = response.json()
    assert set(body) >= PUBLIC_KEYS
    assert body["status"] == "QUEUED" and body["replicas"] == [] and body["url"] is None
    assert body["commit_sha"] == "abcdef1" and body["trigger"] == "manual"
    assert sent.tasks == [("deployments.build", [body["id"]], sent.tasks[0][2])]

    deployment = await fresh(db_session, Deployment, body["id"])
    assert deployment.task_id == sent.tasks[0][2]
    build = await fresh(db_session, Build, body["build_id"])
    assert (build.source_type, build.status, build.commit_sha, build.branch) == (
        SourceType.GIT,
        BuildStatus.QUEUED,
        "abcdef1",
        target.service.branch,
    )
    hostnames = (
        await db_session.scalars(
            select(Domain.hostname).where(Domain.service_id == target.service.id)
        )
    ).all()
    assert list(hostnames) == ["web-shop.localhost"]


async def test_git_deploy_needs_a_repository(
    client: httpx.AsyncClient, owner: Caller, make_target: Any, sent: Sent
) -> None:
    target = await make_target(owner, repo_url=None)
    response = await client.post(
        deployments_url(target),
        json={"environment_id": str(target.environment.id)},
        headers=owner.headers,
    )
    assert_problem(response, 409)
    assert sent.tasks == []


@pytest.mark.parametrize(
    "body, fields",
    [
        ({}, ["environment_id"]),
        ({"environment_id": "nope"}, ["environment_id"]),
        ({"environment_id": None, "commit_sha": "xyz"}, ["environment_id", "commit_sha"]),
        ({"environment_id": "00000000-0000-0000-0000-000000000000", "extra": 1}, ["extra"]),
    ],
)
async def test_deploy_request_is_validated(
    client: httpx.AsyncClient,
    owner: Caller,
    make_target: Any,
    sent: Sent,
    body: dict[str, Any],
    fields: list[str],
) -> None:
    target = await make_target(owner)
    response = await client.post(deployments_url(target), json=body, headers=owner.headers)
    assert_invalid(response, *fields)
    assert sent.tasks == []


async def test_environment_must_belong_to_the_service_project(
    client: httpx.AsyncClient, owner: Caller, make_target: Any, sent: Sent
) -> None:
    target = await make_target(owner)
    elsewhere = await make_target(owner)
    response = await client.post(
        deployments_url(target),
        json={"environment_id": str(elsewhere.environment.id)},
        headers=owner.headers,
    )
    assert_invalid(response, "environment_id")
    assert sent.tasks == []


async def test_a_newer_deployment_supersedes_a_queued_one(
    client: httpx.AsyncClient,
    owner: Caller,
    make_target: Any,
    sent: Sent,
    db_session: AsyncSession,
    redis: Redis,
) -> None:
    target = await make_target(owner)
    payload = {"environment_id": str(target.environment.id)}
    first = (await client.post(deployments_url(target), json=payload, headers=owner.headers)).json()
    second = (
        await client.post(deployments_url(target), json=payload, headers=owner.headers)
    ).json()
    old = await fresh(db_session, Deployment, first["id"])
    assert old.status == DeploymentStatus.CANCELLED
    assert old.status_reason == f"superseded by deployment {second['id']}"
    assert old.finished_at is not None
    assert await redis.get(cancel_key(first["id"])) == "1"
    assert sent.named("deployments.cancel") == [[first["id"]]]
    events = (
        await db_session.scalars(
            select(DeploymentEvent.status).where(DeploymentEvent.deployment_id == old.id)
        )
    ).all()
    assert list(events) == [DeploymentStatus.CANCELLED]
    published = await read_events(redis, target.project.id)
    kinds = [(event["deployment_id"], event["status"]) for event in published]
    assert (first["id"], "CANCELLED") in kinds and (second["id"], "QUEUED") in kinds


# Uploads --------------------------------------------------------------------------------------


async def test_upload_is_stored_and_queued(
    client: httpx.AsyncClient,
    owner: Caller,
    make_target: Any,
    sent: Sent,
    db_session: AsyncSession,
    settings: Settings,
) -> None:
    target = await make_target(owner, repo_url=None)
    response = await upload(client, owner, target, tarball(SITE))
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["trigger"] == "upload" and body["status"] == "QUEUED"
    build = await fresh(db_session, Build, body["build_id"])
    assert build.source_type == SourceType.UPLOAD
    stored = Path(build.source_path)
    assert stored.parent == settings.data_dir / "uploads"
    assert stored.read_bytes() == tarball(SITE) or stored.stat().st_size > 0
    assert stored.stat().st_mode & 0o777 == 0o600
    assert sent.named("deployments.build") == [[body["id"]]]
    assert not list(stored.parent.glob(".check-*")) and not list(stored.parent.glob("*.part"))


async def test_upload_as_multipart_field(
    client: httpx.AsyncClient, owner: Caller, make_target: Any, sent: Sent
) -> None:
    target = await make_target(owner, repo_url=None)
    response = await client.post(
        uploads_url(target),
        files={"file": ("source.tar.gz", tarball(SITE), "application/gzip")},
        headers=owner.headers,
    )
    assert response.status_code == 202, response.text
    assert len(sent.named("deployments.build")) == 1


def _link_out(archive: tarfile.TarFile) -> None:
    info = tarfile.TarInfo("escape")
    info.type = tarfile.SYMTYPE
    info.linkname = "../../etc/passwd"
    archive.addfile(info)


@pytest.mark.parametrize(
    "body, status, words",
    [
        (b"", 400, "empty"),
        (b"PK\x03\x04 a zip file", 400, "not a gzip"),
        (gzip.compress(b"not a tar archive at all" * 40), 400, ""),
        (tarball({"../outside.txt": "x"}), 400, ""),
        (tarball({"/etc/cron.d/evil": "x"}), 400, ""),
        (tarball(SITE, extra=_link_out), 400, ""),
    ],
    ids=["empty", "zip", "gzip-not-tar", "dotdot", "absolute", "symlink-out"],
)
async def test_refused_archives_are_refused_at_upload(
    client: httpx.AsyncClient,
    owner: Caller,
    make_target: Any,
    sent: Sent,
    settings: Settings,
    body: bytes,
    status: int,
    words: str,
) -> None:
    target = await make_target(owner, repo_url=None)
    before = (
        set((settings.data_dir / "uploads").glob("*"))
        if (settings.data_dir / "uploads").exists()
        else set()
    )
    response = await upload(client, owner, target, body)
    problem = assert_problem(response, status)
    assert words in problem["detail"]
    assert sent.tasks == []
    after = set((settings.data_dir / "uploads").glob("*"))
    assert after == before  # nothing kept of a refused upload


async def test_too_many_files_is_a_413(
    client: httpx.AsyncClient,
    owner: Caller,
    make_target: Any,
    sent: Sent,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("caboose.api.deployments.DEFAULT_UPLOAD_MAX_FILES", 3)
    target = await make_target(owner, repo_url=None)
    response = await upload(client, owner, target, tarball({f"f{i}.txt": "x" for i in range(10)}))
    assert_problem(response, 413)
    assert sent.tasks == []


async def test_upload_needs_a_tarball_media_type(
    client: httpx.AsyncClient, owner: Caller, make_target: Any, sent: Sent
) -> None:
    target = await make_target(owner, repo_url=None)
    response = await client.post(
        uploads_url(target),
        content=b"{}",
        headers={**owner.headers, "Content-Type": "application/json"},
    )
    assert_problem(response, 415)


# Reading ----------------------------------------------------------------------------------------


async def _deployment(
    session: AsyncSession,
    target: Target,
    status: DeploymentStatus,
    *,
    build: Build | None = None,
    **values: Any,
) -> Deployment:
    deployment = Deployment(
        service_id=target.service.id,
        environment_id=target.environment.id,
        status=status,
        build_id=build.id if build else None,
        replicas=values.pop("replicas", []),
        **values,
    )
    await persist(session, deployment)
    return deployment


async def _build(
    session: AsyncSession, target: Target, artifact: Path | None = None, **values: Any
) -> Build:
    build = Build(
        service_id=target.service.id,
        status=values.pop("status", BuildStatus.SUCCEEDED),
        source_type=values.pop("source_type", SourceType.UPLOAD),
        artifact_path=str(artifact) if artifact else None,
        **values,
    )
    await persist(session, build)
    return build


def fake_artifact(root: Path) -> Path:
    """An artifact directory with a manifest, as a successful build leaves it."""
    artifact = root / f"artifact-{uuid.uuid4().hex}"
    (artifact / "app").mkdir(parents=True)
    plan = BuildPlan(provider="static", runtime="static", runtime_version="1", static_dir=".")
    write_manifest(
        BuildResult(
            build_id=artifact.name,
            artifact_dir=artifact,
            app_dir=artifact / "app",
            plan=plan,
            cache_key=None,
            cache_hit=False,
            path_prefix=(),
            finished_at=time.time(),
        )
    )
    return artifact


async def test_get_has_exactly_the_documented_shape(
    client: httpx.AsyncClient, owner: Caller, make_target: Any, db_session: AsyncSession
) -> None:
    target = await make_target(owner)
    deployment = await _deployment(
        db_session,
        target,
        DeploymentStatus.ACTIVE,
        url="http://web-x.localhost:8080",
        replicas=[
            {
                "index": 0,
                "name": "web-abc-0",
                "port": 20001,
                "status": "online",
                "restarts": 2,
                "pid": 4242,
            }
        ],
    )
    response = await client.get(f"{API}/deployments/{deployment.id}", headers=owner.headers)
    assert response.status_code == 200
    body = response.json()
    assert set(body) >= PUBLIC_KEYS
    assert body["replicas"] == [
        {"index": 0, "port": 20001, "status": "online", "restarts": 2, "pid": 4242}
    ]
    assert body["url"] == "http://web-x.localhost:8080"


async def test_list_is_newest_first_and_filtered_by_environment(
    client: httpx.AsyncClient, owner: Caller, make_target: Any, db_session: AsyncSession
) -> None:
    target = await make_target(owner)
    staging = EnvironmentFactory.build(project=target.project, name="staging")
    await persist(db_session, staging)
    made = []
    for _ in range(3):
        made.append(await _deployment(db_session, target, DeploymentStatus.REMOVED))
    other = Deployment(
        service_id=target.service.id,
        environment_id=staging.id,
        status=DeploymentStatus.ACTIVE,
        replicas=[],
    )
    await persist(db_session, other)
    url = f"{deployments_url(target)}?environment_id={target.environment.id}"
    page = (await client.get(url, headers=owner.headers)).json()
    assert page["total"] == 3
    created = [item["created_at"] for item in page["items"]]
    assert created == sorted(created, reverse=True)
    everything = (await client.get(deployments_url(target), headers=owner.headers)).json()
    assert everything["total"] == 4


# The canvas' batch: the latest deployment of every service ---------------------------------


def latest_url(target: Target, environment_id: uuid.UUID | None = None) -> str:
    environment = environment_id or target.environment.id
    return f"{API}/projects/{target.project.id}/deployments/latest?environment_id={environment}"


async def test_latest_has_every_service_with_its_newest_and_its_live_deployment(
    client: httpx.AsyncClient, owner: Caller, make_target: Any, db_session: AsyncSession
) -> None:
    target = await make_target(owner)
    idle = ServiceFactory.build(project=target.project, name="idle")
    live = ServiceFactory.build(project=target.project, name="live")
    staging = EnvironmentFactory.build(project=target.project, name="staging")
    await persist(db_session, idle, live, staging)
    start = datetime(2026, 1, 1, tzinfo=UTC)

    def at(minutes: int) -> dict[str, Any]:
        return {"created_at": start + timedelta(minutes=minutes)}

    # web: live, then a newer deployment still building.
    await _deployment(db_session, target, DeploymentStatus.REMOVED, **at(0))
    serving = await _deployment(
        db_session, target, DeploymentStatus.ACTIVE, url="http://web.localhost", **at(1)
    )
    building = await _deployment(db_session, target, DeploymentStatus.BUILDING, **at(2))
    # live: its newest is the live one.
    live_target = Target(target.project, target.environment, live)
    await _deployment(db_session, live_target, DeploymentStatus.ACTIVE, **at(0))
    newest_live = await _deployment(db_session, live_target, DeploymentStatus.ACTIVE, **at(3))
    # Another environment's deployment of idle: not shown in production.
    await _deployment(
        db_session, Target(target.project, staging, idle), DeploymentStatus.ACTIVE, **at(4)
    )

    response = await client.get(latest_url(target), headers=owner.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["environment_id"] == str(target.environment.id)
    project = await client.get(f"{API}/projects/{target.project.id}", headers=owner.headers)
    order = [s["id"] for s in project.json()["services"]]
    assert [item["service_id"] for item in body["items"]] == order
    by_service = {item["service_id"]: item for item in body["items"]}
    web = by_service[str(target.service.id)]
    assert web["latest"]["id"] == str(building.id) and web["latest"]["status"] == "BUILDING"
    assert web["active"]["id"] == str(serving.id) and web["active"]["url"] == "http://web.localhost"
    assert set(web["active"]) >= PUBLIC_KEYS
    both = by_service[str(live.id)]
    assert both["latest"]["id"] == both["active"]["id"] == str(newest_live.id)
    assert by_service[str(idle.id)] == {"service_id": str(idle.id), "latest": None, "active": None}

    in_staging = (await client.get(latest_url(target, staging.id), headers=owner.headers)).json()
    staged = {item["service_id"]: item for item in in_staging["items"]}
    assert staged[str(idle.id)]["active"]["status"] == "ACTIVE"
    assert staged[str(target.service.id)] == {
        "service_id": str(target.service.id),
        "latest": None,
        "active": None,
    }


async def test_latest_costs_the_same_queries_for_one_service_or_many(
    client: httpx.AsyncClient,
    owner: Caller,
    make_target: Any,
    db_session: AsyncSession,
    db_connection: AsyncConnection,
) -> None:
    """The point of the batch: its database work does not grow with the number of services."""
    target = await make_target(owner)
    await _deployment(db_session, target, DeploymentStatus.ACTIVE)
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            statements.append(statement)

    async def selects_of_one_call() -> int:
        statements.clear()
        event.listen(db_connection.sync_connection, "before_cursor_execute", record)
        try:
            response = await client.get(latest_url(target), headers=owner.headers)
        finally:
            event.remove(db_connection.sync_connection, "before_cursor_execute", record)
        assert response.status_code == 200, response.text
        return len(statements)

    await selects_of_one_call()  # the first request of a user also loads their roles (cached)
    with_one = await selects_of_one_call()
    for n in range(6):
        more = ServiceFactory.build(project=target.project, name=f"more-{n}")
        await persist(db_session, more)
        await _deployment(
            db_session, Target(target.project, target.environment, more), DeploymentStatus.ACTIVE
        )
    assert await selects_of_one_call() == with_one


async def test_latest_needs_an_environment_of_the_project(
    client: httpx.AsyncClient, owner: Caller, make_target: Any
) -> None:
    target = await make_target(owner)
    other = await make_target(owner)
    missing = await client.get(
        f"{API}/projects/{target.project.id}/deployments/latest", headers=owner.headers
    )
    assert_invalid(missing, "environment_id")
    wrong = await client.get(latest_url(target, other.environment.id), headers=owner.headers)
    assert_invalid(wrong, "environment_id")
    unknown = await client.get(latest_url(target, uuid.uuid4()), headers=owner.headers)
    assert_problem(unknown, 404)
    malformed = latest_url(target).replace(str(target.environment.id), "nope")
    assert_invalid(await client.get(malformed, headers=owner.headers), "environment_id")


async def test_latest_is_for_members_of_the_workspace_only(
    client: httpx.AsyncClient,
    owner: Caller,
    make_caller: MakeCaller,
    make_target: Any,
    db_session: AsyncSession,
    settings: Settings,
) -> None:
    target = await make_target(owner)
    await _deployment(db_session, target, DeploymentStatus.ACTIVE)
    member = await make_caller(role=Role.MEMBER, workspace=owner.workspace)
    assert (await client.get(latest_url(target), headers=member.headers)).status_code == 200
    stranger = await make_caller()
    refused = await client.get(latest_url(target), headers=stranger.headers)
    body = assert_problem(refused, 404)
    assert str(target.service.id) not in refused.text and body["status"] == 404
    theirs = await make_target(stranger)
    # Their own project with our environment: our environment is not theirs to see.
    mixed = await client.get(latest_url(theirs, target.environment.id), headers=stranger.headers)
    assert_problem(mixed, 404)
    other = await make_target(owner)
    headers = await project_token(db_session, settings, owner.user, other.project)
    assert_problem(await client.get(latest_url(target), headers=headers), 404)
    assert (await client.get(latest_url(other), headers=headers)).status_code == 200
    assert_problem(await client.get(latest_url(target)), 401)


# Operations -----------------------------------------------------------------------------------


async def test_cancel_a_queued_deployment(
    client: httpx.AsyncClient,
    owner: Caller,
    make_target: Any,
    sent: Sent,
    db_session: AsyncSession,
    redis: Redis,
) -> None:
    target = await make_target(owner)
    deployment = await _deployment(db_session, target, DeploymentStatus.BUILDING)
    response = await client.post(f"{API}/deployments/{deployment.id}/cancel", headers=owner.headers)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "CANCELLED"
    assert await redis.get(cancel_key(deployment.id)) == "1"
    assert sent.named("deployments.cancel") == [[str(deployment.id)]]
    again = await client.post(f"{API}/deployments/{deployment.id}/cancel", headers=owner.headers)
    assert_problem(again, 409)


async def test_cancel_a_live_deployment_is_refused(
    client: httpx.AsyncClient, owner: Caller, make_target: Any, db_session: AsyncSession
) -> None:
    target = await make_target(owner)
    deployment = await _deployment(db_session, target, DeploymentStatus.ACTIVE)
    response = await client.post(f"{API}/deployments/{deployment.id}/cancel", headers=owner.headers)
    assert_problem(response, 409)


async def test_rollback_reuses_the_build_and_skips_building(
    client: httpx.AsyncClient,
    owner: Caller,
    make_target: Any,
    sent: Sent,
    db_session: AsyncSession,
    tmp_path: Path,
) -> None:
    target = await make_target(owner)
    build = await _build(db_session, target, fake_artifact(tmp_path))
    old = await _deployment(
        db_session, target, DeploymentStatus.REMOVED, build=build, commit_sha="abc123"
    )
    response = await client.post(f"{API}/deployments/{old.id}/rollback", headers=owner.headers)
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["build_id"] == str(build.id) and body["trigger"] == "rollback"
    assert body["source_deployment_id"] == str(old.id) and body["commit_sha"] == "abc123"
    assert sent.named("deployments.deploy") == [[body["id"]]]
    assert sent.named("deployments.build") == []

    restart = await client.post(f"{API}/deployments/{old.id}/restart", headers=owner.headers)
    assert restart.status_code == 202
    assert restart.json()["trigger"] == "restart"


async def test_rollback_of_a_collected_build_is_a_409(
    client: httpx.AsyncClient,
    owner: Caller,
    make_target: Any,
    db_session: AsyncSession,
    tmp_path: Path,
    sent: Sent,
) -> None:
    target = await make_target(owner)
    collected = await _build(db_session, target, None)
    failed = await _build(db_session, target, fake_artifact(tmp_path), status=BuildStatus.FAILED)
    for build in (collected, failed):
        old = await _deployment(db_session, target, DeploymentStatus.REMOVED, build=build)
        for action in ("rollback", "restart"):
            response = await client.post(
                f"{API}/deployments/{old.id}/{action}", headers=owner.headers
            )
            assert_problem(response, 409)
    assert sent.tasks == []


async def test_redeploy_rebuilds_the_same_source(
    client: httpx.AsyncClient,
    owner: Caller,
    make_target: Any,
    sent: Sent,
    db_session: AsyncSession,
    tmp_path: Path,
) -> None:
    target = await make_target(owner)
    source = tmp_path / "kept.tar.gz"
    source.write_bytes(tarball(SITE))
    build = await _build(db_session, target, None, source_path=str(source))
    old = await _deployment(db_session, target, DeploymentStatus.ACTIVE, build=build)
    response = await client.post(f"{API}/deployments/{old.id}/redeploy", headers=owner.headers)
    assert response.status_code == 202, response.text
    new_build = await fresh(db_session, Build, response.json()["build_id"])
    assert new_build.id != build.id and new_build.source_path == str(source)
    assert sent.named("deployments.build") == [[response.json()["id"]]]

    source.unlink()
    gone = await client.post(f"{API}/deployments/{old.id}/redeploy", headers=owner.headers)
    assert_problem(gone, 409)


async def test_delete_removes_a_live_deployment(
    client: httpx.AsyncClient,
    owner: Caller,
    make_target: Any,
    sent: Sent,
    db_session: AsyncSession,
) -> None:
    target = await make_target(owner)
    deployment = await _deployment(db_session, target, DeploymentStatus.ACTIVE)
    response = await client.delete(f"{API}/deployments/{deployment.id}", headers=owner.headers)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "REMOVED"
    assert sent.named("deployments.remove") == [[str(deployment.id)]]


# Access ---------------------------------------------------------------------------------------


async def test_every_role_may_deploy_and_read(
    client: httpx.AsyncClient,
    owner: Caller,
    make_caller: MakeCaller,
    make_target: Any,
    sent: Sent,
) -> None:
    target = await make_target(owner)
    member = await make_caller(role=Role.MEMBER, workspace=owner.workspace)
    response = await client.post(
        deployments_url(target),
        json={"environment_id": str(target.environment.id)},
        headers=member.headers,
    )
    assert response.status_code == 202
    listed = await client.get(deployments_url(target), headers=member.headers)
    assert listed.json()["total"] == 1


async def test_another_workspace_sees_nothing(
    client: httpx.AsyncClient,
    owner: Caller,
    make_caller: MakeCaller,
    make_target: Any,
    sent: Sent,
    db_session: AsyncSession,
    tmp_path: Path,
) -> None:
    target = await make_target(owner)
    build = await _build(db_session, target, fake_artifact(tmp_path))
    deployment = await _deployment(db_session, target, DeploymentStatus.ACTIVE, build=build)
    domain = Domain(
        service_id=target.service.id,
        environment_id=target.environment.id,
        hostname=f"d{uuid.uuid4().hex[:6]}.example.com",
        kind=DomainKind.CUSTOM,
    )
    await persist(db_session, domain)
    stranger = await make_caller()
    theirs = await make_target(stranger)
    env = {"environment_id": str(target.environment.id)}
    calls = [
        ("POST", deployments_url(target), env),
        ("GET", deployments_url(target), None),
        ("POST", uploads_url(target), None),
        ("GET", f"{API}/deployments/{deployment.id}", None),
        ("POST", f"{API}/deployments/{deployment.id}/cancel", None),
        ("POST", f"{API}/deployments/{deployment.id}/redeploy", None),
        ("POST", f"{API}/deployments/{deployment.id}/rollback", None),
        ("POST", f"{API}/deployments/{deployment.id}/restart", None),
        ("DELETE", f"{API}/deployments/{deployment.id}", None),
        ("GET", f"{API}/services/{target.service.id}/domains", None),
        ("POST", f"{API}/services/{target.service.id}/domains", env),
        ("DELETE", f"{API}/domains/{domain.id}", None),
        # Their own service, with our environment: the environment is not theirs to see.
        ("POST", deployments_url(theirs), env),
    ]
    for method, url, body in calls:
        response = await client.request(method, url, json=body, headers=stranger.headers)
        assert_problem(response, 404)
    assert sent.tasks == []


async def test_project_scoped_token_sees_only_its_project(
    client: httpx.AsyncClient,
    owner: Caller,
    make_target: Any,
    sent: Sent,
    db_session: AsyncSession,
    settings: Settings,
) -> None:
    target = await make_target(owner)
    other = await make_target(owner)
    headers = await project_token(db_session, settings, owner.user, other.project)
    response = await client.get(deployments_url(target), headers=headers)
    assert_problem(response, 404)
    allowed = await client.get(deployments_url(other), headers=headers)
    assert allowed.status_code == 200


# Domains ----------------------------------------------------------------------------------------


async def test_domains_generated_and_custom(
    client: httpx.AsyncClient,
    owner: Caller,
    make_target: Any,
    sent: Sent,
    db_session: AsyncSession,
) -> None:
    target = await make_target(owner, project_name="shop", service_name="api")
    staging = EnvironmentFactory.build(project=target.project, name="staging")
    await persist(db_session, staging)
    url = f"{API}/services/{target.service.id}/domains"
    generated = await client.post(
        url, json={"environment_id": str(staging.id)}, headers=owner.headers
    )
    assert generated.status_code == 201, generated.text
    assert generated.json()["hostname"] == "api-shop-staging.localhost"
    assert generated.json()["kind"] == "generated"
    again = await client.post(url, json={"environment_id": str(staging.id)}, headers=owner.headers)
    assert again.json()["id"] == generated.json()["id"]  # one generated domain per environment

    name = f"www-{uuid.uuid4().hex[:6]}.Example.COM."
    custom = await client.post(
        url, json={"environment_id": str(staging.id), "hostname": name}, headers=owner.headers
    )
    assert custom.status_code == 201, custom.text
    assert custom.json()["hostname"] == name.lower().rstrip(".")
    assert sent.named("deployments.sync_route")[-1] == [str(target.service.id), str(staging.id)]

    duplicate = await client.post(
        url,
        json={"environment_id": str(target.environment.id), "hostname": name},
        headers=owner.headers,
    )
    assert_problem(duplicate, 409)
    for bad in ("not a host", "exa`mple.com", "localhost", "10.0.0.1", "-x.example.com"):
        response = await client.post(
            url, json={"environment_id": str(staging.id), "hostname": bad}, headers=owner.headers
        )
        assert_invalid(response, "hostname")

    listed = await client.get(f"{url}?environment_id={staging.id}", headers=owner.headers)
    assert {d["hostname"] for d in listed.json()["items"]} == {
        "api-shop-staging.localhost",
        name.lower().rstrip("."),
    }
    deleted = await client.delete(f"{API}/domains/{custom.json()['id']}", headers=owner.headers)
    assert deleted.status_code == 204
    assert await fresh(db_session, Domain, custom.json()["id"]) is None


async def test_generated_hostnames_never_collide(
    client: httpx.AsyncClient,
    owner: Caller,
    make_caller: MakeCaller,
    make_target: Any,
    sent: Sent,
) -> None:
    project_name = f"p{uuid.uuid4().hex[:6]}"
    mine = await make_target(owner, project_name=project_name)
    stranger = await make_caller()
    theirs = await make_target(stranger, project_name=project_name)
    hostnames = []
    for caller, target in ((owner, mine), (stranger, theirs)):
        response = await client.post(
            f"{API}/services/{target.service.id}/domains",
            json={"environment_id": str(target.environment.id)},
            headers=caller.headers,
        )
        hostnames.append(response.json()["hostname"])
    assert hostnames[0] == f"web-{project_name}.localhost"
    assert hostnames[1] != hostnames[0] and hostnames[1].startswith(f"web-{project_name}-")


async def test_members_cannot_manage_domains(
    client: httpx.AsyncClient,
    owner: Caller,
    make_caller: MakeCaller,
    make_target: Any,
    sent: Sent,
) -> None:
    target = await make_target(owner)
    member = await make_caller(role=Role.MEMBER, workspace=owner.workspace)
    url = f"{API}/services/{target.service.id}/domains"
    response = await client.post(
        url, json={"environment_id": str(target.environment.id)}, headers=member.headers
    )
    assert_problem(response, 403)
    listed = await client.get(url, headers=member.headers)
    assert listed.status_code == 200
