"""Deploying for real: the sample apps go from an upload (or a git push) to an answer through
Traefik, on the platform ``caboosed up`` runs (real Redis, PM2, Traefik, Celery, API).

Each sample deploys into a project of its own (dependency caches are per project), through the
public API with a user's token, exactly as the CLI does; apps are fetched through Traefik's web
entrypoint with their generated hostname as ``Host``. What a user relies on is checked: every
sample answers; a failing build, an app that never gets healthy and one that crashes end FAILED
with a readable reason while the previous deployment keeps serving; an app that crashes later
ends CRASHED; a redeploy under load drops no request; a rollback runs the old build without
rebuilding; cancel kills a running build; the reaper ends a deployment whose worker was killed.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import signal
import subprocess
import tarfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from tests.e2e.conftest import Platform

pytestmark = pytest.mark.e2e

APPS = Path(__file__).resolve().parents[1] / "fixtures" / "apps"
PASSWORD = "correct horse battery staple 42"
ENDED = {"FAILED", "CRASHED", "CANCELLED", "REMOVED"}
DEPLOY_TIMEOUT_S = 300.0


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)  # poll interval, bounded by the deadline


def tarball(directory: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path in sorted(directory.rglob("*")):
            archive.add(path, arcname=str(path.relative_to(directory)), recursive=False)
    return buffer.getvalue()


@dataclass
class Target:
    project_id: str
    environment_id: str
    service_id: str


class Api:
    """The public API through Traefik, as one signed-in user."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.http = platform.client()
        credentials = {"email": f"deploys-{uuid.uuid4().hex[:8]}@example.com", "password": PASSWORD}
        assert self.http.post("/api/v1/auth/register", json=credentials).status_code == 201
        token = self.http.post("/api/v1/auth/login", json=credentials).json()["access_token"]
        self.http.headers["Authorization"] = f"Bearer {token}"
        self.workspace = self.http.get("/api/v1/me").json()["workspaces"][0]["id"]

    def call(self, method: str, path: str, *, expect: int | None = None, **kw: Any) -> Any:
        response = self.http.request(method, f"/api/v1{path}", **kw)
        if expect is not None:
            assert response.status_code == expect, f"{method} {path}: {response.text}"
        else:
            assert response.status_code < 300, f"{method} {path}: {response.text}"
        return response.json() if response.content else None

    def target(self, name: str, **settings: Any) -> Target:
        project = self.call(
            "POST",
            f"/workspaces/{self.workspace}/projects",
            json={"name": f"{name}-{uuid.uuid4().hex[:6]}"},
        )
        service = self.call(
            "POST", f"/projects/{project['id']}/services", json={"name": "web", **settings}
        )
        return Target(project["id"], project["environments"][0]["id"], service["id"])

    def upload(self, target: Target, directory: Path) -> dict[str, Any]:
        deployment: dict[str, Any] = self.call(
            "POST",
            f"/services/{target.service_id}/uploads?environment_id={target.environment_id}",
            content=tarball(directory),
            headers={"Content-Type": "application/gzip"},
            expect=202,
        )
        return deployment

    def deployment(self, deployment_id: str) -> dict[str, Any]:
        found: dict[str, Any] = self.call("GET", f"/deployments/{deployment_id}")
        return found

    def wait(
        self, deployment_id: str, statuses: set[str], timeout_s: float = DEPLOY_TIMEOUT_S
    ) -> dict[str, Any]:
        """Wait until the deployment reaches one of ``statuses`` (or ends otherwise)."""
        seen: dict[str, Any] = {}

        def reached() -> bool:
            seen.update(self.deployment(deployment_id))
            return seen["status"] in statuses or seen["status"] in ENDED

        wait_for(reached, timeout_s, f"deployment {deployment_id} to be {statuses}")
        assert seen["status"] in statuses, (
            f"{seen['status']}: {seen['status_reason']}\n{self.log_text(deployment_id)}"
        )
        return seen

    def hostname(self, target: Target) -> str:
        domains = self.call("GET", f"/services/{target.service_id}/domains")
        return str(domains["items"][-1]["hostname"])

    def log_text(self, deployment_id: str) -> str:
        response = self.http.get(f"/api/v1/deployments/{deployment_id}/logs?limit=1000")
        if response.status_code != 200:
            return f"(logs unavailable: {response.status_code})"
        return "\n".join(item["line"] for item in response.json()["items"])

    def deploy(self, target: Target, directory: Path) -> dict[str, Any]:
        return self.wait(self.upload(target, directory)["id"], {"ACTIVE"})


