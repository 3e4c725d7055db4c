"""The PM2 bridge: the runtime's operations through one long-lived Node process, and the CLI
whenever the bridge cannot do them. Real PM2, its own daemon in a temporary home."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from caboose.deploys.pm2_bridge import BridgedPm2Runtime
from caboose.engine.runtime import ReplicaSpec, ReplicaState
from caboose.engine.runtime.ports import PortAllocator
from caboose.engine.sandbox import AppUser, current_user, ensure_app_user, is_privileged
from tests.engine.conftest import TEST_PROJECT_ID

REPO = Path(__file__).resolve().parents[3]
PM2_BIN = REPO / "node_modules" / ".bin" / "pm2"


@pytest.fixture
def root() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="caboose-bridge-"))
    path.chmod(0o711)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def runtime(root: Path) -> Iterator[BridgedPm2Runtime]:
    if not PM2_BIN.exists():
        pytest.skip(f"PM2 is not installed at {PM2_BIN}")
    made = BridgedPm2Runtime(PM2_BIN, root / "pm2", namespace="bridgetest")
    yield made
    made.close()
    pids: list[int] = []
    with contextlib.suppress(Exception):
        pids = [s.pid for s in made.status() if s.pid]
    daemon = made.daemon_pid()
    with contextlib.suppress(Exception):
        made.kill_daemon()
    for pid in [*pids, *([daemon] if daemon else [])]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def user() -> AppUser:
    return ensure_app_user(TEST_PROJECT_ID) if is_privileged() else current_user()


def spec(root: Path, user: AppUser, port: int) -> ReplicaSpec:
    name = f"b{uuid.uuid4().hex[:8]}-0"
    return ReplicaSpec(
        name=name,
        cwd=Path("/"),
        out_log=root / "logs" / f"{name}.out.log",
        err_log=root / "logs" / f"{name}.err.log",
        command="exec python3 -m http.server $PORT --bind 127.0.0.1",
        env={"PATH": "/usr/local/bin:/usr/bin:/bin", "SECRET": "do-not-leak"},
        port=port,
        user=user,
        kill_timeout_s=2,
    )


def test_start_status_delete_through_the_bridge(
    runtime: BridgedPm2Runtime, root: Path, user: AppUser
) -> None:
    replica = spec(root, user, PortAllocator().allocate())
    [started] = runtime.start([replica])
    assert started.name == replica.name and started.pid and started.state is ReplicaState.ONLINE
    [listed] = runtime.status([replica.name])
    assert listed.pid == started.pid
    assert runtime.bridge_failures == 0
    # What crosses the pipe leaves the apps' environments out.
    assert all("env" not in p.get("pm2_env", {}) for p in runtime.jlist())
    assert "do-not-leak" not in repr(runtime.jlist())
    started_at = time.monotonic()
    runtime.delete([replica.name, "not-there"])
    assert time.monotonic() - started_at < 10
    assert runtime.status([replica.name]) == []
    assert runtime.bridge_failures == 0


def test_a_broken_bridge_falls_back_to_the_cli(
    runtime: BridgedPm2Runtime, root: Path, user: AppUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runtime.bridge, "_module_dir", lambda: root / "no-such-module")
    replica = spec(root, user, PortAllocator().allocate())
    [started] = runtime.start([replica])
    assert started.state is ReplicaState.ONLINE
    assert runtime.bridge_failures >= 1
    runtime.delete([replica.name])
    assert runtime.status([replica.name]) == []


def test_a_restarted_daemon_gets_a_new_bridge(
    runtime: BridgedPm2Runtime, root: Path, user: AppUser
) -> None:
    assert runtime.status() == []
    first_daemon = runtime.daemon_pid()
    assert first_daemon is not None
    runtime.kill_daemon()  # the CLI kills the daemon under the bridge
    replica = spec(root, user, PortAllocator().allocate())
    [started] = runtime.start([replica])  # a new daemon, through a new bridge
    assert started.state is ReplicaState.ONLINE
    assert runtime.daemon_pid() not in (None, first_daemon)
    assert runtime.bridge_failures == 0
    runtime.delete([replica.name])
