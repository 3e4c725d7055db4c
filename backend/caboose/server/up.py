"""``caboosed up``: the whole platform on one machine, with no configuration.

Order matters, and is the reverse on the way down:

1. data dir (0711) and secrets, database migrations;
2. **Redis** — the embedded ``redis-server`` unless ``CABOOSE_REDIS_URL`` is set;
3. the **PM2 daemon** (``PM2_HOME=<data>/pm2``) — not a child: it is started if needed and left
   running on the way down, so deployed apps keep serving while the platform restarts;
4. **Traefik**, with a static configuration generated into ``<data>/traefik/traefik.yml``: the
   public ``web`` entrypoint on ``CABOOSE_HTTP_PORT``, an internal loopback entrypoint (free port)
   for ``/ping`` and the API the engine reads, a file provider on ``<data>/traefik/dynamic``;
5. one **Celery worker** (all queues) and **beat**;
6. the **API** (uvicorn) on loopback — ``CABOOSE_API_PORT``, or a free port;
7. the **dashboard** (``node frontend/.next/standalone/server.js``) on a free loopback port,
   built first when its sources changed (see :mod:`caboose.server.dashboard`); without Node or
   a build the platform runs with the API alone and says why;
8. the platform host routed through Traefik — the API's paths (:data:`API_PATH_PREFIXES`) to
   the API, everything else to the dashboard, one origin for both — and ``/health`` fetched
   through Traefik before the banner says the platform is up and where the dashboard is.

Children are run by :class:`~caboose.server.supervisor.Supervisor`: restarted with backoff when
they die, their output prefixed on the terminal and copied to ``<data>/logs/<name>.log``, stopped
in reverse order on Ctrl-C/SIGTERM. One ``up`` per data dir: ``<data>/run/up.lock`` is held with
``flock`` for the life of the process (the kernel releases it if the process dies, so a crash
never leaves a stale lock), and the pids of the children are recorded so the next ``up`` can stop
what a crashed one left behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import httpx

from caboose.config import Settings
from caboose.engine.routing.traefik import (
    TraefikRouter,
    render_static_config,
    traefik_command,
    traefik_env,
    write_static_config,
)
from caboose.engine.runtime import ProcessManagerError
from caboose.engine.runtime.pm2 import Pm2Runtime
from caboose.server.dashboard import (
    BuildLock,
    DashboardBuild,
    DashboardUnavailableError,
    build_environment,
    find_frontend,
    server_environment,
)
from caboose.server.layout import DataLayout, ToolNotFoundError, find_pm2_bin, find_traefik_bin
from caboose.server.redis_embedded import EmbeddedRedis, EmbeddedRedisError, free_port
from caboose.server.supervisor import (
    ChildSpec,
    ChildStartError,
    ChildState,
    StopRequestedError,
    Supervisor,
    TerminalSink,
    kill_recorded,
)

__all__ = [
    "ALL_INTERFACES",
    "API_PATH_PREFIXES",
    "AlreadyRunningError",
    "PortInUseError",
    "UpLock",
    "UpOptions",
    "run_up",
]

logger = logging.getLogger("caboose.up")

ALL_INTERFACES = "0.0.0.0"  # noqa: S104 - the public entrypoint is meant to be reachable
# Worker's stop: SIGQUIT is Celery's cold shutdown (running tasks get the soft-shutdown grace,
# then go back to the broker); it needs that grace plus time to close connections.
_WORKER_STOP_TIMEOUT_S = 25.0
_PROBE_TIMEOUT_S = 1.0
_MASK = "***"  # what a password in a logged URL is replaced with
_TRAEFIK_LOG_LEVELS = {"CRITICAL": "FATAL", "WARNING": "WARN", "NOTSET": "INFO"}
# What the platform host sends to the API; the rest goes to the dashboard. WebSockets live under
# /api/v1 too. Traefik passes Host and sets X-Forwarded-* for both.
API_PATH_PREFIXES = ("/api", "/health", "/ready", "/docs", "/openapi.json", "/metrics")
_DASHBOARD_BUILD_TIMEOUT_S = 30 * 60.0  # a first build on a slow machine, or waiting for one
_DASHBOARD_PROBE = "/favicon.svg"  # a static file: 200 without a session, no redirect


class AlreadyRunningError(RuntimeError):
    def __init__(self, lock_file: Path, pid: int | None) -> None:
        self.pid = pid
        who = f" (pid {pid})" if pid else ""
        super().__init__(
            f"Caboose is already running on this data dir{who}: {lock_file.parent.parent}\n"
            "Stop it first (Ctrl-C in its terminal"
            + (f", or `kill -TERM {pid}`" if pid else "")
            + "), or use another CABOOSE_DATA_DIR."
        )


class PortInUseError(RuntimeError):
    pass


@dataclass(frozen=True, slots=True)
class UpOptions:
    """What ``caboosed up`` takes beyond settings.

    - ``http_host``: interface of Traefik's public entrypoint (``127.0.0.1``: this machine only);
    - ``worker_concurrency``: task processes of the one worker (default: 2 to 4, by CPU count);
    - ``dashboard_url``: where the platform host's non-API paths go, when the dashboard runs
      elsewhere (None: ``up`` runs the checkout's own, see ``CABOOSE_DASHBOARD_*``, or, without
      one, sends everything to the API);
    - ``extra_children``: more processes started after the API and before routing, stopped
      first;
    - ``ready_timeout_s``: how long each piece may take to answer at start-up.
    """

    http_host: str = ALL_INTERFACES
    worker_concurrency: int | None = None
    dashboard_url: str | None = None
    extra_children: Sequence[ChildSpec] = ()
    ready_timeout_s: float = 60.0


class UpLock:
    """An exclusive ``flock`` on ``run/up.lock``, holding the owner's pid (for the message)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                pid = int(os.read(fd, 32).decode().strip() or 0) or None
            except ValueError:
                pid = None
            os.close(fd)
            raise AlreadyRunningError(self.path, pid) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        """Drop the lock. The file stays: unlinking it could let two processes lock two
        different files of the same name."""
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)
        os.close(self._fd)  # closing releases the flock
        self._fd = None


