"""The deploy tasks' work (``deploys.executor``) against the real database and Redis, with a real
build and an in-process stand-in for PM2 and Traefik.

The stand-in runtime serves each "replica" from a thread on its allocated port, so health checks
and the whole swap run for real, in milliseconds. What is checked is what a user relies on: every
status transition is stored (row, event, published), the previous deployment becomes REMOVED
only when the new one is ACTIVE, redelivered tasks do nothing, a failed build leaves the live
deployment alone, the reaper ends abandoned deployments, reconciliation removes orphans and
restores lost processes, and garbage collection keeps the last five builds.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import io
import os
import tarfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis as sync_redis_module
from redis.asyncio import Redis
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from caboose.config import Settings
from caboose.core.keys import platform_keys
from caboose.deploys import actions, executor
from caboose.deploys.actions import Outbox
from caboose.deploys.executor import WorkerContext
from caboose.deploys.handles import EngineHandles
from caboose.engine.build.artifacts import BuildResult, write_manifest
from caboose.engine.routing import Route
from caboose.engine.routing.traefik import render_route_config
from caboose.engine.runtime import ReplicaSpec, ReplicaState, ReplicaStatus
from caboose.engine.runtime.ports import PortAllocator
from caboose.engine.sandbox import remove_app_user
from caboose.engine.types import BuildPlan
from caboose.logs.events import read_events
from caboose.logs.store import decode_entries, stream_key
from caboose.models import (
    Build,
    BuildStatus,
    Deployment,
    DeploymentEvent,
    DeploymentStatus,
    Environment,
    Project,
    Service,
)
from caboose.models.base import utcnow
from caboose.paths import PlatformPaths
from tests.conftest import Caller
from tests.factories import EnvironmentFactory, ProjectFactory, ServiceFactory, persist


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = self.server.body  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@dataclass
class FakeRuntime:
    """PM2's interface, with each replica an HTTP server thread on its port."""

    servers: dict[str, http.server.ThreadingHTTPServer] = field(default_factory=dict)
    states: dict[str, ReplicaStatus] = field(default_factory=dict)
    calls: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)

    def start(self, specs: Sequence[ReplicaSpec]) -> list[ReplicaStatus]:
        self.calls.append(("start", tuple(s.name for s in specs)))
        for spec in specs:
            self._kill(spec.name)
            assert spec.port is not None
            server = http.server.ThreadingHTTPServer(("127.0.0.1", spec.port), _Handler)
            server.body = spec.name.encode()  # type: ignore[attr-defined]
            threading.Thread(target=server.serve_forever, daemon=True).start()
            self.servers[spec.name] = server
            self.states[spec.name] = self._status(spec.name, ReplicaState.ONLINE, os.getpid())
        return [self.states[s.name] for s in specs]

    def stop(self, names: Sequence[str]) -> None:
        self.delete(names)

    def delete(self, names: Sequence[str]) -> None:
        self.calls.append(("delete", tuple(names)))
        for name in names:
            self._kill(name)
            self.states.pop(name, None)

    def status(
        self, names: Sequence[str] | None = None, *, prefix: str | None = None
    ) -> list[ReplicaStatus]:
        if names is not None:
            return [self.states[n] for n in names if n in self.states]
        return [s for n, s in self.states.items() if prefix is None or n.startswith(prefix)]

    def crash(self, name: str) -> None:
        self._kill(name)
        self.states[name] = replace(
            self._status(name, ReplicaState.ERRORED, None), exit_code=1, restarts=10
        )

    def orphan(self, name: str) -> None:
        self.states[name] = self._status(name, ReplicaState.ONLINE, os.getpid())

    def _kill(self, name: str) -> None:
        server = self.servers.pop(name, None)
        if server is not None:
            server.shutdown()
            server.server_close()

    @staticmethod
    def _status(name: str, state: ReplicaState, pid: int | None) -> ReplicaStatus:
        return ReplicaStatus(
            name=name,
            state=state,
            pid=pid,
            restarts=0,
            unstable_restarts=0,
            cpu_percent=0.0,
            memory_bytes=0,
            uptime_s=0.0,
            exit_code=None,
            raw_status=str(state),
        )


@dataclass
class FakeRouter:
    routes: dict[str, Route] = field(default_factory=dict)

    def apply(self, route: Route) -> None:
        self.routes[route.name] = route

    def remove(self, name: str) -> None:
        self.routes.pop(name, None)

    def list_routes(self) -> list[str]:
        return sorted(self.routes)

    def read_route(self, name: str) -> dict[str, Any] | None:
        route = self.routes.get(name)
        return render_route_config(route) if route else None

    def wait_applied(self, name: str, servers: Sequence[str], timeout_s: float = 10.0) -> float:
        assert set(self.routes[name].servers) == set(servers)
        return 0.0


