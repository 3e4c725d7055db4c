"""The PM2 runtime: ecosystem rendering (pure), and replicas run by a real PM2 daemon.

The end-to-end tests start their own daemon in a temporary ``PM2_HOME`` and kill it (with
everything it runs) at the end, whatever happened. When the tests run as root, apps run as a
throwaway project user, exactly as deployed apps do.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from caboose.engine.runtime import (
    ProcessManagerError,
    ReplicaSpec,
    ReplicaState,
    ReplicaStatus,
    RestartPolicy,
    Runtime,
    StaticSite,
    is_crash_looping,
)
from caboose.engine.runtime.pm2 import (
    Pm2Runtime,
    parse_jlist,
    parse_mini_list,
    render_app,
    status_from_jlist_entry,
)
from caboose.engine.runtime.ports import PortAllocator, is_port_free
from caboose.engine.sandbox import (
    AppUser,
    current_user,
    ensure_app_user,
    is_privileged,
    make_private_dir,
    remove_app_user,
)

REPO = Path(__file__).resolve().parents[3]
PM2_BIN = REPO / "node_modules" / ".bin" / "pm2"
APP_PATH = "/usr/local/bin:/usr/bin:/bin"

APP = r"""
import json, os, signal, http.server

def on_term(signum, frame):
    marker = os.environ.get("TERM_MARKER")
    if marker:
        with open(marker, "w") as fh:
            fh.write("TERM")
    os._exit(0)

signal.signal(signal.SIGTERM, on_term)

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_GET(self):
        if self.path == "/env":
            body = json.dumps(dict(os.environ))
        elif self.path == "/whoami":
            body = json.dumps({"uid": os.getuid(), "gid": os.getgid(), "groups": os.getgroups()})
        else:
            body = os.environ.get("APP_VERSION", "v0")
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass

