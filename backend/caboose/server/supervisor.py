"""A small process supervisor for ``caboosed up``: start in order, restart with backoff, stop in
reverse order.

Why not supervisord or systemd: ``caboosed up`` must work with no installation step and no root,
and stop everything it started (but not the PM2 daemon) on Ctrl-C. This module is the part of
that which is independent of *what* runs, so it can be tested with ``python -c`` children.

How it works:

- Each child runs in **its own session and process group** (``setsid``): a Ctrl-C in the terminal
  reaches the supervisor only, which then stops children in order; and a child's helpers (Celery's
  pool processes) can be killed as a group when the leader is gone.
- One **single-threaded event loop** (``selectors``) reads children's output, notices exits and
  fires restart timers. Signals reach it through ``signal.set_wakeup_fd``: SIGCHLD wakes it when a
  child exits, SIGINT/SIGTERM/SIGHUP/SIGQUIT ask it to stop. Nothing sleeps to wait for
  anything: every wait is a ``select`` bounded by the nearest deadline.
- A child that **exits unexpectedly** is restarted after a delay that doubles with each quick
  failure (a run longer than ``stable_after_s`` resets it); leftovers of its process group are
  killed first so a dead Celery main process does not leave pool processes behind.
- **Stopping** sends each child its ``stop_signal``, waits up to ``stop_timeout_s`` while still
  forwarding its output, then SIGKILLs the whole group. A second stop signal (Ctrl-C twice)
  skips the waiting.
- Pids are recorded in a **state file**, so a later run can stop what a crashed supervisor left
  (:func:`kill_recorded`): children outlive a SIGKILLed supervisor by design (own sessions).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from types import FrameType
from typing import IO, Protocol, TextIO

import psutil

__all__ = [
    "ChildSpec",
    "ChildStartError",
    "ChildState",
    "ChildStatus",
    "MemorySink",
    "OutputSink",
    "RestartPolicy",
    "StopRequestedError",
    "Supervisor",
    "TerminalSink",
    "kill_recorded",
]

logger = logging.getLogger("caboose.supervisor")

_READ_CHUNK = 65536
_MAX_LINE = 65536  # a "line" this long without a newline is forwarded as is
_TAIL_LINES = 40  # kept per child for error messages
_LOOP_WAKE_S = 1.0  # upper bound of one wait when nothing else is due (missed-SIGCHLD safety)


class ChildState(StrEnum):
    PENDING = "pending"  # added, never started
    STARTING = "starting"  # spawned, waiting to be ready
    RUNNING = "running"
    BACKOFF = "backoff"  # exited unexpectedly, restart scheduled
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"  # exited and will not be restarted


class ChildStartError(RuntimeError):
    """A child exited or did not become ready while being started."""


class StopRequestedError(Exception):
    """A stop was requested (signal or :meth:`Supervisor.request_stop`) while starting."""


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    """When to restart a child that exited on its own.

    The n-th consecutive quick failure waits ``initial_delay_s * factor**(n-1)``, capped at
    ``max_delay_s``. A run of at least ``stable_after_s`` resets the count. ``max_attempts``
    consecutive failures (None: no limit) make the supervisor give up on the child.
    """

    initial_delay_s: float = 0.5
    max_delay_s: float = 30.0
    factor: float = 2.0
    stable_after_s: float = 30.0
    max_attempts: int | None = None

    def delay(self, failures: int) -> float:
        return float(
            min(self.max_delay_s, self.initial_delay_s * self.factor ** max(0, failures - 1))
        )


@dataclass(frozen=True, slots=True)
class ChildSpec:
    """How to run one child.

    - ``env``: the child's complete environment (None: inherit the supervisor's);
    - ``ready``: polled after a start until it returns True (None: ready at once); exceptions
      count as "not yet";
    - ``restart``: None never restarts it;
    - ``on_spawn``: called with the pid after every start (to record state elsewhere);
    - ``capture_output``: forward stdout+stderr to the sink, line by line (else discarded).
    """

    name: str
    argv: Sequence[str]
    env: Mapping[str, str] | None = None
    cwd: Path | None = None
    stop_signal: signal.Signals = signal.SIGTERM
    stop_timeout_s: float = 10.0
    ready: Callable[[], bool] | None = None
    ready_timeout_s: float = 30.0
    restart: RestartPolicy | None = field(default_factory=RestartPolicy)
    on_spawn: Callable[[int], None] | None = None
    capture_output: bool = True


@dataclass(frozen=True, slots=True)
class ChildStatus:
    name: str
    state: ChildState
    pid: int | None
    restarts: int
    exit_code: int | None


class OutputSink(Protocol):
    """Where children's output lines go."""

    def write(self, name: str, line: str) -> None: ...

    def close(self) -> None: ...


