"""Is a new replica ready for traffic? Poll it until it answers, or say precisely why not.

A deployment only takes traffic after this says yes, so it decides both speed and safety of a
swap: polling starts at 50 ms and backs off gently (most apps boot in well under a second, and
each poll is cheap), and the reason of a failure (last HTTP status, last connection error, or the
process having exited) becomes the deployment's ``status_reason``, which is what the user reads.

With a ``path`` the replica is healthy at the first 2xx answer to ``GET path`` (Railway's
``healthcheckPath``); without one, as soon as its port accepts TCP connections. The caller passes
``is_alive`` (e.g. :func:`pid_is_alive`) so that an app that crashed at boot fails the check at
once instead of after the whole timeout.
"""

from __future__ import annotations

import http.client
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit

__all__ = [
    "HealthAttempt",
    "HealthOutcome",
    "HealthResult",
    "pid_is_alive",
    "validate_healthcheck_path",
    "wait_healthy",
    "wait_healthy_url",
]

_USER_AGENT = "caboose-healthcheck/1"


class HealthOutcome(StrEnum):
    HEALTHY = "healthy"
    TIMEOUT = "timeout"
    PROCESS_EXITED = "process_exited"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class HealthAttempt:
    """One probe, reported to ``on_attempt`` (for the deploy log)."""

    number: int
    elapsed_s: float
    status_code: int | None  # HTTP status, None for a TCP check or when nothing answered
    error: str | None  # why the probe failed to get an answer, if it did


@dataclass(frozen=True, slots=True)
class HealthResult:
    outcome: HealthOutcome
    reason: str  # empty when healthy; otherwise one sentence for status_reason
    attempts: int
    elapsed_s: float
    last_status_code: int | None
    last_error: str | None

    @property
    def ok(self) -> bool:
        return self.outcome is HealthOutcome.HEALTHY


def validate_healthcheck_path(path: str) -> str:
    """``path`` if usable as a request target, else ``ValueError``. It comes from user config."""
    if not path.startswith("/") or len(path) > 2048:
        raise ValueError(f"healthcheck path must start with '/': {path!r}")
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in path):
        raise ValueError(f"healthcheck path contains whitespace or control characters: {path!r}")
    return path


def pid_is_alive(pid: int) -> Callable[[], bool]:
    """A liveness callable for ``wait_healthy``: true while process ``pid`` exists.

    Cheap (one ``kill(pid, 0)``), unlike asking the process manager. If the manager restarts a
    crashed app, it gets a new pid, so this still reports the crash.
    """

    def alive() -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True  # exists, owned by someone else
        return True

    return alive


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timed out"
    if isinstance(exc, ConnectionResetError):
        return "connection reset"
    if isinstance(exc, http.client.RemoteDisconnected):
        return "connection closed without a response"
    if isinstance(exc, http.client.HTTPException):
        return f"invalid HTTP response ({type(exc).__name__})"
    return str(exc) or type(exc).__name__


def _probe_tcp(host: str, port: int, timeout: float) -> tuple[int | None, str | None]:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None, None
    except OSError as exc:
        return None, _describe(exc)


def _probe_http(
    host: str, port: int, path: str, timeout: float, host_header: str | None
) -> tuple[int | None, str | None]:
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(
            "GET",
            path,
            headers={
                "Host": host_header or f"{host}:{port}",
                "User-Agent": _USER_AGENT,
                "Accept": "*/*",
                "Connection": "close",
            },
        )
        response = conn.getresponse()
        response.read(65536)  # drain a little so the app does not log a broken pipe
        return response.status, None
    except (OSError, http.client.HTTPException) as exc:
        return None, _describe(exc)
    finally:
        conn.close()


def wait_healthy(
    host: str,
    port: int,
    path: str | None = None,
    *,
    timeout_s: float,
    cancel: threading.Event | None = None,
    is_alive: Callable[[], bool] | None = None,
    on_attempt: Callable[[HealthAttempt], None] | None = None,
    host_header: str | None = None,
    request_timeout_s: float = 5.0,
    initial_delay_s: float = 0.05,
    max_delay_s: float = 0.5,
) -> HealthResult:
    """Poll ``host:port`` (``GET path`` if given) until healthy, the process died, ``cancel``
    is set, or ``timeout_s`` passed. Never raises for an unhealthy app: read the result."""
    if path is not None:
        validate_healthcheck_path(path)
    if timeout_s <= 0:
        raise ValueError("timeout_s must be positive")
    waiter = cancel if cancel is not None else threading.Event()
    started = time.monotonic()
    deadline = started + timeout_s
    delay = initial_delay_s
    attempts = 0
    last_status: int | None = None
    last_error: str | None = None
    target = f"{path} on port {port}" if path is not None else f"port {port}"

    def result(outcome: HealthOutcome, reason: str) -> HealthResult:
        return HealthResult(
            outcome=outcome,
            reason=reason,
            attempts=attempts,
            elapsed_s=time.monotonic() - started,
            last_status_code=last_status,
            last_error=last_error,
        )

    def exited() -> HealthResult:
        return result(
            HealthOutcome.PROCESS_EXITED,
            f"the process exited before {target} became healthy"
            + (f" (last: {last_error})" if last_error and attempts else ""),
        )

    while True:
        if waiter.is_set():
            return result(HealthOutcome.CANCELLED, "cancelled while waiting for the healthcheck")
        if is_alive is not None and not is_alive():
            return exited()
        remaining = deadline - time.monotonic()
        per_request = max(0.05, min(request_timeout_s, remaining))
        attempts += 1
        if path is None:
            status, error = _probe_tcp(host, port, per_request)
            healthy = error is None
        else:
            status, error = _probe_http(host, port, path, per_request, host_header)
            healthy = status is not None and 200 <= status < 300
        last_status, last_error = status, error
        if on_attempt is not None:
            on_attempt(HealthAttempt(attempts, time.monotonic() - started, status, error))
        if healthy:
            return result(HealthOutcome.HEALTHY, "")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            if is_alive is not None and not is_alive():
                return exited()
            if last_status is not None:
                last = f"last answer HTTP {last_status}"
            else:
                last = f"last error: {last_error or 'no answer'}"
            return result(
                HealthOutcome.TIMEOUT,
                f"healthcheck {target} not healthy after {timeout_s:g} s ({last})",
            )
        waiter.wait(min(delay, remaining))
        delay = min(delay * 1.5, max_delay_s)


def wait_healthy_url(
    url: str,
    *,
    timeout_s: float,
    cancel: threading.Event | None = None,
    is_alive: Callable[[], bool] | None = None,
    on_attempt: Callable[[HealthAttempt], None] | None = None,
    host_header: str | None = None,
) -> HealthResult:
    """:func:`wait_healthy` for ``http://host:port/path`` (a URL without a path: TCP check)."""
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname is None or parts.port is None:
        raise ValueError(f"expected http://host:port[/path], got {url!r}")
    path = parts.path or None
    if path is not None and parts.query:
        path = f"{path}?{parts.query}"
    return wait_healthy(
        parts.hostname,
        parts.port,
        path,
        timeout_s=timeout_s,
        cancel=cancel,
        is_alive=is_alive,
        on_attempt=on_attempt,
        host_header=host_header,
    )