def run_up(
    settings: Settings, options: UpOptions | None = None, *, out: TextIO | None = None
) -> int:
    """Run the platform until SIGINT/SIGTERM/SIGHUP/SIGQUIT; return the exit status (0: stopped
    cleanly; 1: refused or failed to start). Call from the main thread."""
    options = options or UpOptions()
    stream = out if out is not None else sys.stdout
    settings.ensure_data_dir()
    layout = DataLayout(settings.data_dir)
    layout.ensure()
    lock = UpLock(layout.up_lock_file)
    try:
        lock.acquire()
    except AlreadyRunningError as exc:
        logger.error("%s", exc)
        return 1
    try:
        return _Platform(settings, options, layout, stream).run()
    finally:
        lock.release()


class _Platform:
    """One run of ``caboosed up`` (state shared by the start-up steps)."""

    def __init__(
        self, settings: Settings, options: UpOptions, layout: DataLayout, out: TextIO
    ) -> None:
        self.settings = settings
        self.options = options
        self.layout = layout
        self.out = out
        self.embedded_redis: EmbeddedRedis | None = None
        self.dashboard_url: str | None = options.dashboard_url
        self.dashboard_note: str | None = None  # why there is no dashboard, for the banner
        self.supervisor = Supervisor(
            sink=TerminalSink(out, log_dir=layout.logs_dir),
            state_file=layout.children_state_file,
        )

    def run(self) -> int:
        status = 0
        supervisor = self.supervisor
        with supervisor.handle_signals():
            try:
                self._prepare()
                self._start()
                self._print_banner()
                supervisor.run()
                name = _signal_name(supervisor.stop_signal)
                logger.info("stopping Caboose (%s); deployed apps keep running", name)
            except StopRequestedError:
                logger.info("start-up interrupted: stopping what was started")
            except (
                ChildStartError,
                EmbeddedRedisError,
                PortInUseError,
                ProcessManagerError,
                ToolNotFoundError,
                TimeoutError,
                OSError,
            ) as exc:
                logger.error("Caboose could not start: %s", exc)
                status = 1
            except Exception as exc:  # a failed step (PM2, migrations): still stop the rest
                logger.exception("Caboose could not start: %s", exc)
                status = 1
            finally:
                supervisor.stop_all()
                self._forget_run_state()
                supervisor.close()
        if status == 0:
            with contextlib.suppress(OSError):  # the terminal may be gone (SIGHUP)
                print("Caboose stopped.", file=self.out, flush=True)
        return status

    # -- steps ---------------------------------------------------------------------------------

    def _prepare(self) -> None:
        # Probes and Alembic's plugin set-up would fill the terminal with INFO lines.
        for name in ("httpx", "httpcore", "alembic.runtime.plugins"):
            logging.getLogger(name).setLevel(logging.WARNING)

        from caboose.core.keys import platform_keys
        from caboose.migrations import upgrade

        leftovers = kill_recorded(self.layout.children_state_file)
        if leftovers:
            logger.warning(
                "stopped %d process(es) left by a `caboosed up` that did not exit cleanly: %s",
                len(leftovers),
                ", ".join(map(str, leftovers)),
            )
        _ensure_port_free(self.options.http_host, self.settings.http_port)
        platform_keys(self.settings)  # generate the JWT secret and master key once, here
        upgrade(self.settings.resolved_database_url)
        logger.info("database schema up to date")

    def _start(self) -> None:
        supervisor = self.supervisor
        dashboard = self._prepare_dashboard()  # builds first: minutes, once per change
        redis_url = self._start_redis()
        env = self._python_env(redis_url)
        traefik, traefik_api = self._traefik_spec()
        worker, beat = self._celery_specs(env)
        shipper = self._shipper_spec(env)
        api, api_url = self._api_spec(env)
        # Added in the order of the way up; stopped in the reverse (the API first).
        for spec in (traefik, worker, beat, shipper, api):
            supervisor.add(spec)
        # The API takes longest to boot (imports): let it, while PM2 and Traefik start.
        supervisor.start(api.name, wait=False)
        self._start_pm2()
        supervisor.start(traefik.name)
        self.layout.write_state(
            self.layout.traefik_state_file,
            {
                "api_url": traefik_api,
                "web_address": _address(self.options.http_host, self.settings.http_port),
                "http_port": self.settings.http_port,
            },
        )
        supervisor.wait_ready(api.name)
        # Consumers last: nothing waits for them, and their imports would slow the API's.
        supervisor.start(worker.name)
        supervisor.start(beat.name)
        supervisor.start(shipper.name)
        self._request_reconcile(redis_url)
        for spec in self.options.extra_children:
            supervisor.add(spec)
            supervisor.start(spec.name)
        if dashboard is not None:
            self._start_dashboard(dashboard)
        self._route_platform(traefik_api, api_url)

    # -- the dashboard -------------------------------------------------------------------------

    def _prepare_dashboard(self) -> DashboardBuild | None:
        """The dashboard build to serve (built now if its sources changed), or None: the API
        then serves the platform host alone, and the banner says why."""
        if self.options.dashboard_url is not None:
            return None  # served elsewhere
        if not self.settings.dashboard_enabled:
            self.dashboard_note = "off (CABOOSE_DASHBOARD_ENABLED=false)"
            return None
        frontend = find_frontend()
        if frontend is None:
            self.dashboard_note = "not installed (no frontend/ beside this installation)"
            logger.warning("dashboard: %s; the API runs alone", self.dashboard_note)
            return None
        build = DashboardBuild(frontend)
        try:
            if self.settings.dashboard_build:
                try:
                    self._build_dashboard(build)
                except DashboardUnavailableError as exc:
                    if not build.is_built():
                        raise
                    logger.warning("dashboard: %s; serving the build there is", exc)
            elif build.is_built() and not build.is_current():
                logger.warning("dashboard: serving a build older than its sources")
            build.server_command()  # Node is there, and a build
        except DashboardUnavailableError as exc:
            self.dashboard_note = str(exc)
            logger.warning("dashboard not started: %s; the API runs alone", exc)
            return None
        return build

    def _build_dashboard(self, build: DashboardBuild) -> None:
        if build.is_current():
            logger.info("dashboard: the build is up to date")
            return
        argv = build.build_command()
        lock = BuildLock(build.lock_file)
        if not lock.try_acquire():
            logger.info("dashboard: waiting for another `caboosed up` building it")
            self._wait("the other dashboard build", lock.try_acquire, _DASHBOARD_BUILD_TIMEOUT_S)
        try:
            if build.is_current():
                return
            digest = build.sources_digest()
            logger.info(
                "dashboard: building it (its sources changed or it was never built); "
                "a few minutes, once"
            )
            spec = ChildSpec(
                name="dashboard-build",
                argv=argv,
                env=build_environment(),
                cwd=build.frontend_dir,
                restart=None,  # one run
                stop_timeout_s=5.0,
            )
            supervisor = self.supervisor
            supervisor.add(spec)
            supervisor.start(spec.name)
            supervisor.run(
                until=lambda: (
                    supervisor.status(spec.name).state
                    not in (ChildState.RUNNING, ChildState.STARTING)
                )
            )
            if supervisor.stop_requested:
                raise StopRequestedError
            code = supervisor.status(spec.name).exit_code
            if code != 0 or not build.is_built():
                raise DashboardUnavailableError(
                    f"its build failed (exit status {code}; see "
                    f"{self.layout.logs_dir}/dashboard-build.log)"
                )
            build.mark_built(digest)
            logger.info("dashboard: built")
        finally:
            lock.release()

    def _start_dashboard(self, build: DashboardBuild) -> None:
        port = self.settings.dashboard_port or free_port()
        url = f"http://127.0.0.1:{port}"
        spec = ChildSpec(
            name="dashboard",
            argv=build.server_command(),
            env=server_environment(port),
            cwd=build.standalone_dir,
            ready=lambda: _http_ok(f"{url}{_DASHBOARD_PROBE}"),
            ready_timeout_s=self.options.ready_timeout_s,
            stop_timeout_s=10.0,
        )
        self.supervisor.add(spec)
        self.supervisor.start(spec.name)
        self.dashboard_url = url

    def _request_reconcile(self, redis_url: str) -> None:
        """Queue a reconcile now: apps or routes that went missing while the platform was down
        come back (and orphans go) at once, not at beat's first run a minute later."""
        from caboose.celery_app import celery_app
        from caboose.deploys.actions import enqueue_reconcile

        celery_app.use_redis(redis_url)
        try:
            enqueue_reconcile()
        except Exception as exc:  # the platform still runs; beat will reconcile soon
            logger.warning("could not queue the start-up reconcile: %s", exc)

    def _start_redis(self) -> str:
        if self.settings.redis_url:
            logger.info("Redis: %s (CABOOSE_REDIS_URL)", _redact(self.settings.redis_url))
            return self.settings.redis_url
        embedded = EmbeddedRedis(self.settings.data_dir)
        existing = embedded.attach()
        if existing is not None:
            # Started by another process of this data dir (a separate `caboosed api`): use it,
            # leave it to its owner.
            logger.info("Redis: the embedded redis-server already running for this data dir")
            return existing
        url = embedded.start(timeout=self.options.ready_timeout_s)
        process = embedded.process
        port = embedded.port
        assert process is not None and port is not None
        self.embedded_redis = embedded
        state_file = self.settings.data_dir / "run" / "redis.json"

        def record(pid: int) -> None:
            # Same format as EmbeddedRedis writes: others of this data dir attach through it.
            self.layout.write_state(state_file, {"pid": pid, "port": port})

        spec = ChildSpec(
            name="redis",
            argv=_argv_of(process),
            capture_output=False,  # it logs to <data>/redis/redis.log
            ready=lambda: _redis_answers(url),
            ready_timeout_s=self.options.ready_timeout_s,
            stop_timeout_s=15.0,  # SIGTERM: it flushes its append-only file first
            on_spawn=record,
        )
        self.supervisor.add(spec, process=process)
        logger.info("Redis: embedded redis-server on 127.0.0.1:%d (pid %d)", port, process.pid)
        return url

    def _start_pm2(self) -> None:
        runtime = Pm2Runtime(find_pm2_bin(), self.layout.pm2_home)
        runtime.ensure_daemon()
        logger.info(
            "PM2 daemon running (pid %s, PM2_HOME=%s)", runtime.daemon_pid(), runtime.pm2_home
        )

    def _traefik_spec(self) -> tuple[ChildSpec, str]:
        """Traefik's static configuration (written now) and child; its API URL."""
        layout = self.layout
        internal_port = free_port()
        api_url = f"http://127.0.0.1:{internal_port}"
        self._router(api_url).install_default_certificate(
            layout.traefik_tls_dir / "default.crt", layout.traefik_tls_dir / "default.key"
        )
        config = render_static_config(
            web_address=_address(self.options.http_host, self.settings.http_port),
            internal_address=f"127.0.0.1:{internal_port}",
            dynamic_dir=layout.traefik_dynamic_dir,
            log_level=_traefik_log_level(self.settings.log_level),
        )
        write_static_config(layout.traefik_static_config, config)
        spec = ChildSpec(
            name="traefik",
            argv=traefik_command(find_traefik_bin(), layout.traefik_static_config),
            env=traefik_env(),  # never the platform's environment (see traefik_command)
            ready=lambda: _http_ok(f"{api_url}/ping"),
            ready_timeout_s=self.options.ready_timeout_s,
            stop_timeout_s=15.0,  # in-flight requests get the entrypoints' grace time
        )
        return spec, api_url

    def _celery_specs(self, env: dict[str, str]) -> tuple[ChildSpec, ChildSpec]:
        concurrency = self.options.worker_concurrency or max(2, min(4, os.cpu_count() or 2))
        worker = ChildSpec(
            name="worker",
            argv=[
                *_caboosed(),
                "worker",
                f"--concurrency={concurrency}",
                "--no-mingle",  # one worker: nobody to synchronise with, start faster
            ],
            env=env,
            stop_signal=signal.SIGQUIT,
            stop_timeout_s=_WORKER_STOP_TIMEOUT_S,
        )
        beat = ChildSpec(name="beat", argv=[*_caboosed(), "beat"], env=env, stop_timeout_s=10.0)
        return worker, beat

    def _shipper_spec(self, env: dict[str, str]) -> ChildSpec:
        # Follows PM2's per-replica log files into the deployments' live log streams.
        return ChildSpec(
            name="shipper", argv=[*_caboosed(), "shipper"], env=env, stop_timeout_s=10.0
        )

    def _api_spec(self, env: dict[str, str]) -> tuple[ChildSpec, str]:
        settings = self.settings
        host = settings.api_host
        port = settings.api_port if "api_port" in settings.model_fields_set else free_port(host)
        url = f"http://{_connect_host(host)}:{port}"
        spec = ChildSpec(
            name="api",
            argv=[*_caboosed(), "api", f"--host={host}", f"--port={port}"],
            env=env,
            ready=lambda: _http_ok(f"{url}/health"),
            ready_timeout_s=self.options.ready_timeout_s,
            stop_timeout_s=10.0,
        )
        return spec, url

    def _route_platform(self, traefik_api: str, api_url: str) -> None:
        settings = self.settings
        self._router(traefik_api).apply_platform(
            settings.platform_host, api_url, self.dashboard_url, api_prefixes=API_PATH_PREFIXES
        )
        probe = f"http://{_connect_host(self.options.http_host)}:{settings.http_port}/health"
        deadline_s = self.options.ready_timeout_s
        self._wait(
            f"{settings.platform_host} routed to the API through Traefik",
            lambda: _http_ok(probe, host=settings.platform_host),
            deadline_s,
        )

    # -- helpers -------------------------------------------------------------------------------

    def _router(self, api_url: str) -> TraefikRouter:
        return TraefikRouter(self.layout.traefik_dynamic_dir, api_url)

    def _wait(self, what: str, check: Callable[[], bool], timeout_s: float) -> None:
        """Poll ``check`` until true, forwarding children's output meanwhile."""
        supervisor = self.supervisor
        remaining = timeout_s
        while not check():
            if supervisor.stop_requested:
                raise StopRequestedError
            if remaining <= 0:
                raise TimeoutError(f"{what}: not after {timeout_s:g} s")
            step = min(0.05, remaining)
            supervisor.pump(step)
            remaining -= step

    def _python_env(self, redis_url: str) -> dict[str, str]:
        """The environment of the platform's Python children: ours, plus what they must agree
        on (the data dir, resolved; the Redis URL, so none of them starts a Redis of its own)."""
        env = dict(os.environ)
        env["CABOOSE_DATA_DIR"] = str(self.settings.data_dir)
        env["CABOOSE_REDIS_URL"] = redis_url
        env["PYTHONUNBUFFERED"] = "1"  # lines reach the terminal as they are written
        return env

    def _forget_run_state(self) -> None:
        self.layout.traefik_state_file.unlink(missing_ok=True)
        if self.embedded_redis is not None:
            # The supervisor stopped it; EmbeddedRedis.stop() would not know.
            self.embedded_redis.process = None
            (self.settings.data_dir / "run" / "redis.json").unlink(missing_ok=True)

    def _print_banner(self) -> None:
        settings = self.settings
        url = settings.resolved_public_url
        if self.dashboard_url is not None:
            last = f"  Dashboard: {url}"
        else:
            last = f"  No dashboard ({self.dashboard_note or 'not running'}); the API: {url}/api/v1"
        lines = [
            "",
            f"  Caboose is up: {url}",
            "",
            f"  data dir  {settings.data_dir}",
            f"  logs      {self.layout.logs_dir}/<process>.log",
            f"  stop      Ctrl-C (or kill -TERM {os.getpid()}); deployed apps keep running",
            "",
            last,
            "",
        ]
        with contextlib.suppress(OSError):
            print("\n".join(lines), file=self.out, flush=True)


