"""Health checks against real sockets: what a deployment waits on before it takes traffic."""

from __future__ import annotations

import http.server
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from caboose.engine.health import (
    HealthAttempt,
    HealthOutcome,
    pid_is_alive,
    validate_healthcheck_path,
    wait_healthy,
    wait_healthy_url,
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class _Server:
    """A loopback HTTP server whose answer is decided per request by ``responder``."""

    def __init__(self, responder: Callable[[str, dict[str, str]], int]) -> None:
        outer = self
        self.requests: list[tuple[str, dict[str, str]]] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                headers = {k: v for k, v in self.headers.items()}
                outer.requests.append((self.path, headers))
                status = responder(self.path, headers)
                body = b"ok" if status < 400 else b"not yet"
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port: int = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def make_server() -> Iterator[Callable[[Callable[[str, dict[str, str]], int]], _Server]]:
    servers: list[_Server] = []

    def make(responder: Callable[[str, dict[str, str]], int]) -> _Server:
        server = _Server(responder)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()


def test_http_check_waits_for_first_2xx_and_reports_attempts(
    make_server: Callable[..., _Server],
) -> None:
    answers = iter([503, 503, 500])
    server = make_server(lambda path, headers: next(answers, 200))
    seen: list[HealthAttempt] = []

    result = wait_healthy(
        "127.0.0.1",
        server.port,
        "/health?deep=1",
        timeout_s=10,
        on_attempt=seen.append,
        host_header="web-demo.localhost",
    )

    assert result.ok and result.outcome is HealthOutcome.HEALTHY and result.reason == ""
    assert result.attempts == 4 and [a.status_code for a in seen] == [503, 503, 500, 200]
    assert server.requests[-1][0] == "/health?deep=1"
    assert server.requests[-1][1]["Host"] == "web-demo.localhost"
    assert result.elapsed_s < 2  # 50 ms, 75 ms, 112 ms of backoff: well under a second


def test_tcp_check_succeeds_once_the_port_accepts_connections() -> None:
    port = _free_port()
    listener = socket.socket()
    opened = threading.Event()

    def open_later() -> None:
        time.sleep(0.3)  # the "app" boots; the check must keep polling meanwhile
        listener.bind(("127.0.0.1", port))
        listener.listen()
        opened.set()

    threading.Thread(target=open_later, daemon=True).start()
    try:
        result = wait_healthy("127.0.0.1", port, timeout_s=10)
        assert result.ok and opened.is_set()
        assert result.attempts >= 2  # refused at least once before the bind
    finally:
        listener.close()


def test_timeout_reports_the_last_http_status(make_server: Callable[..., _Server]) -> None:
    server = make_server(lambda path, headers: 503)
    started = time.monotonic()
    result = wait_healthy("127.0.0.1", server.port, "/ready", timeout_s=0.6)
    assert result.outcome is HealthOutcome.TIMEOUT and not result.ok
    assert 0.5 <= time.monotonic() - started < 3
    assert result.last_status_code == 503
    assert "HTTP 503" in result.reason and "/ready" in result.reason and "0.6 s" in result.reason


def test_timeout_reports_the_connection_error() -> None:
    port = _free_port()  # nothing listens there
    result = wait_healthy("127.0.0.1", port, "/health", timeout_s=0.4)
    assert result.outcome is HealthOutcome.TIMEOUT
    assert result.last_status_code is None and result.last_error == "connection refused"
    assert "connection refused" in result.reason


def test_fails_fast_when_the_process_died() -> None:
    port = _free_port()
    app = subprocess.Popen([sys.executable, "-c", "import time, sys; time.sleep(0.3); sys.exit(3)"])
    try:
        started = time.monotonic()
        result = wait_healthy(
            "127.0.0.1", port, "/health", timeout_s=30, is_alive=lambda: app.poll() is None
        )
        assert result.outcome is HealthOutcome.PROCESS_EXITED
        assert time.monotonic() - started < 5  # not the 30 s timeout
        assert "exited" in result.reason
    finally:
        app.kill()
        app.wait()


def test_pid_is_alive_follows_a_real_process() -> None:
    app = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    alive = pid_is_alive(app.pid)
    assert alive()
    app.kill()
    app.wait()
    assert not alive()


def test_cancel_stops_the_wait(make_server: Callable[..., _Server]) -> None:
    server = make_server(lambda path, headers: 503)
    cancel = threading.Event()
    threading.Timer(0.2, cancel.set).start()
    started = time.monotonic()
    result = wait_healthy("127.0.0.1", server.port, "/", timeout_s=30, cancel=cancel)
    assert result.outcome is HealthOutcome.CANCELLED
    assert time.monotonic() - started < 3


def test_url_form(make_server: Callable[..., _Server]) -> None:
    server = make_server(lambda path, headers: 204 if path == "/up" else 404)
    assert wait_healthy_url(f"http://127.0.0.1:{server.port}/up", timeout_s=5).ok
    assert wait_healthy_url(f"http://127.0.0.1:{server.port}", timeout_s=5).ok  # TCP check
    with pytest.raises(ValueError):
        wait_healthy_url("ftp://127.0.0.1:21/", timeout_s=1)


@pytest.mark.parametrize(
    "path", ["health", "/a b", "/x\r\nHost: evil", "/\x00", "", "/" + "a" * 3000]
)
def test_unusable_paths_are_refused(path: str) -> None:
    with pytest.raises(ValueError):
        validate_healthcheck_path(path)
    with pytest.raises(ValueError):
        wait_healthy("127.0.0.1", 1, path, timeout_s=1)
