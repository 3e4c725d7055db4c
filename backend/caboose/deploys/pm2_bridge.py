"""PM2 without a Node start per call: one long-lived Node process per worker drives the daemon.

Why: every ``pm2`` CLI call starts Node and loads PM2 (0.4 to 1 s on a small machine), and a deploy
needs at least two (start the new replicas, delete the old ones). The deploy benchmark's
targets (a warm redeploy in 1.5 s, a rollback in 1 s, the app's own boot included) leave no room
for that. The bridge is a small script that loads PM2's programmatic API once (``require('pm2')``,
the same code the CLI runs, with the same minimal environment as the CLI) and then serves JSON
requests on stdin: ``start``/``stop``/``delete`` an ecosystem file, ``list``. A call then costs
a few milliseconds plus what PM2 itself does.

:class:`BridgedPm2Runtime` is :class:`~caboose.engine.runtime.pm2.Pm2Runtime` with those four
operations routed through the bridge; everything else (rendering, validation, isolation rules,
status parsing) is the runtime's own. If the bridge cannot run (no Node, PM2 changed, the daemon
restarted under it), the call falls back to the CLI, so a deploy never depends on it.

What crosses the pipe is trimmed in the bridge: process lists carry name, pid, status and
counters, never the apps' environments (which hold their secrets). PM2's own chatter goes to
stderr, kept only to explain a failure.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import selectors
import subprocess
import threading
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from caboose.engine.runtime import (
    ProcessManagerError,
    ReplicaSpec,
    ReplicaStatus,
    validate_replica_name,
)
from caboose.engine.runtime.pm2 import Pm2Runtime, status_from_jlist_entry
from caboose.engine.sandbox import is_privileged

__all__ = ["BRIDGE_SCRIPT", "BridgedPm2Runtime", "Pm2Bridge"]

logger = logging.getLogger("caboose.deploys.pm2")

# argv[1]: PM2's package directory. Requests and answers are JSON lines.
BRIDGE_SCRIPT = r"""
'use strict';
const util = require('util');
const toStderr = (...args) => process.stderr.write(util.format(...args) + '\n');
console.log = console.info = console.warn = console.error = toStderr;
const pm2 = require(process.argv[1]);
const readline = require('readline');

const ENV_KEYS = ['status', 'restart_time', 'unstable_restarts', 'namespace', 'pm_uptime',
                  'created_at', 'exit_code', 'stop_exit_codes', 'name'];
function trim(proc) {
  const env = proc.pm2_env || {};
  const out = {name: proc.name || env.name, pid: proc.pid, pm_id: proc.pm_id,
               monit: proc.monit || {}, pm2_env: {}};
  for (const key of ENV_KEYS) if (key in env) out.pm2_env[key] = env[key];
  return out;
}
function answer(id, error, result) {
  const message = error ? {id, ok: false, error: String(error && error.message || error)}
                        : {id, ok: true, result};
  process.stdout.write(JSON.stringify(message) + '\n');
}
function list(cb) { pm2.list((err, procs) => cb(err, err ? null : procs.map(trim))); }

const ops = {
  ping: (req, cb) => cb(null, 'pong'),
  list: (req, cb) => list(cb),
  start: (req, cb) => pm2.start(req.file, (err) => err ? cb(err) : list(cb)),
  stop: (req, cb) => pm2.stop(req.file, (err) => cb(err, true)),
  delete: (req, cb) => pm2.delete(req.file, (err) => cb(err, true)),
};

