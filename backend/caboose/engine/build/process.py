"""Running one build step: as the project's user, streamed line by line, killable.

Every line a tool prints reaches the reporter as soon as it is printed (stdout and stderr are
merged so their order is kept; tools are asked to be unbuffered). A step runs in its own
process group: on timeout or cancellation the whole group is killed, and once the step's main
process ends, whatever it left running in the background is killed too, so a build never leaves
processes behind. Output is read with a selector rather than a blocking loop, so a grandchild
that escaped the group and still holds the pipe cannot hang the build.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from caboose.engine.sandbox import AppUser, is_privileged
from caboose.engine.types import OperationCancelledError, Reporter, StepTimeoutError

MAX_LINE_CHARS = 8192
_DRAIN_AFTER_EXIT = 2.0


@dataclass(frozen=True, slots=True)
class StepResult:
    """How a step ended: its exit code and its last lines (to quote in an error)."""

    exit_code: int
    tail: tuple[str, ...]
    seconds: float

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    @property
    def output(self) -> str:
        return "\n".join(self.tail)


def run_step(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    user: AppUser,
    reporter: Reporter,
    deadline: float,
    cancel: threading.Event | None = None,
    stream: str = "build",
    tail_lines: int = 60,
) -> StepResult:
    """Run ``argv`` (never a shell string) and stream its output; ``deadline`` is monotonic.

    Raises ``StepTimeoutError`` past the deadline and ``OperationCancelledError`` when
    ``cancel`` is set; a non-zero exit is returned, not raised (the caller knows what it means).
    """
    if cancel is not None and cancel.is_set():
        raise OperationCancelledError("build cancelled")
    as_other = is_privileged() and not user.is_current_user
    started = time.monotonic()
    proc = subprocess.Popen(
        list(argv),
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        close_fds=True,
        user=user.uid if as_other else None,
        group=user.gid if as_other else None,
        extra_groups=[] if as_other else None,
        umask=0o077 if as_other else -1,
    )
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    os.set_blocking(fd, False)
    selector = selectors.DefaultSelector()
    selector.register(fd, selectors.EVENT_READ)
    pending = bytearray()
    tail: deque[str] = deque(maxlen=tail_lines)
    exited_at: float | None = None
    reason: str | None = None

    def emit(raw: bytes) -> None:
        text = raw.decode("utf-8", "replace").rstrip("\r")
        if "\r" in text:  # progress bars: keep what a terminal would finally show
            text = next((p for p in reversed(text.split("\r")) if p.strip()), "")
        text = text.rstrip()
        if len(text) > MAX_LINE_CHARS:
            text = text[:MAX_LINE_CHARS] + " [line truncated]"
        tail.append(text)
        reporter.log(text, stream=stream)

    try:
        while True:
            eof = False
            for _key, _mask in selector.select(timeout=0.1):
                try:
                    chunk = os.read(fd, 65536)
                except BlockingIOError:
                    continue
                if not chunk:
                    eof = True
                    break
                pending.extend(chunk)
                while (newline := pending.find(b"\n")) >= 0:
                    emit(bytes(pending[:newline]))
                    del pending[: newline + 1]
                if len(pending) > MAX_LINE_CHARS * 4:
                    emit(bytes(pending))
                    pending.clear()
            if eof:
                # The pipe closed, but the process may still be on its way out (coreutils
                # close stdout before exiting): wait for it rather than kill it.
                reason = _wait_for_exit(proc, deadline, cancel) or reason
                break
            now = time.monotonic()
            if reason is None and cancel is not None and cancel.is_set():
                reason = "cancelled"
                _kill_group(proc)
            if reason is None and now >= deadline:
                reason = "timeout"
                _kill_group(proc)
            if exited_at is None and proc.poll() is not None:
                exited_at = now
                _kill_group(proc)  # background leftovers of a finished step
            if exited_at is not None and now - exited_at > _DRAIN_AFTER_EXIT:
                break  # something escaped the group and holds the pipe open
    finally:
        selector.close()
        if proc.poll() is None:
            _kill_group(proc)
        proc.wait()
        proc.stdout.close()
    if pending:
        emit(bytes(pending))
    if reason == "cancelled":
        raise OperationCancelledError("build cancelled")
    if reason == "timeout":
        raise StepTimeoutError("the build ran past its time limit and was stopped")
    return StepResult(
        exit_code=proc.returncode, tail=tuple(tail), seconds=time.monotonic() - started
    )


def _wait_for_exit(
    proc: subprocess.Popen[bytes], deadline: float, cancel: threading.Event | None
) -> str | None:
    """Wait for the main process after its output ended; kill it on deadline or cancel."""
    while True:
        try:
            proc.wait(timeout=0.05)
        except subprocess.TimeoutExpired:
            if cancel is not None and cancel.is_set():
                _kill_group(proc)
                return "cancelled"
            if time.monotonic() >= deadline:
                _kill_group(proc)
                return "timeout"
            continue
        _kill_group(proc)  # background leftovers of a finished step
        return None


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    except PermissionError:  # pragma: no cover - root can signal anyone
        proc.kill()
