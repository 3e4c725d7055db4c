"""Run replicas under PM2, through its CLI, with a daemon of the platform's own.

Why the CLI and an ecosystem file: PM2's only stable interfaces are its CLI and its Node API; the
CLI keeps the platform free of a Node bridge process, and an ecosystem JSON file carries every
option (uid/gid, restart policy, log paths, environment) as data, so no shell string is ever
formatted. Each CLI call costs a Node start (~250-600 ms on a small machine), so every operation
here is one call for a whole set of replicas: one ``start`` for all of them (its ``-m`` listing
doubles as the first status, saving a ``jlist``), one ``jlist`` per status poll, one ``stop`` or
``delete`` for many names (a throwaway ecosystem file naming them, acted on in parallel).

Isolation, given that the daemon runs as root when the platform does:

- the CLI (and so the daemon it spawns) gets an explicit, minimal environment, never the
  platform's: PM2 copies the CLI's environment under each app's, so anything there would reach
  apps. The app's own environment comes only from its :class:`ReplicaSpec`;
- apps run as their project's user (``uid``/``gid`` in the ecosystem; PM2 then forces ``HOME`` to
  that user's passwd home, so a ``HOME`` given in the spec is re-applied through ``env(1)``);
- ``PM2_HOME`` is mode 0700: its RPC socket controls a root daemon;
- ecosystem files hold the apps' secrets, so they are written 0600 and removed after use.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from caboose.engine.runtime import (
    ProcessManagerError,
    ReplicaSpec,
    ReplicaState,
    ReplicaStatus,
    RestartPolicy,
    is_crash_looping,
    validate_replica_name,
)
from caboose.engine.sandbox import is_privileged

__all__ = ["Pm2Runtime", "Pm2Timings", "render_app", "render_ecosystem"]

_STATE_BY_PM2_STATUS: Mapping[str, ReplicaState] = {
    "online": ReplicaState.ONLINE,
    "launching": ReplicaState.LAUNCHING,
    "waiting restart": ReplicaState.LAUNCHING,
    "one-launch-status": ReplicaState.LAUNCHING,
    "stopping": ReplicaState.STOPPED,
    "stopped": ReplicaState.STOPPED,
    "errored": ReplicaState.ERRORED,
}
# ALWAYS means forever: PM2 stops after max_restarts quick crashes, so make that unreachable.
_UNLIMITED_RESTARTS = 1_000_000
# First restart delay after a crash; PM2 grows it x1.5 per crash up to 15 s (reset once stable).
_BACKOFF_START_MS = 100
_NAMESPACE_RE = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
# A cron service must run on its schedule only, but PM2 cannot register a process without
# starting it: with autostart false its cron restarts never start it either. So the deploy-time
# run goes through this fixed script, which exits 0 until a time given as an argument ($1) and
# otherwise runs the user's command ($2). Arguments, not formatting: the command stays one argv
# element, as everywhere else.
_CRON_GATE = (
    'printf -v now "%(%s)T" -1; if [ "$now" -lt "$1" ]; then exit 0; fi; exec "$BASH" -c "$2"'
)
_CRON_START_GRACE_S = 2


@dataclass(slots=True)
class Pm2Timings:
    """Wall-clock seconds of the last CLI call of each kind (for benchmarks and logs)."""

    ping: float | None = None
    start: float | None = None
    jlist: float | None = None
    stop: float | None = None
    delete: float | None = None


def render_app(
    spec: ReplicaSpec,
    *,
    namespace: str,
    node_bin: str,
    bash_bin: str,
    env_bin: str,
    now: float | None = None,
) -> dict[str, Any]:
    """One ecosystem ``apps[]`` entry for ``spec``: pure data, testable without PM2.

    ``now`` (epoch seconds, default: the clock) only matters for cron services, see
    ``_CRON_GATE``.
    """
    env = dict(spec.env)
    if spec.port is not None:
        env.setdefault("PORT", str(spec.port))
    app: dict[str, Any] = {
        "name": spec.name,
        "namespace": namespace,
        "cwd": str(spec.cwd),
        "exec_mode": "fork",
        # Ask PM2 not to add the CLI's environment (it still does for some keys: the CLI's own
        # environment is therefore kept minimal too, see Pm2Runtime._cli_env).
        "filter_env": True,
        "out_file": str(spec.out_log),
        "error_file": str(spec.err_log),
        # One file per stream and replica, exactly at these paths: without merge_logs PM2 renames
        # "x.log" to "x-<pm_id>.log", which the log shipper could not predict.
        "merge_logs": True,
        # No timestamps (the log shipper stamps lines itself) and no combined log file.
        "time": False,
        # vizion runs git in the app's directory from the root daemon; pmx/automation instrument
        # Node apps and talk to pm2.io: none of it is wanted.
        "vizion": False,
        "pmx": False,
        "automation": False,
        # Signal the whole process tree (bash -c "a && b" keeps bash as the parent).
        "treekill": True,
        "kill_timeout": max(1, round(spec.kill_timeout_s * 1000)),
        # How often PM2 checks whether a signalled process is gone (default 100 ms): part of
        # every stop's latency.
        "kill_retry_time": 25,
        "min_uptime": max(100, round(spec.min_uptime_s * 1000)),
    }
    if spec.static is not None:
        app["script"] = "serve"  # PM2 resolves this to its own lib/API/Serve.js
        app["interpreter"] = node_bin
        env.update(
            {
                "PM2_SERVE_PATH": str(spec.static.root),
                "PM2_SERVE_PORT": str(spec.port),
                "PM2_SERVE_HOST": "127.0.0.1",
                "PM2_SERVE_SPA": "true" if spec.static.spa else "false",
                "PM2_SERVE_HOMEPAGE": "/index.html",
            }
        )
    else:
        assert spec.command is not None  # guaranteed by ReplicaSpec
        # env(1) execs bash, which execs a simple command: the pid PM2 reports is the app's.
        # HOME goes through argv (not a secret) because PM2 overwrites it for a uid.
        home = [f"HOME={env['HOME']}"] if "HOME" in env else []
        app["script"] = env_bin
        app["interpreter"] = "none"
        if spec.cron_schedule is None:
            app["args"] = [*home, bash_bin, "-c", spec.command]
        else:
            not_before = math.ceil(time.time() if now is None else now) + _CRON_START_GRACE_S
            app["args"] = [
                *home,
                bash_bin,
                "-c",
                _CRON_GATE,
                "caboose-cron",
                str(not_before),
                spec.command,
            ]
    app["env"] = env

    if spec.user is not None and not spec.user.is_current_user:
        app["uid"] = spec.user.uid
        app["gid"] = spec.user.gid

    if spec.memory_limit_mb is not None:
        app["max_memory_restart"] = f"{spec.memory_limit_mb}M"

    if spec.cron_schedule is not None:
        # Run at each tick, not restarted on exit. PM2 also runs it once at registration
        # (autostart: false would stop the ticks too): _CRON_GATE turns that run into a no-op.
        app["cron_restart"] = spec.cron_schedule
        app["autorestart"] = False
    elif spec.restart_policy is RestartPolicy.NEVER:
        app["autorestart"] = False
    elif spec.restart_policy is RestartPolicy.ALWAYS:
        app["autorestart"] = True
        app["max_restarts"] = _UNLIMITED_RESTARTS
        app["exp_backoff_restart_delay"] = _BACKOFF_START_MS
    else:  # ON_FAILURE: a clean exit (0) is final; crashes are retried with backoff.
        app["autorestart"] = True
        app["stop_exit_codes"] = [0]
        # PM2 gives up when its count of quick crashes reaches max_restarts: N retries = N + 1.
        app["max_restarts"] = spec.max_retries + 1
        app["exp_backoff_restart_delay"] = _BACKOFF_START_MS
    return app


def render_ecosystem(
    specs: Sequence[ReplicaSpec], *, namespace: str, node_bin: str, bash_bin: str, env_bin: str
) -> dict[str, Any]:
    """The ecosystem document PM2 reads for ``specs`` (``{"apps": [...]}``)."""
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate replica names in one start: {names}")
    return {
        "apps": [
            render_app(
                s, namespace=namespace, node_bin=node_bin, bash_bin=bash_bin, env_bin=env_bin
            )
            for s in specs
        ]
    }


def parse_jlist(output: str) -> list[dict[str, Any]]:
    """The process list in ``pm2 jlist`` output, ignoring any chatter PM2 printed around it.

    PM2 sometimes prefixes warnings ("[PM2][WARN] ...", an out-of-date in-memory PM2 notice) on
    stdout, so the first line that decodes as a JSON array wins.
    """
    stripped = output.strip()
    with contextlib.suppress(ValueError):
        data = json.loads(stripped)
        if isinstance(data, list):
            return [p for p in data if isinstance(p, dict)]
    decoder = json.JSONDecoder()
    for match in re.finditer(r"(?m)^\[", output):
        try:
            data, _ = decoder.raw_decode(output, match.start())
        except ValueError:
            continue
        if isinstance(data, list):
            return [p for p in data if isinstance(p, dict)]
    raise ProcessManagerError(f"pm2 jlist: no process list in output ({len(output)} chars)")


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _float(value: Any, default: float = 0.0) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def status_from_jlist_entry(proc: Mapping[str, Any], *, now: float | None = None) -> ReplicaStatus:
    """Turn one ``pm2 jlist`` entry into a :class:`ReplicaStatus`, tolerating missing fields."""
    pm2_env = proc.get("pm2_env")
    env: Mapping[str, Any] = pm2_env if isinstance(pm2_env, dict) else {}
    monit_raw = proc.get("monit")
    monit: Mapping[str, Any] = monit_raw if isinstance(monit_raw, dict) else {}
    raw_status = str(env.get("status", "unknown"))
    state = _STATE_BY_PM2_STATUS.get(raw_status, ReplicaState.LAUNCHING)
    if "created_at" in env and env["created_at"] is None and raw_status != "stopped":
        # PM2 gave up (too many quick crashes) but, with a restart delay configured, leaves the
        # status at "waiting restart" forever; clearing created_at is the trace it does leave.
        state = ReplicaState.ERRORED
    exit_code = env.get("exit_code")
    stop_codes = env.get("stop_exit_codes")  # PM2 stores [0] as 0
    stop_codes = stop_codes if isinstance(stop_codes, list) else [stop_codes]
    if raw_status == "waiting restart" and exit_code is not None and exit_code in stop_codes:
        # Same PM2 quirk: a clean exit (ON_FAILURE, code 0) is final, yet reads "waiting restart".
        state = ReplicaState.STOPPED
    pid = _int(proc.get("pid"))
    started_ms = _int(env.get("pm_uptime"))
    now = time.time() if now is None else now
    uptime = max(0.0, now - started_ms / 1000) if state is ReplicaState.ONLINE and started_ms else 0
    return ReplicaStatus(
        name=str(proc.get("name") or env.get("name") or ""),
        state=state,
        pid=pid if pid > 0 else None,
        restarts=_int(env.get("restart_time")),
        unstable_restarts=_int(env.get("unstable_restarts")),
        cpu_percent=_float(monit.get("cpu")),
        memory_bytes=_int(monit.get("memory")),
        uptime_s=float(uptime),
        exit_code=exit_code if isinstance(exit_code, int) else None,
        raw_status=raw_status,
        namespace=str(env["namespace"]) if env.get("namespace") is not None else None,
    )


def parse_mini_list(output: str) -> dict[str, ReplicaStatus]:
    """Statuses from the compact listing ``pm2 <action> -m`` prints after acting.

    Only name, pid, status, restarts and namespace are there; it is used to report the state right
    after ``start`` without paying for a separate ``jlist``.
    """
    result: dict[str, ReplicaStatus] = {}
    for block in re.split(r"(?m)^\+--- ", output)[1:]:
        lines = block.splitlines()
        name = lines[0].strip()
        fields: dict[str, str] = {}
        for line in lines[1:]:
            key, sep, value = line.partition(" : ")
            if sep:
                fields[key.strip()] = value.strip()
        raw_status = fields.get("status", "unknown")
        pid = _int(fields.get("pid"))
        result[name] = ReplicaStatus(
            name=name,
            state=_STATE_BY_PM2_STATUS.get(raw_status, ReplicaState.LAUNCHING),
            pid=pid if pid > 0 else None,
            restarts=_int(fields.get("restarted")),
            unstable_restarts=0,
            cpu_percent=0.0,
            memory_bytes=0,
            uptime_s=0.0,
            exit_code=None,
            raw_status=raw_status,
            namespace=fields.get("namespace"),
        )
    return result


class Pm2Runtime:
    """A :class:`~caboose.engine.runtime.Runtime` backed by a PM2 daemon in ``pm2_home``.

    ``pm2_bin`` is PM2's CLI (``node_modules/.bin/pm2``); ``node_bin`` the Node.js used to run it
    and the static server (default: ``node`` on ``PATH``). ``namespace`` tags every process this
    platform instance starts, so :meth:`list_managed` never mistakes someone else's process for an
    orphan. ``worker_interval_ms`` is how often the daemon checks memory limits (PM2's 30 s default
    lets a leaking app grow for too long).
    """

    def __init__(
        self,
        pm2_bin: Path | str,
        pm2_home: Path | str,
        node_bin: Path | str | None = None,
        *,
        namespace: str = "caboose",
        work_dir: Path | None = None,
        worker_interval_ms: int = 5000,
        cli_timeout_s: float = 60.0,
    ) -> None:
        if not _NAMESPACE_RE.fullmatch(namespace):
            raise ValueError(f"invalid PM2 namespace {namespace!r}")
        resolved_node = str(node_bin) if node_bin is not None else shutil.which("node")
        if resolved_node is None:
            raise ProcessManagerError("node not found on PATH: PM2 needs Node.js")
        self.pm2_bin = Path(pm2_bin)
        self.pm2_home = Path(pm2_home)
        self.node_bin = resolved_node
        self.namespace = namespace
        self.work_dir = work_dir if work_dir is not None else self.pm2_home / "ecosystems"
        self.worker_interval_ms = worker_interval_ms
        self.cli_timeout_s = cli_timeout_s
        self.bash_bin = shutil.which("bash") or "/bin/bash"
        self.env_bin = shutil.which("env") or "/usr/bin/env"
        self.timings = Pm2Timings()
        self._prepared = False
        self._prepare_lock = threading.Lock()

    # -- the CLI -------------------------------------------------------------------------------

    def _cli_env(self) -> dict[str, str]:
        """The CLI's (and the daemon's) entire environment: nothing of the platform's own."""
        node_dir = str(Path(self.node_bin).parent)
        return {
            "PATH": os.pathsep.join(
                dict.fromkeys([node_dir, "/usr/local/bin", "/usr/bin", "/bin"])
            ),
            "HOME": str(self.pm2_home),
            "PM2_HOME": str(self.pm2_home),
            "LANG": "C.UTF-8",
            # Read by the daemon when the first call spawns it:
            "PM2_KILL_SIGNAL": "SIGTERM",  # PM2 defaults to SIGINT; apps and Railway expect TERM
            "PM2_WORKER_INTERVAL": str(self.worker_interval_ms),
            "PM2_DISABLE_VERSION_CHECK": "true",
            # Read by the CLI: act on many processes at once, no colours in parsed output.
            "PM2_CONCURRENT_ACTIONS": "32",
            "NO_COLOR": "1",
            "FORCE_COLOR": "0",
        }

    def _argv(self, *args: str) -> list[str]:
        # Run PM2's script with our node rather than through its "#!/usr/bin/env node" shebang.
        return [self.node_bin, str(self.pm2_bin.resolve()), *args]

    def _prepare_home(self) -> None:
        with self._prepare_lock:
            if self._prepared:
                return
            self.pm2_home.mkdir(parents=True, exist_ok=True)
            self.pm2_home.chmod(0o700)
            self.work_dir.mkdir(parents=True, exist_ok=True)
            self.work_dir.chmod(0o700)
            # Present on a fresh home, PM2's first call prints a banner and phones home.
            (self.pm2_home / "touch").touch()
            self._prepared = True

    def _run(self, *args: str, timing: str) -> subprocess.CompletedProcess[str]:
        self._prepare_home()
        started = time.monotonic()
        try:
            result = subprocess.run(
                self._argv(*args),
                env=self._cli_env(),
                cwd=self.pm2_home,
                capture_output=True,
                text=True,
                timeout=self.cli_timeout_s,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired as exc:
            raise ProcessManagerError(f"pm2 {args[0]} timed out after {exc.timeout} s") from exc
        finally:
            setattr(self.timings, timing, time.monotonic() - started)
        if result.returncode != 0:
            detail = (result.stderr.strip() or result.stdout.strip())[-2000:]
            raise ProcessManagerError(f"pm2 {args[0]} failed ({result.returncode}): {detail}")
        return result

    @contextlib.contextmanager
    def _ecosystem_file(self, document: Mapping[str, Any]) -> Iterator[Path]:
        """A private temporary ecosystem file: it may hold the apps' secrets."""
        self._prepare_home()
        fd, name = tempfile.mkstemp(prefix="ecosystem-", suffix=".json", dir=self.work_dir)
        path = Path(name)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(document, fh)
            yield path
        finally:
            path.unlink(missing_ok=True)

    # -- daemon --------------------------------------------------------------------------------

    def ensure_daemon(self) -> float:
        """Start the daemon if it is not running (``pm2 ping``); return how long that took.

        Safe to call at every platform start: a running daemon and its apps are left alone.
        """
        self._run("ping", timing="ping")
        assert self.timings.ping is not None
        return self.timings.ping

    def daemon_pid(self) -> int | None:
        """The daemon's pid from ``PM2_HOME/pm2.pid``, if that process is alive."""
        try:
            pid = int((self.pm2_home / "pm2.pid").read_text().strip())
            os.kill(pid, 0)
        except (OSError, ValueError):
            return None
        return pid

    def kill_daemon(self) -> None:
        """Stop the daemon *and every app it runs* (tests, uninstall). Not for platform stop:
        deployed apps must keep running while the platform restarts."""
        if self.daemon_pid() is None:
            return
        self._run("kill", timing="stop")

    # -- Runtime -------------------------------------------------------------------------------

    def render(self, specs: Sequence[ReplicaSpec]) -> dict[str, Any]:
        """The ecosystem document :meth:`start` would hand PM2 (for tests and dry runs)."""
        return render_ecosystem(
            specs,
            namespace=self.namespace,
            node_bin=self.node_bin,
            bash_bin=self.bash_bin,
            env_bin=self.env_bin,
        )

    def start(self, specs: Sequence[ReplicaSpec]) -> list[ReplicaStatus]:
        """Start every spec with one ``pm2 start <ecosystem>``; return their statuses.

        A name that already exists is restarted with the new definition's environment (PM2's
        start-or-restart), so names should be fresh per deployment (``<service>-<deploy>-<i>``).
        """
        if not specs:
            return []
        if is_privileged():
            as_root = [s.name for s in specs if s.user is None or s.user.uid == 0]
            if as_root:  # a missing user would silently mean root: refuse instead
                raise ProcessManagerError(f"refusing to run {', '.join(as_root)} as root")
        document = self.render(specs)
        for spec in specs:
            spec.out_log.parent.mkdir(parents=True, exist_ok=True)
            spec.err_log.parent.mkdir(parents=True, exist_ok=True)
        with self._ecosystem_file(document) as path:
            result = self._run("start", str(path), "-m", timing="start")
        wanted = [s.name for s in specs]
        listed = parse_mini_list(result.stdout)
        if all(name in listed for name in wanted):
            return [listed[name] for name in wanted]
        statuses = self.status(wanted)  # the listing changed shape: ask properly
        missing = sorted(set(wanted) - {s.name for s in statuses})
        if missing:
            detail = (result.stderr.strip() or result.stdout.strip())[-2000:]
            raise ProcessManagerError(f"pm2 did not start {', '.join(missing)}: {detail}")
        return statuses

    def stop(self, names: Sequence[str]) -> None:
        """Stop the named replicas in parallel (SIGTERM, then SIGKILL after ``kill_timeout_s``).

        Returns once they are dead. They stay registered (``stopped``) until :meth:`delete`.
        """
        self._act("stop", names)

    def delete(self, names: Sequence[str]) -> None:
        """Stop (if running) and unregister the named replicas."""
        self._act("delete", names)

    def _act(self, action: str, names: Sequence[str]) -> None:
        names = [validate_replica_name(n) for n in dict.fromkeys(names)]
        if not names:
            return
        # A list of names as an ecosystem file: PM2 then acts on them concurrently, where
        # "pm2 stop a b c" would stop one after the other. Unknown names are skipped by PM2.
        document = {"apps": [{"name": n, "script": self.env_bin} for n in names]}
        with self._ecosystem_file(document) as path:
            self._run(action, str(path), "-m", timing=action)

    def jlist(self) -> list[dict[str, Any]]:
        """PM2's raw process list (contains apps' environments: never log it)."""
        return parse_jlist(self._run("jlist", timing="jlist").stdout)

    def status(
        self, names: Sequence[str] | None = None, *, prefix: str | None = None
    ) -> list[ReplicaStatus]:
        """Statuses from one ``jlist``: of ``names`` (in that order; missing ones omitted), of the
        names starting with ``prefix``, or of everything in this runtime's namespace."""
        now = time.time()
        statuses = [
            status_from_jlist_entry(p, now=now)
            for p in self.jlist()
            if (p.get("pm2_env") or {}).get("namespace") == self.namespace
        ]
        if names is not None:
            by_name = {s.name: s for s in statuses}
            return [by_name[n] for n in names if n in by_name]
        if prefix is not None:
            return [s for s in statuses if s.name.startswith(prefix)]
        return statuses

    def list_managed(self) -> list[ReplicaStatus]:
        """Every process of this platform instance (its namespace), for reconciliation."""
        return self.status()

    def find_orphans(self, expected: Iterable[str], *, prefix: str = "") -> list[ReplicaStatus]:
        """Managed processes (optionally only those named ``prefix...``) not in ``expected``."""
        keep = set(expected)
        return [s for s in self.status(prefix=prefix) if s.name not in keep]

    @staticmethod
    def is_crash_looping(status: ReplicaStatus, *, threshold: int = 3) -> bool:
        """See :func:`caboose.engine.runtime.is_crash_looping`."""
        return is_crash_looping(status, threshold=threshold)