@pytest.fixture(scope="module")
def api(platform: Platform) -> Iterator[Api]:
    client = Api(platform)
    yield client
    client.http.close()


def fetch(platform: Platform, hostname: str, path: str = "/") -> httpx.Response:
    return platform.request("GET", path, host=hostname, timeout=10)


def copy_app(tmp_path: Path, name: str) -> Path:
    dest = tmp_path / f"{name}-{uuid.uuid4().hex[:6]}"
    shutil.copytree(APPS / name, dest)
    return dest


def write_app(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)
    return directory


# The samples ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sample", "path", "expected"),
    [
        ("flask-gunicorn", "/", "hello from flask-gunicorn (v1)"),
        ("fastapi-uvicorn", "/", "hello from fastapi-uvicorn"),
        ("express", "/", "hello from express"),
        ("static-site", "/about", "hello from static-site"),  # SPA fallback to index.html
        ("procfile-app", "/", "hello from procfile-app"),
        ("railway-json", "/health", '{"status": "ok"}'),
    ],
)
def test_sample_apps_deploy_and_answer_through_traefik(
    platform: Platform, api: Api, tmp_path: Path, sample: str, path: str, expected: str
) -> None:
    target = api.target(sample)
    deployment = api.deploy(target, copy_app(tmp_path, sample))
    hostname = api.hostname(target)
    assert deployment["url"] == f"http://{hostname}:{platform.http_port}"
    [replica] = deployment["replicas"]
    assert set(replica) == {"index", "port", "status", "restarts", "pid"}
    assert replica["status"] == "online" and replica["pid"]
    response = fetch(platform, hostname, path)
    assert response.status_code == 200
    assert expected in response.text
    if sample == "railway-json":  # its preDeployCommand ran before the start
        assert "railway-json migrations applied" in api.log_text(deployment["id"])
    if sample == "procfile-app":  # the Procfile's release line is the pre-deploy command
        assert "procfile-app release step ran" in api.log_text(deployment["id"])


def test_failures_are_reported_and_the_live_deployment_keeps_serving(
    platform: Platform, api: Api, tmp_path: Path
) -> None:
    target = api.target("failures")
    live = api.deploy(target, copy_app(tmp_path, "static-site"))
    hostname = api.hostname(target)

    broken = api.wait(api.upload(target, copy_app(tmp_path, "failing-build"))["id"], {"FAILED"})
    assert "exit code 3" in broken["status_reason"]
    assert "something is wrong with the assets" in api.log_text(broken["id"])
    assert "hello from static-site" in fetch(platform, hostname).text

    unhealthy = api.wait(api.upload(target, copy_app(tmp_path, "never-healthy"))["id"], {"FAILED"})
    assert "not healthy after 10 s" in unhealthy["status_reason"]
    assert "HTTP 500" in unhealthy["status_reason"]
    assert "hello from static-site" in fetch(platform, hostname).text

    crashing = api.wait(api.upload(target, copy_app(tmp_path, "crashing"))["id"], {"FAILED"})
    assert "exit code 1" in crashing["status_reason"]
    assert "fatal error" in crashing["status_reason"]
    assert "hello from static-site" in fetch(platform, hostname).text
    assert api.deployment(live["id"])["status"] == "ACTIVE"