def _argv_of(process: subprocess.Popen[bytes]) -> list[str]:
    args = process.args
    if isinstance(args, str | bytes | os.PathLike):
        return [os.fsdecode(args)]
    return [os.fsdecode(arg) for arg in args]


def _caboosed() -> list[str]:
    """How to run ``caboosed`` with this interpreter (no dependence on PATH)."""
    return [sys.executable, "-m", "caboose.server"]


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _connect_host(bind_host: str) -> str:
    """Where to connect to reach a server bound to ``bind_host`` from this machine."""
    if bind_host in ("", ALL_INTERFACES):
        return "127.0.0.1"
    if bind_host == "::":
        return "[::1]"
    return f"[{bind_host}]" if ":" in bind_host else bind_host


def _ensure_port_free(host: str, port: int) -> None:
    """Refuse early, with a useful message, rather than read it in Traefik's log."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Traefik (Go) does
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise PortInUseError(
                f"cannot listen on {_address(host, port)} ({exc.strerror}): another program "
                "uses it; choose another port with CABOOSE_HTTP_PORT"
            ) from None


def _traefik_log_level(level: str) -> str:
    upper = level.upper()
    return _TRAEFIK_LOG_LEVELS.get(upper, upper)


def _http_ok(url: str, *, host: str | None = None) -> bool:
    headers = {"Host": host} if host else None
    try:
        response = httpx.get(url, headers=headers, timeout=_PROBE_TIMEOUT_S)
    except httpx.HTTPError:
        return False
    return response.status_code == 200


def _redis_answers(url: str) -> bool:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=_PROBE_TIMEOUT_S)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def _redact(url: str) -> str:
    parsed = httpx.URL(url)
    return str(parsed.copy_with(password=_MASK)) if parsed.password else url


def _signal_name(signum: int | None) -> str:
    if not signum:
        return "requested"
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"
