"""Free loopback ports for replicas, never the same one to two replicas starting together.

A port is free when binding it succeeds; but between that check and the app binding it (a
second or more later) another deployment could be handed the same port. So a handed-out port is
also *reserved* for ``ttl_s`` seconds: in this process (a set guarded by a lock) and, when
``lock_dir`` is given, across processes on the node (a file created with ``O_EXCL`` per port,
which covers several Celery worker processes). After the TTL the app owns the port by listening
on it, which is what the bind check sees.

The default range sits below Linux's ephemeral range (32768-60999), so a port handed out cannot
be taken in the meantime as the source port of some outgoing connection.
"""

from __future__ import annotations

import os
import random
import socket
import threading
import time
from pathlib import Path

__all__ = ["DEFAULT_PORT_RANGE", "NoFreePortError", "PortAllocator"]

DEFAULT_PORT_RANGE = (20000, 32000)


class NoFreePortError(RuntimeError):
    """Every port of the range is in use or reserved."""


def is_port_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when nothing listens on ``host:port`` and it can be bound right now."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # No SO_REUSEADDR: a port in TIME_WAIT or used as a source port is not "free" either.
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


class PortAllocator:
    """Hands out free TCP ports on ``host`` from ``port_range`` (inclusive start, exclusive end).

    Thread-safe. Use one allocator per process (the platform keeps a module-level one).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port_range: tuple[int, int] = DEFAULT_PORT_RANGE,
        ttl_s: float = 120.0,
        lock_dir: Path | None = None,
    ) -> None:
        low, high = port_range
        if not 1024 <= low < high <= 65536:
            raise ValueError(f"invalid port range {port_range}")
        self.host = host
        self.port_range = (low, high)
        self.ttl_s = ttl_s
        self.lock_dir = lock_dir
        self._reserved: dict[int, float] = {}  # port -> monotonic expiry
        self._lock = threading.Lock()
        self._random = random.Random()  # noqa: S311 - spreading ports, not secrecy
        if lock_dir is not None:
            lock_dir.mkdir(parents=True, exist_ok=True)

    def allocate(self) -> int:
        """One free port, reserved for ``ttl_s``."""
        return self.allocate_many(1)[0]

    def allocate_many(self, count: int) -> list[int]:
        """``count`` distinct free ports, each reserved for ``ttl_s``."""
        low, high = self.port_range
        size = high - low
        if count > size:
            raise NoFreePortError(f"{count} ports asked, range has {size}")
        ports: list[int] = []
        with self._lock:
            now = time.monotonic()
            self._reserved = {p: t for p, t in self._reserved.items() if t > now}
            # Start at a random offset so that allocators in several processes rarely collide
            # even without a lock_dir, then walk the range once.
            offset = self._random.randrange(size)
            for i in range(size):
                port = low + (offset + i) % size
                if port in self._reserved or not is_port_free(port, self.host):
                    continue
                if not self._reserve_across_processes(port):
                    continue
                self._reserved[port] = now + self.ttl_s
                ports.append(port)
                if len(ports) == count:
                    return ports
            for port in ports:  # not enough: hand nothing out
                self._release_locked(port)
        raise NoFreePortError(f"no {count} free ports in {low}-{high - 1} on {self.host}")

    def release(self, port: int) -> None:
        """Give a reservation back early (its replica failed to start or has stopped)."""
        with self._lock:
            self._release_locked(port)

    def is_reserved(self, port: int) -> bool:
        with self._lock:
            expiry = self._reserved.get(port)
            return expiry is not None and expiry > time.monotonic()

    def _release_locked(self, port: int) -> None:
        self._reserved.pop(port, None)
        if self.lock_dir is not None:
            (self.lock_dir / f"{port}.port").unlink(missing_ok=True)

    def _reserve_across_processes(self, port: int) -> bool:
        if self.lock_dir is None:
            return True
        path = self.lock_dir / f"{port}.port"
        for _ in range(2):
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            except FileExistsError:
                try:
                    age = time.time() - path.stat().st_mtime
                except FileNotFoundError:
                    continue  # released meanwhile: try again
                if age <= self.ttl_s:
                    return False
                path.unlink(missing_ok=True)  # stale: its reservation expired
                continue
            os.close(fd)
            return True
        return False