def test_an_app_that_crashes_after_going_live_ends_crashed(
    platform: Platform, api: Api, tmp_path: Path
) -> None:
    target = api.target("crash-later", restart_policy_type="NEVER")
    app = write_app(
        tmp_path / "crash-later",
        {
            "main.py": (
                "import os, threading, http.server\n"
                "threading.Timer(2.0, lambda: os._exit(7)).start()\n"
                "http.server.ThreadingHTTPServer(('0.0.0.0', int(os.environ['PORT'])),"
                " http.server.SimpleHTTPRequestHandler).serve_forever()\n"
            )
        },
    )
    deployment = api.deploy(target, app)
    wait_for(
        lambda: not psutil.pid_exists(deployment["replicas"][0]["pid"]), 30, "the app to crash"
    )
    result = platform.celery().send_task("deployments.reap").get(timeout=60)
    assert result["crashed"] >= 1
    crashed = api.deployment(deployment["id"])
    assert crashed["status"] == "CRASHED"
    assert "exit code 7" in crashed["status_reason"]


# Git ------------------------------------------------------------------------------------------


@dataclass
class GitServer:
    """A bare repository served over smart HTTP on loopback (dulwich's WSGI server)."""

    url: str
    bare: Path
    work: Path
    server: Any = field(repr=False)

    def commit(self, files: dict[str, str], message: str) -> str:
        write_app(self.work, files)
        env = {
            **os.environ,
            "GIT_AUTHOR_NAME": "Ada",
            "GIT_AUTHOR_EMAIL": "ada@example.com",
            "GIT_COMMITTER_NAME": "Ada",
            "GIT_COMMITTER_EMAIL": "ada@example.com",
        }
        for argv in (["git", "add", "-A"], ["git", "commit", "-q", "-m", message]):
            subprocess.run(argv, cwd=self.work, check=True, env=env, capture_output=True)
        subprocess.run(
            ["git", "push", "-q", str(self.bare), "main"],
            cwd=self.work,
            check=True,
            capture_output=True,
        )
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=self.work, check=True, capture_output=True, text=True
        )
        return out.stdout.strip()


@pytest.fixture
def git_server(tmp_path: Path) -> Iterator[GitServer]:
    from dulwich.repo import Repo
    from dulwich.server import BackendRepo, DictBackend
    from dulwich.web import (
        WSGIRequestHandlerLogger,
        WSGIServerLogger,
        make_server,
        make_wsgi_chain,
    )

    bare = tmp_path / "app.git"
    repositories: dict[str, BackendRepo] = {"/app.git": Repo.init_bare(str(bare), mkdir=True)}
    server = make_server(
        "127.0.0.1",
        0,
        make_wsgi_chain(DictBackend(repositories)),
        handler_class=WSGIRequestHandlerLogger,
        server_class=WSGIServerLogger,
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    work = tmp_path / "work"
    work.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=work, check=True)
    try:
        yield GitServer(f"http://127.0.0.1:{server.server_port}/app.git", bare, work, server)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


GIT_APP = """\
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("{text} " + os.environ.get("CABOOSE_GIT_COMMIT_SHA", "")).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


ThreadingHTTPServer(("0.0.0.0", int(os.environ["PORT"])), Handler).serve_forever()
"""


def test_git_deploy_from_a_repository_served_over_http(
    platform: Platform, api: Api, git_server: GitServer
) -> None:
    first = git_server.commit({"main.py": GIT_APP.format(text="first")}, "First version")
    second = git_server.commit({"main.py": GIT_APP.format(text="second")}, "Second version")
    target = api.target("git", repo_url=git_server.url, branch="main")

    head = api.wait(
        api.call(
            "POST",
            f"/services/{target.service_id}/deployments",
            json={"environment_id": target.environment_id},
            expect=202,
        )["id"],
        {"ACTIVE"},
    )
    assert head["commit_sha"] == second
    assert head["commit_message"].startswith("Second version")
    hostname = api.hostname(target)
    assert fetch(platform, hostname).text == f"second {second}"

    pinned = api.wait(
        api.call(
            "POST",
            f"/services/{target.service_id}/deployments",
            json={"environment_id": target.environment_id, "commit_sha": first[:12]},
            expect=202,
        )["id"],
        {"ACTIVE"},
    )
    assert pinned["commit_sha"] == first
    assert fetch(platform, hostname).text == f"first {first}"
    assert api.deployment(head["id"])["status"] == "REMOVED"