@dataclass
class Sent:
    tasks: list[tuple[str, list[str]]] = field(default_factory=list)

    def __call__(self, name: str, args: list[str], task_id: str) -> None:
        self.tasks.append((name, args))


@dataclass
class World:
    ctx: WorkerContext
    runtime: FakeRuntime
    router: FakeRouter
    sent: Sent
    session: AsyncSession
    redis: Redis
    service: Service
    environment: Environment
    project: Project
    root: Path

    async def upload(self, files: dict[str, str]) -> Deployment:
        archive = self.root / f"{uuid.uuid4().hex}.tar.gz"
        archive.write_bytes(tarball(files))
        outbox = Outbox()
        deployment = await actions.deploy_upload(
            self.session,
            outbox,
            service=self.service,
            environment=self.environment,
            upload_path=archive,
            base_domain="localhost",
        )
        await self.session.commit()
        await outbox.flush(self.redis, self.sent)
        return deployment

    async def fresh(self, deployment_id: uuid.UUID | str) -> Deployment:
        found = await self.session.get(
            Deployment, uuid.UUID(str(deployment_id)), populate_existing=True
        )
        assert found is not None
        return found

    async def statuses(self, deployment_id: uuid.UUID) -> list[str]:
        rows = await self.session.scalars(
            select(DeploymentEvent.status)
            .where(DeploymentEvent.deployment_id == deployment_id)
            .order_by(DeploymentEvent.created_at)
        )
        return [str(s) for s in rows.all()]

    async def ship(self, deployment: Deployment) -> Deployment:
        """What the worker does with a new deployment: build, then deploy."""
        assert await executor.run_build(self.ctx, str(deployment.id)) == "built"
        assert ("deployments.deploy", [str(deployment.id)]) in self.sent.tasks
        await executor.run_deploy(self.ctx, str(deployment.id))
        return await self.fresh(deployment.id)