class TerminalSink:
    """Lines to a terminal, prefixed with the child's name, and each child's lines to
    ``<log_dir>/<name>.log`` (rotated once to ``.log.1`` past ``max_log_bytes``)."""

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        log_dir: Path | None = None,
        max_log_bytes: int = 10 * 1024 * 1024,
        name_width: int = 8,
    ) -> None:
        self.stream: TextIO | None = stream if stream is not None else sys.stdout
        self.log_dir = log_dir
        self.max_log_bytes = max_log_bytes
        self.name_width = name_width
        self._files: dict[str, IO[str]] = {}

    def write(self, name: str, line: str) -> None:
        if self.stream is not None:
            try:
                self.stream.write(f"{name:<{self.name_width}} | {line}\n")
                self.stream.flush()
            except (OSError, ValueError):  # terminal gone: keep the log files going
                self.stream = None
        if self.log_dir is not None:
            handle = self._file(name)
            handle.write(line + "\n")
            handle.flush()
            if handle.tell() > self.max_log_bytes:
                self._rotate(name)

    def _path(self, name: str) -> Path:
        assert self.log_dir is not None
        return self.log_dir / f"{name}.log"

    def _file(self, name: str) -> IO[str]:
        handle = self._files.get(name)
        if handle is None:
            assert self.log_dir is not None
            self.log_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            handle = self._path(name).open("a", encoding="utf-8")
            self._files[name] = handle
        return handle

    def _rotate(self, name: str) -> None:
        self._files.pop(name).close()
        path = self._path(name)
        path.replace(path.with_name(path.name + ".1"))

    def close(self) -> None:
        for handle in self._files.values():
            handle.close()
        self._files.clear()


class MemorySink:
    """Keeps every line (tests)."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def write(self, name: str, line: str) -> None:
        self.lines.append((name, line))

    def of(self, name: str) -> list[str]:
        return [line for child, line in self.lines if child == name]

    def close(self) -> None:
        return None


@dataclass(eq=False)
class _Stream:
    """The read end of one spawned process's output pipe."""

    name: str
    pipe: IO[bytes]
    partial: bytearray = field(default_factory=bytearray)


@dataclass(eq=False)
class _Child:
    spec: ChildSpec
    order: int
    process: subprocess.Popen[bytes] | None = None
    pgid: int | None = None
    create_time: float | None = None
    state: ChildState = ChildState.PENDING
    started_at: float = 0.0
    restarts: int = 0
    failures: int = 0
    restart_at: float | None = None
    ready_deadline: float = 0.0
    exit_code: int | None = None
    streams: list[_Stream] = field(default_factory=list)
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=_TAIL_LINES))


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


