"""The end-to-end harness: the real platform, started the way a user starts it (`caboosed up`).

``platform`` (session-scoped) runs ``caboosed up`` as a subprocess on a temporary data dir with
free loopback ports, waits for its banner, and yields a :class:`Platform`. Everything runs for
real: the embedded Redis, the PM2 daemon, Traefik, a Celery worker and beat, the API. Teardown
sends SIGTERM (what Ctrl-C does), then kills the PM2 daemon of that data dir (``caboosed up``
leaves it running on purpose: deployed apps outlive the platform), so nothing is left running.

Tests that must stop or break a platform take their own from ``launch_platform`` instead of
the shared one.

The CLI's end-to-end suite (``cli/tests/e2e``) loads this file by its path (the two suites'
``tests`` packages share a name), so it imports ``caboose`` and third-party modules only, never
``tests.*``.

The temporary root is world-traversable (0711), like a real data dir's parent, because when the
tests run as root, builds and apps run as unprivileged per-project users who must reach their
directories under it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from caboose.celery_app import CabooseCelery, create_celery_app
from caboose.engine.build.cache import force_rmtree
from caboose.engine.runtime.pm2 import Pm2Runtime
from caboose.server.layout import DataLayout, find_pm2_bin
from caboose.server.redis_embedded import EmbeddedRedis, free_port
from caboose.server.supervisor import kill_recorded

PLATFORM_HOST = "localhost"
STARTUP_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 60.0
_BANNER = b"Caboose is up"


@dataclass
class Platform:
    """A running ``caboosed up``, and what tests need to talk to it.

    - ``base_url``: Traefik's web entrypoint (``http://127.0.0.1:<http port>``): requests there
      need a ``Host`` header (``request`` sets it);
    - ``api_url``: the API directly, bypassing Traefik;
    - ``host``: the platform host (``localhost``), routed to the API;
    - ``url``: the platform's URL as a user (or ``caboose --host``) has it, through Traefik;
    - ``email`` / ``password``: an account made on first use (the instance owner if nobody
      signed up before);
    - ``env``: the environment ``caboosed up`` runs with (use it for other ``caboosed``
      commands on this data dir, see :meth:`caboosed`).
    """

    root: Path
    data_dir: Path
    env: dict[str, str]
    http_port: int
    api_port: int
    process: subprocess.Popen[bytes]
    output_path: Path
    host: str = PLATFORM_HOST
    _celery: CabooseCelery | None = field(default=None, repr=False)
    _account: tuple[str, str] | None = field(default=None, repr=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def url(self) -> str:
        """``http://localhost:<http port>``: ``localhost`` resolves to loopback, where Traefik
        listens, and is the host it routes to the API (the port is not part of the match), so
        a client needs no Host header of its own: what the CLI is given as ``--host``."""
        return f"http://{self.host}:{self.http_port}"

    @property
    def email(self) -> str:
        return self.account()[0]

    @property
    def password(self) -> str:
        return self.account()[1]

    def account(self) -> tuple[str, str]:
        """``(email, password)`` of an account registered through the API on first use (not
        at start: the dashboard's first-run setup page is only shown while nobody exists)."""
        if self._account is None:
            email = f"owner-{uuid.uuid4().hex[:8]}@example.com"
            password = f"e2e-{uuid.uuid4().hex}"
            registered = self.request(
                "POST",
                "/api/v1/auth/register",
                json={"email": email, "password": password, "name": "E2E Owner"},
            )
            assert registered.status_code == 201, registered.text
            self._account = (email, password)
        return self._account

    def fetch(self, url: str, *, timeout: float = 10.0) -> tuple[int, str]:
        """GET a deployed app's public URL (``http://<hostname>:<port>/path``) through Traefik,
        with its hostname as ``Host``: generated ``*.localhost`` names do not resolve everywhere.
        Returns the status code and the body."""
        parts = urlsplit(url)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        response = self.request("GET", path, host=parts.hostname, timeout=timeout)
        return response.status_code, response.text

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def layout(self) -> DataLayout:
        return DataLayout(self.data_dir)

    @property
    def redis_url(self) -> str:
        url = EmbeddedRedis(self.data_dir).attach()
        assert url is not None, "the platform's embedded Redis is not running"
        return url

    def request(
        self, method: str, path: str, *, host: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        """Send one request through Traefik with ``Host: <host or the platform host>``."""
        headers = dict(kwargs.pop("headers", None) or {})
        headers.setdefault("Host", host or self.host)
        timeout = kwargs.pop("timeout", 30.0)
        with httpx.Client(base_url=self.base_url, timeout=timeout) as client:
            return client.request(method, path, headers=headers, **kwargs)

    def client(self, *, host: str | None = None, **kwargs: Any) -> httpx.Client:
        """A client sending through Traefik with that ``Host`` (keeps cookies); close it."""
        headers = {"Host": host or self.host, **kwargs.pop("headers", {})}
        kwargs.setdefault("timeout", 30.0)
        return httpx.Client(base_url=self.base_url, headers=headers, **kwargs)

    def children(self) -> dict[str, int]:
        """Pids of ``up``'s running children by name (redis, traefik, worker, beat, api)."""
        state = self.layout.read_state(self.layout.children_state_file) or {}
        return {name: int(entry["pid"]) for name, entry in state.items()}

    def output(self) -> str:
        """What ``caboosed up`` printed so far (children's lines are prefixed with their name)."""
        return self.output_path.read_bytes().decode("utf-8", errors="replace")

    def celery(self) -> CabooseCelery:
        """A Celery client on the platform's broker (send tasks by name, read results)."""
        if self._celery is None:
            self._celery = create_celery_app(self.redis_url)
        return self._celery

    def pm2(self) -> Pm2Runtime:
        """The platform's PM2 daemon (same PM2_HOME and namespace as the platform uses)."""
        return Pm2Runtime(find_pm2_bin(), self.layout.pm2_home)

    def caboosed(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """Run another ``caboosed`` command on this data dir (e.g. ``create-user``)."""
        return subprocess.run(
            [sys.executable, "-m", "caboose.server", *args],
            env=self.env,
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )

    def wait_until_up(self, timeout_s: float = STARTUP_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        while _BANNER not in self.output_path.read_bytes():
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"caboosed up exited with {self.process.returncode}:\n{self.output()[-6000:]}"
                )
            if time.monotonic() > deadline:
                raise TimeoutError(f"caboosed up not ready in {timeout_s:g} s:\n{self.output()}")
            time.sleep(0.1)  # poll interval, bounded by the deadline

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> int:
        """SIGTERM ``caboosed up`` (as Ctrl-C would) and wait; return its exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def shutdown(self) -> None:
        """Stop everything this platform started, the PM2 daemon (and its apps) included."""
        self.stop()
        kill_recorded(self.layout.children_state_file, timeout_s=5)  # after a failed stop
        with contextlib.suppress(Exception):
            self.pm2().kill_daemon()
        if self._celery is not None:
            self._celery.close()


def e2e_env(data_dir: Path, http_port: int, api_port: int) -> dict[str, str]:
    """Our environment without any CABOOSE_ setting of the developer's, plus the platform's."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("CABOOSE_")}
    env.update(
        {
            "CABOOSE_DATA_DIR": str(data_dir),
            "CABOOSE_HTTP_PORT": str(http_port),
            "CABOOSE_API_PORT": str(api_port),
            "CABOOSE_PLATFORM_HOST": PLATFORM_HOST,
            "CABOOSE_BASE_DOMAIN": "localhost",
            "CABOOSE_LOG_LEVEL": "INFO",
            # End-to-end tests make many calls as one user in a short time.
            "CABOOSE_RATE_LIMITS_ENABLED": "false",
            # No dashboard (nor its build) unless a test asks: see tests/e2e/test_dashboard.py.
            "CABOOSE_DASHBOARD_ENABLED": "false",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def start_platform(root: Path, *, extra_env: dict[str, str] | None = None) -> Platform:
    """Run ``caboosed up`` on ``<root>/data`` and wait until it says it is up."""
    data_dir = root / "data"
    http_port, api_port = free_port(), free_port()
    env = e2e_env(data_dir, http_port, api_port) | (extra_env or {})
    output_path = root / "up.log"
    with output_path.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "caboose.server", "up", "--http-host", "127.0.0.1"],
            env=env,
            cwd=root,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # like a terminal's job: our signals are ours alone
        )
    platform = Platform(
        root=root,
        data_dir=data_dir,
        env=env,
        http_port=http_port,
        api_port=api_port,
        process=process,
        output_path=output_path,
    )
    try:
        platform.wait_until_up()
    except BaseException:
        platform.shutdown()
        raise
    return platform


def _traversable_root() -> Path:
    root = Path(tempfile.mkdtemp(prefix="caboose-e2e-"))
    root.chmod(0o711)
    return root


def _keep_logs_after_failures(request: pytest.FixtureRequest, platform: Platform) -> None:
    """A 500 in a test names a request id; the traceback is in the platform's own logs, which
    go with its data dir. Keep them when the session failed, and say where."""
    if not request.session.testsfailed or not platform.layout.logs_dir.is_dir():
        return
    kept = Path(tempfile.mkdtemp(prefix="caboose-e2e-logs-"))
    shutil.copytree(platform.layout.logs_dir, kept, dirs_exist_ok=True)
    shutil.copy2(platform.output_path, kept / "up.log")
    sys.stderr.write(f"\nthe platform's logs are kept in {kept}\n")
    for log in sorted(kept.glob("*.log")):  # CI's machine goes away: show the tracebacks too
        lines = log.read_text(errors="replace").splitlines()
        starts = [i for i, line in enumerate(lines) if line.startswith("Traceback")][:5]
        for start in starts:
            sys.stderr.write(f"--- {log.name}:{start + 1}\n")
            sys.stderr.write("\n".join(lines[max(0, start - 3) : start + 40]) + "\n")


@pytest.fixture(scope="session")
def platform(request: pytest.FixtureRequest) -> Iterator[Platform]:
    root = _traversable_root()
    running: Platform | None = None
    try:
        running = start_platform(root)
        yield running
    finally:
        if running is not None:
            running.shutdown()
            _keep_logs_after_failures(request, running)
        force_rmtree(root)


@pytest.fixture
def launch_platform() -> Iterator[Callable[[], Platform]]:
    """Start a platform of the test's own (stopped and cleaned up after the test)."""
    started: list[tuple[Path, Platform | None]] = []

    def launch() -> Platform:
        root = _traversable_root()
        started.append((root, None))
        launched = start_platform(root)
        started[-1] = (root, launched)
        return launched

    try:
        yield launch
    finally:
        for root, launched in started:
            if launched is not None:
                launched.shutdown()
            force_rmtree(root)
