"""`caboosed up` end to end: the real processes, reached the way users reach them (Traefik)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

import httpx
import psutil
import pytest

from caboose.engine.runtime import ReplicaSpec, ReplicaState
from caboose.engine.sandbox import ensure_app_user, make_private_dir
from tests.e2e.conftest import Platform

pytestmark = pytest.mark.e2e

CHILDREN = {"redis", "traefik", "worker", "beat", "shipper", "api"}


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)  # poll interval, bounded by the deadline


def is_gone(pid: int) -> bool:
    """Exited. A zombie counts: reparented processes wait for an init that may never reap."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_health_and_readiness_through_traefik(platform: Platform) -> None:
    health = platform.request("GET", "/health")
    assert health.status_code == 200
    assert health.json() == {"status": "healthy"}

    ready = platform.request("GET", "/ready")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {"database": "ok", "redis": "ok"}}


def test_the_platform_host_reaches_the_api(platform: Platform) -> None:
    anonymous = platform.request("GET", "/api/v1/me")
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"].startswith("application/problem+json")

    email = "e2e-up@example.com"
    password = "correct horse battery staple 42"
    registered = platform.request(
        "POST", "/api/v1/auth/register", json={"email": email, "password": password}
    )
    assert registered.status_code == 201, registered.text
    login = platform.request(
        "POST", "/api/v1/auth/login", json={"email": email, "password": password}
    )
    assert login.status_code == 200, login.text
    token = login.json()["access_token"]
    me = platform.request("GET", "/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200
    assert me.json()["email"] == email


def test_only_the_platform_host_is_routed(platform: Platform) -> None:
    assert platform.request("GET", "/health", host="nobody.localhost").status_code == 404
    # The API itself listens on loopback only, at the port it was given.
    assert httpx.get(f"{platform.api_url}/health", timeout=10).status_code == 200


def test_a_task_round_trips_through_the_worker(platform: Platform) -> None:
    result = platform.celery().send_task("platform.ping")
    assert result.get(timeout=60) == "pong"


def test_a_second_up_on_the_same_data_dir_is_refused(platform: Platform) -> None:
    second = platform.caboosed("up", "--http-host", "127.0.0.1", timeout=60)
    assert second.returncode == 1
    assert "already running on this data dir" in second.stderr
    assert f"pid {platform.process.pid}" in second.stderr
    # The first one did not notice.
    assert platform.process.poll() is None
    assert platform.request("GET", "/health").status_code == 200


def test_a_killed_worker_is_restarted(platform: Platform) -> None:
    killed = platform.children()["worker"]
    os.kill(killed, signal.SIGKILL)
    wait_for(
        lambda: platform.children().get("worker") not in (None, killed),
        timeout_s=30,
        what="the worker's restart",
    )
    assert "worker exited unexpectedly (killed by SIGKILL)" in platform.output()
    # The new worker consumes: a task sent now is answered.
    assert platform.celery().send_task("platform.ping").get(timeout=60) == "pong"


def test_sigterm_stops_every_child_while_pm2_and_its_apps_keep_running(
    launch_platform: Callable[[], Platform],
) -> None:
    platform = launch_platform()
    pm2 = platform.pm2()
    daemon = pm2.daemon_pid()
    assert daemon is not None
    user = ensure_app_user("caboose-e2e-up")  # apps never run as root
    app_dir = make_private_dir(platform.root / "app", user)
    pm2.start(
        [
            ReplicaSpec(
                name="e2e-sleeper",
                cwd=app_dir,
                command="sleep 600",
                out_log=app_dir / "out.log",
                err_log=app_dir / "err.log",
                user=user,
            )
        ]
    )
    children = platform.children()
    assert set(children) == CHILDREN
    # Every process of the platform: the children and what they started (Celery's pool).
    family = {
        process.pid
        for pid in children.values()
        for process in (psutil.Process(pid), *psutil.Process(pid).children(recursive=True))
    }

    assert platform.stop() == 0

    assert [pid for pid in family if not is_gone(pid)] == []
    assert "Caboose stopped." in platform.output()
    # Nothing else mentions the data dir except the PM2 daemon and the app it runs.
    keep = {daemon, *(p.pid for p in psutil.Process(daemon).children(recursive=True))}
    marker = str(platform.data_dir)
    leftovers = []
    for process in psutil.process_iter(["pid", "cmdline", "status"]):
        if process.pid in keep or process.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        if any(marker in part for part in process.info["cmdline"] or ()):
            leftovers.append((process.pid, process.info["cmdline"]))
    assert leftovers == []
    assert pm2.daemon_pid() == daemon
    statuses = pm2.status(["e2e-sleeper"])
    assert [s.state for s in statuses] == [ReplicaState.ONLINE]