class Supervisor:
    """Runs :class:`ChildSpec` children; see the module docstring for the behaviour.

    Typical use (from the main thread)::

        supervisor = Supervisor(sink=TerminalSink(), state_file=path)
        with supervisor.handle_signals():
            try:
                for spec in specs:
                    supervisor.add(spec)
                    supervisor.start(spec.name)   # waits for spec.ready
                supervisor.run()                  # until SIGINT/SIGTERM/SIGHUP/SIGQUIT
            finally:
                supervisor.stop_all()             # reverse order
                supervisor.close()
    """

    def __init__(
        self,
        *,
        sink: OutputSink | None = None,
        state_file: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sink: OutputSink = sink if sink is not None else TerminalSink()
        self.state_file = state_file
        self._clock = clock
        self._children: dict[str, _Child] = {}
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._stop_signal: int | None = None
        self._stop_count = 0
        self._stopping_all = False
        self._closed = False

    # -- children ------------------------------------------------------------------------------

    def add(self, spec: ChildSpec, *, process: subprocess.Popen[bytes] | None = None) -> None:
        """Register ``spec``. With ``process``, adopt an already running process (started
        elsewhere, e.g. by a library that waits for readiness itself): it is supervised from
        now on and restarted from ``spec.argv``."""
        if spec.name in self._children:
            raise ValueError(f"a child named {spec.name!r} exists already")
        child = _Child(spec=spec, order=len(self._children))
        self._children[spec.name] = child
        if process is not None:
            child.process = process
            child.pgid = _own_group(process.pid)
            child.create_time = _create_time(process.pid)
            child.started_at = self._clock()
            child.state = ChildState.RUNNING
            if process.stdout is not None:
                self._watch(child, process.stdout)
            self._write_state()

    def start(self, name: str, *, wait: bool = True) -> None:
        """Start ``name`` and (``wait``) wait until its ``ready`` check passes.

        Raises :class:`ChildStartError` when it exits or misses ``ready_timeout_s`` (it is then
        left stopped, not restarted), :class:`StopRequestedError` when a stop is requested.
        Without ``wait``, call :meth:`wait_ready` later: slow starters can boot meanwhile.
        """
        child = self._children[name]
        if self.stop_requested:
            raise StopRequestedError
        self._spawn(child)
        child.state = ChildState.STARTING
        child.ready_deadline = self._clock() + child.spec.ready_timeout_s
        if wait:
            self.wait_ready(name)

    def wait_ready(self, name: str) -> None:
        """Wait until ``name`` (started with ``wait=False``) is ready; see :meth:`start`."""
        child = self._children[name]
        spec = child.spec
        while child.state is ChildState.STARTING:
            self.pump(0)  # may change child.state (an exit)
            if _state(child) is not ChildState.STARTING:
                break
            if spec.ready is None or _check(spec.ready):
                child.state = ChildState.RUNNING
                assert child.process is not None
                logger.info("%s started (pid %d)", name, child.process.pid)
                return
            if self.stop_requested:
                raise StopRequestedError
            remaining = child.ready_deadline - self._clock()
            if remaining <= 0:
                self._terminate(child)
                self._finish(child, child.process.returncode if child.process else None)
                raise ChildStartError(
                    f"{name} was not ready after {spec.ready_timeout_s:g} s"
                    + self._tail_text(child)
                )
            self.pump(min(0.05, remaining))
        if child.state is ChildState.FAILED:
            self._drain_streams(child, timeout_s=1.0)
            raise ChildStartError(
                f"{name} exited during start-up ({_describe_exit(child.exit_code)})"
                + self._tail_text(child)
            )
        if child.state is not ChildState.RUNNING:
            raise ChildStartError(f"{name} is {child.state.value}, not starting")

    def status(self, name: str) -> ChildStatus:
        child = self._children[name]
        alive = child.process is not None and child.process.poll() is None
        return ChildStatus(
            name=name,
            state=child.state,
            pid=child.process.pid if alive and child.process is not None else None,
            restarts=child.restarts,
            exit_code=child.exit_code,
        )

    def statuses(self) -> list[ChildStatus]:
        return [self.status(name) for name in self._children]

    # -- the loop ------------------------------------------------------------------------------

    @property
    def stop_requested(self) -> bool:
        return self._stop_signal is not None

    @property
    def stop_signal(self) -> int | None:
        """The signal that asked to stop (0 for :meth:`request_stop`), None if none did."""
        return self._stop_signal

    def request_stop(self, signum: int = 0) -> None:
        """Ask :meth:`run` (or a :meth:`start` in progress) to return. Safe from any thread
        and from signal handlers: a flag and one byte into the wake-up pipe."""
        self._stop_count += 1
        if self._stop_signal is None:
            self._stop_signal = signum
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"\0")

    def run(self, *, until: Callable[[], bool] | None = None) -> None:
        """Supervise until a stop is requested (or ``until()`` is true)."""
        while not self.stop_requested and not (until is not None and until()):
            self.pump(_LOOP_WAKE_S)

    def pump(self, timeout_s: float) -> None:
        """One turn of the loop: wait up to ``timeout_s`` for output, a signal or a due
        restart; forward output; handle exits; restart what is due."""
        due = [c.restart_at for c in self._children.values() if c.restart_at is not None]
        if due:
            timeout_s = min(timeout_s, max(0.0, min(due) - self._clock()))
        for key, _ in self._selector.select(max(0.0, timeout_s)):
            if key.data is None:
                self._drain_wakeups()
            else:
                self._read(key.data)
        self._reap()
        self._restart_due()

    @contextlib.contextmanager
    def handle_signals(
        self,
        stop_signals: Sequence[signal.Signals] = (
            signal.SIGINT,
            signal.SIGTERM,
            signal.SIGHUP,
            signal.SIGQUIT,
        ),
    ) -> Iterator[None]:
        """Route ``stop_signals`` to :meth:`request_stop` and let SIGCHLD wake the loop (main
        thread only). Previous handlers are restored on exit.

        Catching them also matters to children: a signal *ignored* here (shells ignore SIGINT
        and SIGQUIT in background jobs) would stay ignored in every child, which would then
        miss its stop signal, while a caught one reverts to the default in a new program.
        SIGHUP stays ignored when it is (``nohup``: the user asked to survive a hang-up).
        """

        def on_stop(signum: int, _frame: FrameType | None) -> None:
            self.request_stop(signum)

        def on_child(_signum: int, _frame: FrameType | None) -> None:
            return None  # the wake-up fd already woke the loop

        previous: dict[signal.Signals, signal._HANDLER] = {}
        for sig in stop_signals:
            if sig == signal.SIGHUP and signal.getsignal(sig) == signal.SIG_IGN:
                continue
            previous[sig] = signal.signal(sig, on_stop)
        previous[signal.SIGCHLD] = signal.signal(signal.SIGCHLD, on_child)
        old_fd = signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        try:
            yield
        finally:
            signal.set_wakeup_fd(old_fd)
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    # -- stopping ------------------------------------------------------------------------------

    def stop(self, name: str) -> None:
        """Stop ``name``: its stop signal, up to ``stop_timeout_s``, then SIGKILL (group)."""
        child = self._children[name]
        child.restart_at = None
        proc = child.process
        if proc is None:
            if child.state is ChildState.PENDING:
                child.state = ChildState.STOPPED
            return
        if proc.poll() is not None:
            self._finish(child, proc.returncode)
            return
        child.state = ChildState.STOPPING
        spec = child.spec
        logger.info("stopping %s (pid %d, %s)", name, proc.pid, spec.stop_signal.name)
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, spec.stop_signal)
        deadline = self._clock() + spec.stop_timeout_s
        while proc.poll() is None:
            remaining = deadline - self._clock()
            if remaining <= 0 or self._stop_count >= 2:
                break
            self.pump(min(remaining, 0.1))
        if proc.poll() is None:
            logger.warning("%s did not stop within %g s: killing it", name, spec.stop_timeout_s)
            self._terminate(child)
        self._finish(child, proc.returncode)

    def stop_all(self) -> None:
        """Stop every child, in the reverse of the order they were added; no more restarts."""
        self._stopping_all = True
        for child in sorted(self._children.values(), key=lambda c: c.order, reverse=True):
            self.stop(child.spec.name)

    def close(self) -> None:
        """Release the loop's resources (after :meth:`stop_all`)."""
        if self._closed:
            return
        self._closed = True
        for child in self._children.values():
            for stream in list(child.streams):
                self._unwatch(child, stream)
        self._selector.close()
        os.close(self._wake_r)
        os.close(self._wake_w)
        self.sink.close()
        if self.state_file is not None:
            self.state_file.unlink(missing_ok=True)

    # -- internals -----------------------------------------------------------------------------

    def _spawn(self, child: _Child) -> None:
        spec = child.spec
        capture = spec.capture_output
        proc = subprocess.Popen(
            list(spec.argv),
            env=dict(spec.env) if spec.env is not None else None,
            cwd=spec.cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
            stderr=subprocess.STDOUT if capture else subprocess.DEVNULL,
            start_new_session=True,
        )
        child.process = proc
        child.pgid = proc.pid  # setsid made it a group leader
        child.create_time = _create_time(proc.pid)
        child.started_at = self._clock()
        child.exit_code = None
        child.restart_at = None
        if proc.stdout is not None:
            self._watch(child, proc.stdout)
        self._write_state()
        if spec.on_spawn is not None:
            spec.on_spawn(proc.pid)

    def _watch(self, child: _Child, pipe: IO[bytes]) -> None:
        os.set_blocking(pipe.fileno(), False)
        stream = _Stream(child.spec.name, pipe)
        child.streams.append(stream)
        self._selector.register(pipe.fileno(), selectors.EVENT_READ, stream)

    def _unwatch(self, child: _Child, stream: _Stream) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(stream.pipe.fileno())
        if stream.partial:
            self._emit(child, bytes(stream.partial))
            stream.partial.clear()
        stream.pipe.close()
        with contextlib.suppress(ValueError):
            child.streams.remove(stream)

    def _read(self, stream: _Stream) -> None:
        child = self._children[stream.name]
        try:
            chunk = os.read(stream.pipe.fileno(), _READ_CHUNK)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            self._unwatch(child, stream)
            return
        stream.partial += chunk
        while True:
            newline = stream.partial.find(b"\n")
            if newline < 0:
                break
            self._emit(child, bytes(stream.partial[:newline]))
            del stream.partial[: newline + 1]
        if len(stream.partial) >= _MAX_LINE:
            self._emit(child, bytes(stream.partial))
            stream.partial.clear()

    def _emit(self, child: _Child, raw: bytes) -> None:
        line = raw.decode("utf-8", errors="replace").rstrip("\r")
        child.tail.append(line)
        self.sink.write(child.spec.name, line)

    def _drain_wakeups(self) -> None:
        with contextlib.suppress(BlockingIOError, InterruptedError):
            while os.read(self._wake_r, 512):
                pass

    def _drain_streams(self, child: _Child, *, timeout_s: float) -> None:
        """Forward what is left in ``child``'s pipes (the writers are gone: EOF comes soon)."""
        deadline = self._clock() + timeout_s
        while child.streams and self._clock() < deadline:
            self.pump(min(0.05, max(0.0, deadline - self._clock())))
        for stream in list(child.streams):
            self._unwatch(child, stream)

    def _reap(self) -> None:
        for child in self._children.values():
            proc = child.process
            if child.state not in (ChildState.RUNNING, ChildState.STARTING) or proc is None:
                continue
            code = proc.poll()
            if code is not None:
                self._on_exit(child, code)

    def _on_exit(self, child: _Child, code: int) -> None:
        name = child.spec.name
        now = self._clock()
        uptime = now - child.started_at
        child.exit_code = code
        self._kill_group(child, leader_gone=True)  # a dead leader's helpers (Celery's pool) too
        if child.state is ChildState.STARTING:
            child.state = ChildState.FAILED
            self._write_state()
            return
        policy = child.spec.restart
        if policy is None and code == 0 and not self._stopping_all:
            child.state = ChildState.STOPPED  # a one-shot child (a build) that finished
            logger.info("%s finished", name)
            self._write_state()
            return
        if policy is None or self._stopping_all:
            child.state = ChildState.FAILED
            logger.warning("%s exited (%s); not restarted", name, _describe_exit(code))
            self._write_state()
            return
        if uptime >= policy.stable_after_s:
            child.failures = 0
        child.failures += 1
        if policy.max_attempts is not None and child.failures > policy.max_attempts:
            child.state = ChildState.FAILED
            logger.error(
                "%s exited (%s) %d times in a row: giving up%s",
                name,
                _describe_exit(code),
                child.failures,
                self._tail_text(child),
            )
            self._write_state()
            return
        delay = policy.delay(child.failures)
        child.state = ChildState.BACKOFF
        child.restart_at = now + delay
        logger.warning(
            "%s exited unexpectedly (%s) after %.1f s; restarting in %.1f s",
            name,
            _describe_exit(code),
            uptime,
            delay,
        )
        self._write_state()

    def _restart_due(self) -> None:
        if self.stop_requested or self._stopping_all:
            return
        now = self._clock()
        for child in self._children.values():
            if child.state is not ChildState.BACKOFF or child.restart_at is None:
                continue
            if child.restart_at > now:
                continue
            child.restarts += 1
            try:
                self._spawn(child)
            except OSError as exc:
                logger.error("could not restart %s: %s", child.spec.name, exc)
                self._on_exit(child, -1 if child.exit_code is None else child.exit_code)
                continue
            child.state = ChildState.RUNNING
            assert child.process is not None
            logger.info(
                "%s restarted (pid %d, restart #%d)",
                child.spec.name,
                child.process.pid,
                child.restarts,
            )

    def _terminate(self, child: _Child) -> None:
        """SIGKILL the child's group (or the child) and reap it."""
        proc = child.process
        if proc is None:
            return
        self._kill_group(child)
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)

    def _kill_group(self, child: _Child, *, leader_gone: bool = False) -> None:
        """SIGKILL whatever is left in the child's process group (never our own group).

        With ``leader_gone``, this is the last time: once the leader is reaped and its group
        empty, the number may be reused, so the group is forgotten.
        """
        pgid = child.pgid
        if leader_gone:
            child.pgid = None
        if pgid is None or pgid == os.getpgrp():
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)

    def _finish(self, child: _Child, code: int | None) -> None:
        self._kill_group(child, leader_gone=True)
        self._drain_streams(child, timeout_s=1.0)
        child.exit_code = code
        child.state = ChildState.STOPPED
        # Exiting "killed by" its own stop signal is a clean stop (uvicorn re-raises it).
        clean = code == 0 or code == -child.spec.stop_signal
        logger.info("%s stopped%s", child.spec.name, "" if clean else f" ({_describe_exit(code)})")
        self._write_state()

    def _tail_text(self, child: _Child) -> str:
        if not child.tail:
            return ""
        return "; its last output:\n  " + "\n  ".join(child.tail)

    def _write_state(self) -> None:
        if self.state_file is None:
            return
        state = {
            child.spec.name: {
                "pid": child.process.pid,
                "pgid": child.pgid,
                "create_time": child.create_time,
            }
            for child in self._children.values()
            if child.process is not None and child.process.returncode is None
        }
        _write_json_atomic(self.state_file, state)