pm2.connect((err) => {
  if (err) { answer(0, err); process.exit(2); }
  answer(0, null, 'ready');
  const rl = readline.createInterface({input: process.stdin});
  rl.on('line', (line) => {
    let req;
    try { req = JSON.parse(line); } catch (e) { return answer(-1, e); }
    const op = ops[req.op];
    if (!op) return answer(req.id, 'unknown operation ' + req.op);
    try { op(req, (err, result) => answer(req.id, err, result)); }
    catch (e) { answer(req.id, e); }
  });
  rl.on('close', () => { pm2.disconnect(); process.exit(0); });
});
"""

_STARTUP_TIMEOUT_S = 30.0
_STDERR_LINES = 40


class Pm2Bridge:
    """One Node process holding a connection to the PM2 daemon; ``call`` is thread-safe."""

    def __init__(self, runtime: Pm2Runtime, *, timeout_s: float) -> None:
        self.runtime = runtime
        self.timeout_s = timeout_s
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._next_id = 0
        self._buffer = b""
        self._stderr: deque[str] = deque(maxlen=_STDERR_LINES)
        self._daemon_pid: int | None = None

    def _module_dir(self) -> Path:
        # node_modules/.bin/pm2 -> node_modules/pm2/bin/pm2: the package is two levels up.
        return self.runtime.pm2_bin.resolve().parents[1]

    def _spawn(self) -> subprocess.Popen[bytes]:
        self.runtime._prepare_home()
        process = subprocess.Popen(
            [self.runtime.node_bin, "-e", BRIDGE_SCRIPT, str(self._module_dir())],
            env=self.runtime._cli_env(),
            cwd=self.runtime.pm2_home,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert process.stderr is not None
        threading.Thread(
            target=self._drain_stderr, args=(process.stderr,), daemon=True, name="pm2-bridge-err"
        ).start()
        self._process = process
        self._buffer = b""
        ready = self._read(0, time.monotonic() + _STARTUP_TIMEOUT_S)
        if ready != "ready":
            raise ProcessManagerError(f"the PM2 bridge did not start: {ready!r}")
        self._daemon_pid = self.runtime.daemon_pid()
        return process

    def _drain_stderr(self, stream: Any) -> None:
        for raw in iter(stream.readline, b""):
            self._stderr.append(raw.decode("utf-8", "replace").rstrip())

    def _read(self, wanted: int, deadline: float) -> Any:
        process = self._process
        assert process is not None and process.stdout is not None
        fd = process.stdout.fileno()
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while True:
                while b"\n" in self._buffer:
                    line, self._buffer = self._buffer.split(b"\n", 1)
                    message = json.loads(line)
                    if message.get("id") != wanted:
                        continue  # an answer to a request given up on (timed out)
                    if not message.get("ok"):
                        raise ProcessManagerError(f"pm2: {message.get('error')}")
                    return message.get("result")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("the PM2 bridge did not answer in time")
                if not selector.select(remaining):
                    continue
                chunk = os.read(fd, 65536)
                if not chunk:
                    detail = " | ".join(list(self._stderr)[-5:])
                    raise ProcessManagerError(f"the PM2 bridge exited: {detail}")
                self._buffer += chunk

    def call(self, op: str, **args: Any) -> Any:
        with self._lock:
            if self._process is not None and self.runtime.daemon_pid() != self._daemon_pid:
                # The daemon was restarted (or killed) under the bridge: its connection is dead
                # and PM2's client would wait to reconnect rather than fail. Start afresh.
                self._kill()
            if self._process is None or self._process.poll() is not None:
                self._spawn()
            process = self._process
            assert process is not None and process.stdin is not None
            self._next_id += 1
            request = {"id": self._next_id, "op": op, **args}
            try:
                process.stdin.write(json.dumps(request).encode() + b"\n")
                process.stdin.flush()
                return self._read(self._next_id, time.monotonic() + self.timeout_s)
            except (OSError, TimeoutError, ValueError, ProcessManagerError):
                self._kill()
                raise

    def _kill(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        with contextlib.suppress(OSError):
            process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(5)
        for stream in (process.stdin, process.stdout, process.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()

    def close(self) -> None:
        """Stop the bridge (the daemon and its apps keep running)."""
        with self._lock:
            process = self._process
            if process is not None and process.stdin is not None:
                with contextlib.suppress(OSError):
                    process.stdin.close()  # the bridge disconnects and exits on EOF
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(5)
            self._kill()


class BridgedPm2Runtime(Pm2Runtime):
    """A :class:`Pm2Runtime` whose start, stop, delete and process list go through a
    :class:`Pm2Bridge` (falling back to the CLI when the bridge fails)."""

    def __init__(self, pm2_bin: Path | str, pm2_home: Path | str, **options: Any) -> None:
        super().__init__(pm2_bin, pm2_home, **options)
        self.bridge = Pm2Bridge(self, timeout_s=self.cli_timeout_s)
        self.bridge_failures = 0

    def _bridged(self, op: str, **args: Any) -> Any:
        try:
            return self.bridge.call(op, **args)
        except (ProcessManagerError, OSError, TimeoutError, ValueError) as exc:
            self.bridge_failures += 1
            logger.warning("PM2 bridge: %s failed (%s); using the CLI", op, exc)
            raise _FallBackError from exc

    def start(self, specs: Sequence[ReplicaSpec]) -> list[ReplicaStatus]:
        if not specs:
            return []
        if is_privileged():
            as_root = [s.name for s in specs if s.user is None or s.user.uid == 0]
            if as_root:
                raise ProcessManagerError(f"refusing to run {', '.join(as_root)} as root")
        document = self.render(specs)
        for spec in specs:
            spec.out_log.parent.mkdir(parents=True, exist_ok=True)
            spec.err_log.parent.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        try:
            with self._ecosystem_file(document) as path:
                procs = self._bridged("start", file=str(path))
        except _FallBackError:
            return super().start(specs)
        finally:
            self.timings.start = time.monotonic() - started
        now = time.time()
        by_name = {
            status.name: status
            for status in (status_from_jlist_entry(p, now=now) for p in procs)
            if status.namespace in (None, self.namespace)
        }
        missing = [s.name for s in specs if s.name not in by_name]
        if missing:
            raise ProcessManagerError(f"pm2 did not start {', '.join(missing)}")
        return [by_name[s.name] for s in specs]

    def _act(self, action: str, names: Sequence[str]) -> None:
        names = [validate_replica_name(n) for n in dict.fromkeys(names)]
        if not names:
            return
        document = {"apps": [{"name": n, "script": self.env_bin} for n in names]}
        started = time.monotonic()
        try:
            with self._ecosystem_file(document) as path:
                self._bridged(action, file=str(path))
        except _FallBackError:
            super()._act(action, names)
        finally:
            setattr(self.timings, action, time.monotonic() - started)

    def jlist(self) -> list[dict[str, Any]]:
        started = time.monotonic()
        try:
            procs = self._bridged("list")
        except _FallBackError:
            return super().jlist()
        finally:
            self.timings.jlist = time.monotonic() - started
        return [p for p in procs if isinstance(p, dict)]

    def close(self) -> None:
        self.bridge.close()


class _FallBackError(Exception):
    """The bridge failed this call: do it with the CLI."""