# Swaps, rollback, remove ------------------------------------------------------------------------


@dataclass
class Load:
    """Steady requests through Traefik (about 50/s), every failure kept."""

    platform: Platform
    hostname: str
    bodies: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def __enter__(self) -> Load:
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def _run(self) -> None:
        with self.platform.client(host=self.hostname, timeout=10) as client:
            while not self.stop.is_set():
                try:
                    response = client.get("/")
                    if response.status_code == 200:
                        self.bodies.append(response.text)
                    else:
                        self.failures.append(f"HTTP {response.status_code}")
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))
                self.stop.wait(0.02)  # the load's pace (~50 requests/s)

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(30)


def flask_version(tmp_path: Path, version: str) -> Path:
    app = copy_app(tmp_path, "flask-gunicorn")
    source = app / "app.py"
    source.write_text(
        source.read_text().replace(
            'VERSION = os.environ.get("APP_VERSION", "v1")', f"VERSION = {version!r}"
        )
    )
    return app


def test_redeploy_under_load_then_rollback_drop_nothing(
    platform: Platform, api: Api, tmp_path: Path
) -> None:
    target = api.target("swap")
    v1 = api.deploy(target, flask_version(tmp_path, "one"))
    hostname = api.hostname(target)
    assert "(one)" in fetch(platform, hostname).text

    with Load(platform, hostname) as load:
        wait_for(lambda: len(load.bodies) >= 20, 30, "traffic before the redeploy")
        v2 = api.deploy(target, flask_version(tmp_path, "two"))
        # Past the overlap: the old replicas are stopped while traffic continues.
        wait_for(lambda: api.deployment(v1["id"])["status"] == "REMOVED", 60, "v1 removed")
        old_pid = v1["replicas"][0]["pid"]
        wait_for(lambda: not psutil.pid_exists(old_pid), 60, "the old replica to stop")
        count = len(load.bodies)
        wait_for(lambda: len(load.bodies) >= count + 20, 30, "traffic after the swap")
    assert load.failures == [], load.failures[:5]
    versions = ["(two)" in body for body in load.bodies]
    assert versions[0] is False and versions[-1] is True
    assert all(versions[versions.index(True) :]), "answers went back to the old version"

    rolled = api.call("POST", f"/deployments/{v1['id']}/rollback", expect=202)
    assert rolled["build_id"] == v1["build_id"]
    rolled = api.wait(rolled["id"], {"ACTIVE"})
    assert "(one)" in fetch(platform, hostname).text
    assert "Extracted" not in api.log_text(rolled["id"])  # nothing was fetched or built
    assert api.deployment(v2["id"])["status"] == "REMOVED"

    restarted = api.wait(
        api.call("POST", f"/deployments/{rolled['id']}/restart", expect=202)["id"], {"ACTIVE"}
    )
    assert restarted["replicas"][0]["pid"] != rolled["replicas"][0]["pid"]
    assert "(one)" in fetch(platform, hostname).text

    removed = api.call("DELETE", f"/deployments/{restarted['id']}")
    assert removed["status"] == "REMOVED"
    wait_for(lambda: fetch(platform, hostname).status_code == 404, 30, "the route removed")
    pid = restarted["replicas"][0]["pid"]
    wait_for(lambda: not psutil.pid_exists(pid), 30, "the replica stopped")