def _state(child: _Child) -> ChildState:
    """``child.state`` read afresh (for mypy, which keeps a narrowed attribute across calls)."""
    return child.state


def _check(ready: Callable[[], bool]) -> bool:
    try:
        return bool(ready())
    except Exception:  # a readiness probe failing is the answer "not yet"
        return False


def _own_group(pid: int) -> int | None:
    """``pid``'s process group if ``pid`` leads it (and it is not ours), else None."""
    try:
        pgid = os.getpgid(pid)
    except ProcessLookupError:
        return None
    return pgid if pgid == pid and pgid != os.getpgrp() else None


def _create_time(pid: int) -> float | None:
    try:
        return float(psutil.Process(pid).create_time())
    except (psutil.Error, OSError):
        return None


def _write_json_atomic(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def kill_recorded(state_file: Path, *, timeout_s: float = 10.0) -> list[int]:
    """Stop the processes a previous supervisor recorded in ``state_file`` and that still run
    (same pid *and* start time, so a recycled pid is never hit): SIGTERM to each group, SIGKILL
    to what remains after ``timeout_s``. Returns the pids found; removes the file."""
    try:
        state = json.loads(state_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    found: list[psutil.Process] = []
    groups: list[int] = []
    for entry in state.values() if isinstance(state, dict) else ():
        try:
            pid = int(entry["pid"])
            recorded = entry.get("create_time")
            process = psutil.Process(pid)
            if recorded is None or abs(process.create_time() - float(recorded)) > 0.01:
                continue
        except (psutil.Error, KeyError, TypeError, ValueError):
            continue
        found.append(process)
        pgid = entry.get("pgid")
        if isinstance(pgid, int) and pgid != os.getpgrp():
            groups.append(pgid)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGTERM)
        else:
            with contextlib.suppress(psutil.Error):
                process.terminate()
    _, alive = psutil.wait_procs(found, timeout=timeout_s)
    for process in alive:
        with contextlib.suppress(psutil.Error):
            process.kill()
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
    psutil.wait_procs(alive, timeout=5)
    state_file.unlink(missing_ok=True)
    return [p.pid for p in found]