http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
"""


# -- pure: the ecosystem document ---------------------------------------------------------------


def _spec(**overrides: Any) -> ReplicaSpec:
    values: dict[str, Any] = {
        "name": "web-abc-0",
        "cwd": Path("/srv/app"),
        "out_log": Path("/logs/web-abc-0.out.log"),
        "err_log": Path("/logs/web-abc-0.err.log"),
        "command": "gunicorn app:app --bind 0.0.0.0:$PORT",
        "env": {"PATH": APP_PATH, "SECRET_KEY": "s3cret"},
        "port": 4321,
    }
    values.update(overrides)
    return ReplicaSpec(**values)


def _render(spec: ReplicaSpec) -> dict[str, Any]:
    return render_app(
        spec, namespace="ns", node_bin="/usr/bin/node", bash_bin="/bin/bash", env_bin="/usr/bin/env"
    )


def test_command_runs_through_bash_with_an_explicit_environment() -> None:
    app = _render(_spec(env={"PATH": APP_PATH, "HOME": "/srv/home", "SECRET_KEY": "s3cret"}))
    # No shell string is formatted: the user's command is one argv element of bash -c.
    assert app["script"] == "/usr/bin/env" and app["interpreter"] == "none"
    assert app["args"] == [
        "HOME=/srv/home",
        "/bin/bash",
        "-c",
        "gunicorn app:app --bind 0.0.0.0:$PORT",
    ]
    assert app["env"] == {
        "PATH": APP_PATH,
        "HOME": "/srv/home",
        "SECRET_KEY": "s3cret",
        "PORT": "4321",
    }
    assert app["filter_env"] is True
    assert app["namespace"] == "ns" and app["cwd"] == "/srv/app"
    # Logs: one file per stream at exactly these paths, no timestamps, no git probing.
    assert app["out_file"] == "/logs/web-abc-0.out.log"
    assert app["error_file"] == "/logs/web-abc-0.err.log"
    assert app["merge_logs"] is True and app["time"] is False and app["vizion"] is False
    assert "log_date_format" not in app and "log_file" not in app
    assert app["kill_timeout"] == 10_000 and app["treekill"] is True


def test_port_is_not_overridden_when_env_has_one() -> None:
    assert _render(_spec(env={"PORT": "9999"}))["env"]["PORT"] == "9999"


def test_restart_policy_on_failure() -> None:
    app = _render(_spec(restart_policy=RestartPolicy.ON_FAILURE, max_retries=4, min_uptime_s=2))
    assert app["autorestart"] is True
    assert app["stop_exit_codes"] == [0]  # a clean exit is not a failure
    assert app["max_restarts"] == 5 and app["min_uptime"] == 2000  # 4 retries after the first run
    assert app["exp_backoff_restart_delay"] == 100
    assert "cron_restart" not in app


def test_restart_policy_always() -> None:
    app = _render(_spec(restart_policy=RestartPolicy.ALWAYS, max_retries=4))
    assert app["autorestart"] is True and "stop_exit_codes" not in app
    assert app["max_restarts"] >= 1_000_000  # never give up
    assert app["exp_backoff_restart_delay"] == 100


def test_restart_policy_never() -> None:
    app = _render(_spec(restart_policy=RestartPolicy.NEVER))
    assert app["autorestart"] is False
    assert "max_restarts" not in app and "exp_backoff_restart_delay" not in app


def test_cron_service_runs_on_schedule_only() -> None:
    spec = _spec(cron_schedule="*/5 * * * *", restart_policy=RestartPolicy.ALWAYS)
    app = render_app(
        spec,
        namespace="ns",
        node_bin="/usr/bin/node",
        bash_bin="/bin/bash",
        env_bin="/usr/bin/env",
        now=1_000_000,
    )
    assert app["cron_restart"] == "*/5 * * * *"
    assert app["autorestart"] is False and "autostart" not in app
    # The run PM2 makes at registration is gated off; the command is still one argv element.
    assert app["args"][:2] == ["/bin/bash", "-c"] and app["args"][3:5] == [
        "caboose-cron",
        "1000002",
    ]
    assert app["args"][5] == spec.command


def test_memory_limit_and_kill_timeout() -> None:
    app = _render(_spec(memory_limit_mb=256, kill_timeout_s=2.5))
    assert app["max_memory_restart"] == "256M"
    assert app["kill_timeout"] == 2500
    assert "max_memory_restart" not in _render(_spec())


def test_app_user_becomes_uid_and_gid() -> None:
    other = AppUser(name="cb-0123456789ab", uid=os.getuid() + 4242, gid=os.getgid() + 4242)
    app = _render(_spec(user=other))
    assert app["uid"] == other.uid and app["gid"] == other.gid
    assert "uid" not in _render(_spec(user=current_user()))  # nothing to switch to


def test_static_site_uses_pm2_serve() -> None:
    spec = _spec(command=None, static=StaticSite(Path("/srv/app/dist"), spa=True), port=5000)
    app = _render(spec)
    assert app["script"] == "serve" and app["interpreter"] == "/usr/bin/node"
    assert app["env"]["PM2_SERVE_PATH"] == "/srv/app/dist"
    assert app["env"]["PM2_SERVE_PORT"] == "5000"
    assert app["env"]["PM2_SERVE_HOST"] == "127.0.0.1"
    assert app["env"]["PM2_SERVE_SPA"] == "true"


@pytest.mark.parametrize("name", ["0", "all", "Web", "web app", "web;rm", "-x", "a" * 200, ""])
def test_unsafe_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError):
        _spec(name=name)


def test_spec_needs_exactly_one_of_command_or_static() -> None:
    with pytest.raises(ValueError):
        _spec(command=None)
    with pytest.raises(ValueError):
        _spec(static=StaticSite(Path("/srv")))
    with pytest.raises(ValueError):
        _spec(env={"A=B": "x"})


def test_jlist_parsing_tolerates_chatter() -> None:
    entry = {"pid": 12, "name": "web-1", "pm2_env": {"status": "online", "namespace": "ns"}}
    noisy = "[PM2][WARN] In-memory PM2 is out-of-date, do:\n>>>> $ pm2 update\n" + json.dumps(
        [entry]
    )
    assert parse_jlist(noisy) == [entry]
    assert parse_jlist(json.dumps([entry])) == [entry]


def test_status_mapping_and_pm2_quirks() -> None:
    now = 1_000_000.0
    online = status_from_jlist_entry(
        {
            "pid": 42,
            "name": "w-0",
            "monit": {"cpu": 1.5, "memory": 2048},
            "pm2_env": {
                "status": "online",
                "pm_uptime": (now - 3) * 1000,
                "restart_time": 2,
                "unstable_restarts": 0,
                "created_at": 1,
                "namespace": "ns",
            },
        },
        now=now,
    )
    assert online.state is ReplicaState.ONLINE and online.pid == 42 and online.is_running
    assert online.restarts == 2 and online.cpu_percent == 1.5 and online.memory_bytes == 2048
    assert 2.9 < online.uptime_s < 3.1 and online.namespace == "ns"
    # PM2 gave up after max_restarts, but with a backoff it keeps saying "waiting restart".
    gave_up = status_from_jlist_entry(
        {
            "pid": 0,
            "name": "w-0",
            "pm2_env": {"status": "waiting restart", "created_at": None, "exit_code": 3},
        }
    )
    assert gave_up.state is ReplicaState.ERRORED and gave_up.pid is None
    assert gave_up.exit_code == 3 and is_crash_looping(gave_up)
    # A clean exit under ON_FAILURE is final, whatever PM2's status word says.
    clean = status_from_jlist_entry(
        {
            "pid": 0,
            "name": "w-0",
            "pm2_env": {
                "status": "waiting restart",
                "created_at": 5,
                "exit_code": 0,
                "stop_exit_codes": [0],
            },
        }
    )
    assert clean.state is ReplicaState.STOPPED and not is_crash_looping(clean)
    waiting = status_from_jlist_entry(
        {
            "pid": 0,
            "name": "w-0",
            "pm2_env": {"status": "waiting restart", "created_at": 5, "unstable_restarts": 3},
        }
    )
    assert waiting.state is ReplicaState.LAUNCHING and is_crash_looping(waiting)
    assert status_from_jlist_entry({"name": "x"}).state is ReplicaState.LAUNCHING


def test_mini_list_parsing() -> None:
    output = (
        "[PM2] App [a-0] launched (1 instances)\n+--- a-0\nnamespace : ns\nversion : N/A\n"
        "pid : 77\npm2 id : 0\nstatus : online\nmode : fork\nrestarted : 0\nuptime : 0s\n\n"
        "+--- b-0\nnamespace : ns\npid : 0\nstatus : stopped\nrestarted : 2\n\n"
    )
    parsed = parse_mini_list(output)
    assert parsed["a-0"].pid == 77 and parsed["a-0"].state is ReplicaState.ONLINE
    assert parsed["b-0"].pid is None and parsed["b-0"].state is ReplicaState.STOPPED
    assert parsed["b-0"].restarts == 2


# -- ports ---------------------------------------------------------------------------------------


def test_ports_are_distinct_under_concurrency() -> None:
    allocator = PortAllocator()
    got: list[int] = []
    lock = threading.Lock()

    def grab() -> None:
        ports = allocator.allocate_many(5)
        with lock:
            got.extend(ports)

    threads = [threading.Thread(target=grab) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 40 and len(set(got)) == 40
    assert all(20000 <= p < 32000 and allocator.is_reserved(p) for p in got)


def test_ports_skip_bound_and_cross_process_reservations(tmp_path: Path) -> None:
    import socket

    low = 20000 + (os.getpid() % 5000)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", low))
        busy.listen()
        a = PortAllocator(port_range=(low, low + 3), lock_dir=tmp_path / "locks")
        b = PortAllocator(port_range=(low, low + 3), lock_dir=tmp_path / "locks")
        first = a.allocate_many(2)
        assert low not in first  # in use
        with pytest.raises(RuntimeError):
            b.allocate()  # the other "process" sees a's reservations
        a.release(first[0])
        assert b.allocate() == first[0]
    assert is_port_free(low)


# -- end to end: a real PM2 daemon -------------------------------------------------------------


def _wait_for(
    predicate: Callable[[], bool], timeout_s: float, what: str, interval_s: float = 0.1
) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(interval_s)  # polling with a deadline


def _get(port: int, path: str = "/") -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
        body: bytes = response.read()
        return body


@pytest.fixture(scope="module")
def work_root() -> Iterator[Path]:
    """A directory app users can traverse (pytest's tmp dirs are 0700 root)."""
    root = Path(tempfile.mkdtemp(prefix="caboose-pm2-test-"))
    root.chmod(0o711)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def app_user() -> Iterator[AppUser]:
    project_id = f"test-{uuid.uuid4()}"
    user = ensure_app_user(project_id)
    yield user
    remove_app_user(project_id)


@pytest.fixture(scope="module")
def pm2(work_root: Path, app_user: AppUser) -> Iterator[Pm2Runtime]:
    if not PM2_BIN.exists():
        pytest.skip(f"PM2 is not installed at {PM2_BIN} (npm install)")
    runtime = Pm2Runtime(PM2_BIN, work_root / "pm2-home", namespace="cbtest")
    try:
        runtime.ensure_daemon()
        yield runtime
    finally:
        _kill_daemon(runtime)


def _kill_daemon(runtime: Pm2Runtime) -> None:
    """``pm2 kill``, and if that fails, SIGKILL the daemon and everything it started."""
    pids: list[int] = []
    with contextlib.suppress(Exception):
        pids = [p["pid"] for p in runtime.jlist() if p.get("pid")]
    daemon = runtime.daemon_pid()
    with contextlib.suppress(Exception):
        runtime.kill_daemon()
    for pid in [*pids, *([daemon] if daemon else [])]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def app_dir(work_root: Path, app_user: AppUser) -> Path:
    directory = make_private_dir(work_root / f"app-{uuid.uuid4().hex[:8]}", app_user)
    (directory / "app.py").write_text(APP)
    if is_privileged():
        os.chown(directory / "app.py", app_user.uid, app_user.gid)
    return directory


@pytest.fixture
def make_spec(
    work_root: Path, app_dir: Path, app_user: AppUser, pm2: Pm2Runtime
) -> Iterator[Callable[..., ReplicaSpec]]:
    """Specs with unique names; whatever a test started is deleted afterwards."""
    names: list[str] = []
    suffix = uuid.uuid4().hex[:6]

    def make(label: str, **overrides: Any) -> ReplicaSpec:
        name = f"t{suffix}-{label}"
        names.append(name)
        values: dict[str, Any] = {
            "name": name,
            "cwd": app_dir,
            "out_log": work_root / "logs" / f"{name}.out.log",
            "err_log": work_root / "logs" / f"{name}.err.log",
            "command": "exec python3 app.py",
            "env": {"PATH": APP_PATH, "APP_VERSION": label},
            "user": app_user,
            "kill_timeout_s": 3.0,
        }
        values.update(overrides)
        return ReplicaSpec(**values)

    yield make
    with contextlib.suppress(Exception):
        pm2.delete(names)


def test_pm2_runtime_is_a_runtime(tmp_path: Path) -> None:
    runtime: Runtime = Pm2Runtime(PM2_BIN, tmp_path / "home", node_bin="/usr/bin/node")
    assert runtime.status is not None  # type-checked against the Protocol by mypy


@pytest.mark.skipif(not is_privileged(), reason="only root could run apps as root")
def test_apps_never_run_as_root(tmp_path: Path) -> None:
    runtime = Pm2Runtime(PM2_BIN, tmp_path / "home", node_bin="/usr/bin/node")
    root = AppUser(name="root", uid=0, gid=0)
    for user in (None, root):
        with pytest.raises(ProcessManagerError, match="as root"):
            runtime.start([_spec(user=user)])
    assert not (tmp_path / "home").exists()  # refused before PM2 was even asked


def _status(pm2: Pm2Runtime, name: str) -> ReplicaStatus:
    found = pm2.status([name])
    assert found, f"{name} is not known to PM2"
    return found[0]


@pytest.mark.e2e
def test_start_runs_as_app_user_with_only_its_own_environment(
    pm2: Pm2Runtime,
    make_spec: Callable[..., ReplicaSpec],
    app_user: AppUser,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A platform secret in the platform's environment must not reach apps.
    monkeypatch.setenv("CABOOSE_SECRET_CANARY", "platform-secret")
    port = PortAllocator().allocate()
    spec = make_spec("web", port=port, env={"PATH": APP_PATH, "APP_VERSION": "v1", "TOKEN": "t"})

    started = pm2.start([spec])

    assert [s.name for s in started] == [spec.name]
    assert started[0].pid is not None  # from the start call itself, no extra jlist
    _wait_for(lambda: not is_port_free(port), 10, "the app to listen")
    assert _get(port) == b"v1"
    env = json.loads(_get(port, "/env"))
    assert env["TOKEN"] == "t" and env["PORT"] == str(port) and env["PATH"] == APP_PATH
    assert "CABOOSE_SECRET_CANARY" not in env
    assert not any("platform-secret" in str(v) for v in env.values())
    who = json.loads(_get(port, "/whoami"))
    assert (who["uid"], who["gid"]) == (app_user.uid, app_user.gid)
    if is_privileged():
        assert who["groups"] in ([], [app_user.gid])  # root's groups were dropped
    status = _status(pm2, spec.name)
    assert status.state is ReplicaState.ONLINE and status.pid == started[0].pid
    assert status.namespace == "cbtest" and not pm2.is_crash_looping(status)


@pytest.mark.e2e
def test_stop_sends_sigterm_then_delete_forgets(
    pm2: Pm2Runtime, make_spec: Callable[..., ReplicaSpec], app_dir: Path, app_user: AppUser
) -> None:
    port = PortAllocator().allocate()
    marker = app_dir / "term-marker"
    graceful = make_spec("graceful", port=port, env={"PATH": APP_PATH, "TERM_MARKER": str(marker)})
    # Ignores SIGTERM (as does its sleep child): PM2 must SIGKILL it after kill_timeout_s.
    stubborn = make_spec(
        "stubborn", command="trap '' TERM; while true; do sleep 0.2; done", kill_timeout_s=0.5
    )
    pm2.start([graceful, stubborn])
    _wait_for(lambda: not is_port_free(port), 10, "the app to listen")
    stubborn_pid = _status(pm2, stubborn.name).pid
    assert stubborn_pid is not None

    started = time.monotonic()
    pm2.stop([graceful.name, stubborn.name, "tnot-there-0"])
    assert time.monotonic() - started < 6  # both in parallel, not one after the other

    assert marker.read_text() == "TERM"
    with pytest.raises(ProcessLookupError):
        os.kill(stubborn_pid, 0)
    assert {s.state for s in pm2.status([graceful.name, stubborn.name])} == {ReplicaState.STOPPED}
    pm2.delete([graceful.name, stubborn.name])
    assert pm2.status([graceful.name, stubborn.name]) == []


@pytest.mark.e2e
def test_crash_looping_app_is_detected(
    pm2: Pm2Runtime, make_spec: Callable[..., ReplicaSpec]
) -> None:
    on_failure = make_spec("crash", command="echo boom >&2; exit 3", max_retries=2, min_uptime_s=1)
    always = make_spec("crash-always", command="exit 3", restart_policy=RestartPolicy.ALWAYS)
    clean = make_spec("clean-exit", command="exit 0")
    never = make_spec("never", command="exit 5", restart_policy=RestartPolicy.NEVER)
    pm2.start([on_failure, always, clean, never])

    def settled() -> bool:
        by_name = {
            s.name: s for s in pm2.status([on_failure.name, always.name, clean.name, never.name])
        }
        return (
            by_name[on_failure.name].state is ReplicaState.ERRORED
            and pm2.is_crash_looping(by_name[always.name])
            and by_name[clean.name].state is ReplicaState.STOPPED
            and by_name[never.name].state is ReplicaState.STOPPED
        )

    _wait_for(settled, 20, "PM2 to give up on the crashing apps", interval_s=0.3)
    by_name = {
        s.name: s for s in pm2.status([on_failure.name, always.name, clean.name, never.name])
    }
    assert pm2.is_crash_looping(by_name[on_failure.name])
    assert by_name[on_failure.name].exit_code == 3 and by_name[on_failure.name].restarts == 2
    assert by_name[always.name].state is not ReplicaState.ERRORED  # ALWAYS keeps trying
    assert not pm2.is_crash_looping(by_name[clean.name]) and by_name[clean.name].restarts == 0
    assert by_name[never.name].exit_code == 5 and by_name[never.name].restarts == 0
    assert "boom" in on_failure.err_log.read_text()  # stderr went to the replica's own file


@pytest.mark.e2e
def test_static_site_served_as_app_user(
    pm2: Pm2Runtime, make_spec: Callable[..., ReplicaSpec], app_dir: Path, app_user: AppUser
) -> None:
    site = make_private_dir(app_dir / "dist", app_user)
    (site / "index.html").write_text("<h1>spa</h1>")
    (site / "about.txt").write_text("about")
    for path in (site / "index.html", site / "about.txt"):
        if is_privileged():
            os.chown(path, app_user.uid, app_user.gid)
    port = PortAllocator().allocate()
    spec = make_spec("site", command=None, static=StaticSite(site, spa=True), port=port)
    pm2.start([spec])
    _wait_for(lambda: not is_port_free(port), 10, "the static server to listen")
    assert _get(port, "/") == b"<h1>spa</h1>"
    assert _get(port, "/about.txt") == b"about"
    assert _get(port, "/deep/client/route") == b"<h1>spa</h1>"  # SPA fallback
    pid = _status(pm2, spec.name).pid
    assert pid is not None
    uid_line = next(
        line
        for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        if line.startswith("Uid:")
    )
    assert int(uid_line.split()[1]) == app_user.uid


@pytest.mark.e2e
def test_memory_limit_reaches_pm2_and_cron_runs_on_schedule(
    pm2: Pm2Runtime, make_spec: Callable[..., ReplicaSpec]
) -> None:
    limited = make_spec("limited", command="sleep 30", memory_limit_mb=64)
    cron = make_spec("cron", command="echo tick", cron_schedule="* * * * * *")  # every second
    started_at = time.monotonic()
    pm2.start([limited, cron])
    entry = next(p for p in pm2.jlist() if p.get("name") == limited.name)
    assert entry["pm2_env"]["max_memory_restart"] == 64 * 1024 * 1024

    def ticked() -> bool:
        return cron.out_log.exists() and "tick" in cron.out_log.read_text()

    _wait_for(ticked, 10, "a cron run")
    # Not the run PM2 makes at registration: that one is gated off for 2 s.
    assert time.monotonic() - started_at > 1.5


@pytest.mark.e2e
def test_orphans_are_found_by_prefix_and_namespace(
    pm2: Pm2Runtime, make_spec: Callable[..., ReplicaSpec], work_root: Path
) -> None:
    keep = make_spec("orph-0", command="sleep 30")
    orphan = make_spec("orph-1", command="sleep 30")
    pm2.start([keep, orphan])
    # Another platform instance (namespace) sharing the daemon: never an orphan of ours.
    other = Pm2Runtime(PM2_BIN, pm2.pm2_home, namespace="other")
    foreign = ReplicaSpec(
        name=f"{keep.name}-foreign",
        cwd=keep.cwd,
        out_log=keep.out_log,
        err_log=keep.err_log,
        command="sleep 30",
        env={"PATH": APP_PATH},
        user=keep.user,
    )
    other.start([foreign])
    try:
        prefix = keep.name[: -len("orph-0")] + "orph-"
        orphans = pm2.find_orphans([keep.name], prefix=prefix)
        assert [o.name for o in orphans] == [orphan.name]
        managed = {s.name for s in pm2.list_managed()}
        assert {keep.name, orphan.name} <= managed and foreign.name not in managed
    finally:
        other.delete([foreign.name])