def test_custom_domains_are_routed(platform: Platform, api: Api, tmp_path: Path) -> None:
    target = api.target("domains")
    api.deploy(target, copy_app(tmp_path, "static-site"))
    custom = f"www-{uuid.uuid4().hex[:6]}.example.test"
    domain = api.call(
        "POST",
        f"/services/{target.service_id}/domains",
        json={"environment_id": target.environment_id, "hostname": custom},
        expect=201,
    )
    wait_for(lambda: fetch(platform, custom).status_code == 200, 30, "the custom domain routed")
    assert "hello from static-site" in fetch(platform, custom).text
    api.call("DELETE", f"/domains/{domain['id']}", expect=204)
    wait_for(lambda: fetch(platform, custom).status_code == 404, 30, "the custom domain gone")
    assert fetch(platform, api.hostname(target)).status_code == 200


# Cancel and the reaper --------------------------------------------------------------------------


def slow_build(tmp_path: Path, marker: str) -> Path:
    """An app whose build command runs until killed (``sleep <marker>``, findable by its args)."""
    return write_app(
        tmp_path / f"slow-{marker}",
        {
            "main.py": "print('never started')\n",
            "railway.json": (
                '{"build": {"buildCommand": "sleep ' + marker + '"},'
                ' "deploy": {"startCommand": "python main.py"}}'
            ),
        },
    )


def build_processes(marker: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error):
            if process.info["cmdline"] == ["sleep", marker]:
                found.append(process)
    return found


@pytest.fixture
def marker() -> Iterator[str]:
    value = f"{600 + uuid.uuid4().int % 1000}.{uuid.uuid4().int % 1000:03d}"
    yield value
    for process in build_processes(value):  # whatever a killed worker left behind
        with contextlib.suppress(psutil.Error):
            process.kill()


def test_cancel_kills_a_running_build(
    platform: Platform, api: Api, tmp_path: Path, marker: str
) -> None:
    target = api.target("cancel")
    deployment = api.upload(target, slow_build(tmp_path, marker))
    wait_for(lambda: bool(build_processes(marker)), 120, "the build command to run")
    cancelled = api.call("POST", f"/deployments/{deployment['id']}/cancel")
    assert cancelled["status"] == "CANCELLED"
    wait_for(lambda: not build_processes(marker), 30, "the build to be killed")
    assert api.deployment(deployment["id"])["status"] == "CANCELLED"
    assert api.call("POST", f"/deployments/{deployment['id']}/cancel", expect=409)


def test_the_reaper_ends_a_deployment_whose_worker_was_killed(
    platform: Platform, api: Api, tmp_path: Path, marker: str
) -> None:
    target = api.target("reaper")
    deployment = api.upload(target, slow_build(tmp_path, marker))
    wait_for(lambda: bool(build_processes(marker)), 120, "the build command to run")
    assert api.deployment(deployment["id"])["status"] == "BUILDING"
    [step] = build_processes(marker)
    worker_process = step.parent()
    assert worker_process is not None
    worker_process.send_signal(signal.SIGKILL)  # the worker dies mid-build

    def reaped() -> bool:
        platform.celery().send_task("deployments.reap", kwargs={"stale_after_s": 6}).get(timeout=60)
        return bool(api.deployment(deployment["id"])["status"] == "FAILED")

    wait_for(reaped, 120, "the reaper to end the deployment")
    assert api.deployment(deployment["id"])["status_reason"] == "worker stopped responding"


def test_uploads_are_checked_before_anything_is_queued(
    platform: Platform, api: Api, tmp_path: Path
) -> None:
    target = api.target("refused")
    url = f"/services/{target.service_id}/uploads?environment_id={target.environment_id}"
    response = api.http.post(
        f"/api/v1{url}", content=b"not gzip", headers={"Content-Type": "application/gzip"}
    )
    assert response.status_code == 400
    evil = io.BytesIO()
    with tarfile.open(fileobj=evil, mode="w:gz") as archive:
        info = tarfile.TarInfo("../../escape.txt")
        info.size = 1
        archive.addfile(info, io.BytesIO(b"x"))
    response = api.http.post(
        f"/api/v1{url}", content=evil.getvalue(), headers={"Content-Type": "application/gzip"}
    )
    assert response.status_code == 400
    listed = api.call("GET", f"/services/{target.service_id}/deployments")
    assert listed["total"] == 0