def tarball(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = int(time.time())
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def site(version: str) -> dict[str, str]:
    return {"index.html": f"<h1>{version}</h1>\n"}


@pytest.fixture
async def world(
    db_connection: AsyncConnection,
    db_session: AsyncSession,
    redis: Redis,
    redis_url: str,
    settings: Settings,
    owner: Caller,
    tmp_path: Path,
) -> AsyncIterator[World]:
    root = tmp_path / "data"
    root.mkdir()
    root.chmod(0o711)
    paths = PlatformPaths(root)
    paths.ensure()
    lock = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def sessions() -> AsyncIterator[AsyncSession]:
        # The test's connection, one user at a time (production sessions have their own).
        async with lock:
            session = AsyncSession(
                bind=db_connection,
                expire_on_commit=False,
                autoflush=False,
                join_transaction_mode="create_savepoint",
            )
            try:
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                raise
            finally:
                await session.close()

    runtime, router, sent = FakeRuntime(), FakeRouter(), Sent()
    client = sync_redis_module.Redis.from_url(redis_url, decode_responses=True)
    ctx = WorkerContext(
        settings=settings,
        sessions=sessions,
        redis=redis,
        sync_redis=client,
        redis_url=redis_url,
        archive_root=tmp_path / "archive",
        handles=EngineHandles(
            paths=paths,
            runtime=runtime,
            router=router,
            ports=PortAllocator(lock_dir=paths.port_locks_dir),
        ),
        sender=sent,
        keys=platform_keys(settings),
        heartbeat_interval_s=0.5,
    )
    project = ProjectFactory.build(tenant=owner.workspace, name=f"p{uuid.uuid4().hex[:8]}")
    environment = EnvironmentFactory.build(project=project, name="production")
    service = ServiceFactory.build(project=project, name="site", repo_url=None, overlap_seconds=0)
    await persist(db_session, project, environment, service)
    try:
        yield World(
            ctx, runtime, router, sent, db_session, redis, service, environment, project, root
        )
    finally:
        runtime.delete(list(runtime.states))
        client.close()
        remove_app_user(str(project.id))


async def test_a_deployment_goes_live_and_replaces_the_previous_one(world: World) -> None:
    first = await world.ship(await world.upload(site("v1")))
    assert first.status == DeploymentStatus.ACTIVE, first.status_reason
    assert first.url == f"http://site-{world.project.name}.localhost:8080"
    assert first.started_at and first.finished_at and first.heartbeat_at
    [replica] = first.replicas
    assert set(replica) == {"index", "name", "port", "pid", "status", "restarts"}
    assert replica["status"] == "online"
    assert await world.statuses(first.id) == ["BUILDING", "DEPLOYING", "ACTIVE"]
    route = world.router.routes[f"svc-{world.service.id.hex}-{world.environment.id.hex}"]
    assert route.hostnames == (f"site-{world.project.name}.localhost",)
    assert route.servers == (f"http://127.0.0.1:{replica['port']}",)
    build = await world.session.get(Build, first.build_id, populate_existing=True)
    assert build is not None and build.status == BuildStatus.SUCCEEDED
    assert build.provider == "static" and build.plan and build.artifact_path
    assert build.started_at and build.finished_at

    second = await world.ship(await world.upload(site("v2")))
    assert second.status == DeploymentStatus.ACTIVE
    first = await world.fresh(first.id)
    assert first.status == DeploymentStatus.REMOVED
    assert first.status_reason == f"replaced by deployment {second.id}"
    assert replica["name"] not in world.runtime.states  # retired
    assert ("delete", (replica["name"],)) in world.runtime.calls

    published = await read_events(world.redis, world.project.id)
    statuses = {(e["deployment_id"], e["status"]) for e in published}
    assert {(str(first.id), "REMOVED"), (str(second.id), "ACTIVE")} <= statuses
    raw = await world.redis.xrange(stream_key(str(second.id)))
    log = [fields["line"] for _, fields in decode_entries(raw)]
    assert any("Extracted" in line for line in log)  # the build log
    assert any("==> Live" in line for line in log)  # the deploy log

    # Redelivered tasks leave a finished deployment alone.
    assert (await executor.run_build(world.ctx, str(second.id))).startswith("skipped")
    assert (await executor.run_deploy(world.ctx, str(second.id))).startswith("skipped")


async def test_a_failed_build_leaves_the_live_deployment(world: World) -> None:
    live = await world.ship(await world.upload(site("v1")))
    broken = await world.upload({"README.md": "nothing to run here\n"})
    assert await executor.run_build(world.ctx, str(broken.id)) == "failed"
    broken = await world.fresh(broken.id)
    assert broken.status == DeploymentStatus.FAILED
    assert broken.status_reason and "looked for" in broken.status_reason.lower()
    build = await world.session.get(Build, broken.build_id, populate_existing=True)
    assert build is not None and build.status == BuildStatus.FAILED and build.error
    assert (await world.fresh(live.id)).status == DeploymentStatus.ACTIVE


async def test_cancelled_before_it_ran(world: World) -> None:
    deployment = await world.upload(site("v1"))
    outbox = Outbox()
    await actions.cancel_deployment(world.session, outbox, deployment)
    await world.session.commit()
    await outbox.flush(world.redis, world.sent)
    assert (await executor.run_build(world.ctx, str(deployment.id))).startswith("skipped")
    assert (await world.fresh(deployment.id)).status == DeploymentStatus.CANCELLED


async def test_rollback_and_restart_skip_the_build(world: World) -> None:
    first = await world.ship(await world.upload(site("v1")))
    await world.ship(await world.upload(site("v2")))
    outbox = Outbox()
    rollback = await actions.rollback(world.session, outbox, first, base_domain="localhost")
    await world.session.commit()
    await outbox.flush(world.redis, world.sent)
    assert world.sent.tasks[-1] == ("deployments.deploy", [str(rollback.id)])
    assert await executor.run_deploy(world.ctx, str(rollback.id)) == "active"
    rollback = await world.fresh(rollback.id)
    assert rollback.build_id == first.build_id and rollback.status == DeploymentStatus.ACTIVE
    assert await world.statuses(rollback.id) == ["DEPLOYING", "ACTIVE"]


async def test_remove_unroutes_and_stops(world: World) -> None:
    live = await world.ship(await world.upload(site("v1")))
    outbox = Outbox()
    removed = await actions.remove_deployment(world.session, outbox, live)
    await world.session.commit()
    await outbox.flush(world.redis, world.sent)
    assert removed.status == DeploymentStatus.REMOVED
    assert await executor.remove(world.ctx, str(live.id)) == "removed"
    assert world.router.routes == {}
    assert world.runtime.states == {}


async def test_reaper_ends_abandoned_and_crashed_deployments(world: World) -> None:
    live = await world.ship(await world.upload(site("v1")))
    abandoned = await world.upload(site("v2"))
    beating = await world.upload(site("v3"))  # (supersedes the other: statuses set below)
    for deployment, beat in ((abandoned, utcnow() - timedelta(minutes=5)), (beating, utcnow())):
        await world.session.execute(
            update(Deployment)
            .where(Deployment.id == deployment.id)
            .values(status=DeploymentStatus.BUILDING, heartbeat_at=beat)
        )
    await world.session.commit()

    result = await executor.reap(world.ctx)
    assert result["reaped"] == 1
    abandoned = await world.fresh(abandoned.id)
    assert abandoned.status == DeploymentStatus.FAILED
    assert abandoned.status_reason == "worker stopped responding"
    assert (await world.fresh(beating.id)).status == DeploymentStatus.BUILDING

    world.runtime.crash(live.replicas[0]["name"])
    result = await executor.reap(world.ctx)
    assert result["crashed"] == 1
    crashed = await world.fresh(live.id)
    assert crashed.status == DeploymentStatus.CRASHED
    assert crashed.status_reason and "exit code 1" in crashed.status_reason
    assert crashed.replicas[0]["status"] == "errored"


async def test_reconcile_restores_lost_processes_and_deletes_orphans(world: World) -> None:
    live = await world.ship(await world.upload(site("v1")))
    name = live.replicas[0]["name"]
    world.runtime.delete([name])  # PM2 lost it (daemon killed, machine rebooted)
    world.runtime.orphan("ghost-12345678-0")  # a process no deployment owns
    world.router.apply(Route("svc-stale", ("stale.localhost",), ("http://127.0.0.1:9",)))

    result = await executor.reconcile(world.ctx)
    assert result == {"restored": 1, "routes_fixed": 0, "orphans_deleted": 1, "routes_deleted": 1}
    assert set(world.runtime.states) == {name}
    restored = await world.fresh(live.id)
    assert restored.status == DeploymentStatus.ACTIVE
    port = restored.replicas[0]["port"]
    route = world.router.routes[f"svc-{world.service.id.hex}-{world.environment.id.hex}"]
    assert route.servers == (f"http://127.0.0.1:{port}",)

    # A route file that drifted is rewritten.
    world.router.apply(replace(route, servers=("http://127.0.0.1:9",)))
    assert (await executor.reconcile(world.ctx))["routes_fixed"] == 1
    assert world.router.routes[route.name].servers == (f"http://127.0.0.1:{port}",)


def _fake_artifact(directory: Path, finished_at: float) -> Path:
    directory.mkdir(parents=True)
    (directory / "app").mkdir()
    plan = BuildPlan(provider="static", runtime="static", runtime_version="1", static_dir=".")
    write_manifest(
        BuildResult(
            build_id=directory.name,
            artifact_dir=directory,
            app_dir=directory / "app",
            plan=plan,
            cache_key=None,
            cache_hit=False,
            path_prefix=(),
            finished_at=finished_at,
        )
    )
    return directory


async def test_garbage_collection_keeps_five_builds_and_those_in_use(world: World) -> None:
    paths = world.ctx.handles.paths
    builds: list[Build] = []
    now = time.time()
    for age in range(8):
        build = Build(
            service_id=world.service.id, status=BuildStatus.SUCCEEDED, source_type="upload"
        )
        world.session.add(build)
        await world.session.flush()
        artifact = _fake_artifact(
            paths.artifact_dir(world.service.id, build.id), finished_at=now - age * 60
        )
        build.artifact_path = str(artifact)
        builds.append(build)
    oldest = builds[-1]
    in_use = Deployment(
        service_id=world.service.id,
        environment_id=world.environment.id,
        build_id=oldest.id,
        status=DeploymentStatus.ACTIVE,
        replicas=[],
    )
    world.session.add(in_use)
    await world.session.commit()

    result = await executor.collect_garbage(world.ctx)
    assert result["builds"] == 2
    kept = {b.id for b in builds[:5]} | {oldest.id}
    for build in builds:
        fresh = await world.session.get(Build, build.id, populate_existing=True)
        assert fresh is not None
        assert (fresh.artifact_path is not None) == (build.id in kept)
        assert paths.artifact_dir(world.service.id, build.id).exists() == (build.id in kept)


async def test_redeploy_latest_rolls_out_what_runs(world: World) -> None:
    outbox = Outbox()
    nothing = await actions.redeploy_latest(
        world.session,
        outbox,
        service=world.service,
        environment=world.environment,
        base_domain="localhost",
    )
    assert nothing is None and outbox.tasks == []
    live = await world.ship(await world.upload(site("v1")))
    again = await actions.redeploy_latest(
        world.session,
        outbox,
        service=world.service,
        environment=world.environment,
        base_domain="localhost",
    )
    assert again is not None and again.source_deployment_id == live.id
    assert again.build_id != live.build_id and again.trigger == "redeploy"
    await world.session.commit()
    await outbox.flush(world.redis, world.sent)
    shipped = await world.ship(again)
    assert shipped.status == DeploymentStatus.ACTIVE
    assert (await world.fresh(live.id)).status == DeploymentStatus.REMOVED
