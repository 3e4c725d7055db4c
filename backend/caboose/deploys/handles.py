"""The engine objects a worker process drives: PM2, Traefik's route files, ports, build tools.

One set per process and data dir, made on first use. PM2 and Traefik are shared by every worker
process of the node (PM2's daemon in ``<data>/pm2``, route files in ``<data>/traefik/dynamic``);
ports are reserved across processes through lock files (:class:`PortAllocator` ``lock_dir``).

Traefik's API address is only known once ``caboosed up`` started Traefik (it picks a free port
and writes it to ``run/traefik.json``), so the router reads it at each use. Without it (Traefik
run by someone else, with a file provider on the same directory) routes are still written; the
pipeline just cannot confirm that Traefik applied them and says so in the log.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from caboose.deploys.pm2_bridge import BridgedPm2Runtime
from caboose.engine.build import BuildTools, discover_build_tools
from caboose.engine.routing import Route, Router
from caboose.engine.routing.traefik import TraefikRouter
from caboose.engine.runtime import Runtime
from caboose.engine.runtime.pm2 import Pm2Runtime
from caboose.engine.runtime.ports import PortAllocator
from caboose.paths import PlatformPaths
from caboose.server.layout import find_pm2_bin

__all__ = ["EngineHandles", "ManagedRuntime", "PlatformRouter", "RouteFiles", "engine_handles"]

logger = logging.getLogger("caboose.deploys")


class PlatformRouter:
    """A :class:`~caboose.engine.routing.Router` on the data dir's Traefik, whose API address
    is read from ``caboose up``'s state file when needed."""

    def __init__(self, paths: PlatformPaths, api_url: str | None = None) -> None:
        self.paths = paths
        self.fixed_api_url = api_url
        paths.traefik_dynamic_dir.mkdir(parents=True, exist_ok=True)

    def _router(self) -> tuple[TraefikRouter, bool]:
        api_url = self.fixed_api_url or self.paths.layout.traefik_api_url()
        router = TraefikRouter(self.paths.traefik_dynamic_dir, api_url or "http://127.0.0.1:9")
        return router, api_url is not None

    def apply(self, route: Route) -> None:
        self._router()[0].apply(route)

    def remove(self, name: str) -> None:
        self._router()[0].remove(name)

    def list_routes(self) -> list[str]:
        return self._router()[0].list_routes()

    def read_route(self, name: str) -> dict[str, Any] | None:
        return self._router()[0].read_route(name)

    def wait_applied(self, name: str, servers: Sequence[str], timeout_s: float = 10.0) -> float:
        router, known = self._router()
        if not known:
            logger.warning("Traefik's API address is unknown: route %s not confirmed", name)
            return 0.0
        return router.wait_applied(name, servers, timeout_s)


class RouteFiles(Router, Protocol):
    """A router whose routes can be read back (reconciliation compares them)."""

    def read_route(self, name: str) -> dict[str, Any] | None: ...


class ManagedRuntime(Runtime, Protocol):
    """A runtime as the tasks use it (PM2 in production, a fake in tests)."""


@dataclass
class EngineHandles:
    """What the deploy tasks of one process use (built by :func:`engine_handles`)."""

    paths: PlatformPaths
    runtime: ManagedRuntime
    router: RouteFiles
    ports: PortAllocator
    _tools: BuildTools | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def tools(self) -> BuildTools:
        """The build toolchain, discovered once (it probes the interpreters)."""
        with self._lock:
            if self._tools is None:
                self._tools = discover_build_tools()
            return self._tools


def use_pm2_bridge() -> bool:
    """``CABOOSE_PM2_BRIDGE=0`` drives PM2 through its CLI only (see ``pm2_bridge``)."""
    return os.environ.get("CABOOSE_PM2_BRIDGE", "1").strip().lower() not in ("0", "false", "no")


_handles_lock = threading.Lock()


def engine_handles(data_dir: Path, pm2_bin: Path | None = None) -> EngineHandles:
    """The process's handles for ``data_dir`` (one set per process, safe from any thread)."""
    with _handles_lock:
        return _engine_handles(data_dir, pm2_bin)


@functools.lru_cache(maxsize=4)
def _engine_handles(data_dir: Path, pm2_bin: Path | None = None) -> EngineHandles:
    """Build the handles (cached: one PM2 client and port allocator per data dir).

    PM2 is driven through a long-lived bridge process (one PM2 call then costs milliseconds
    instead of a Node start), falling back to the CLI call by call when the bridge fails.
    """
    paths = PlatformPaths(data_dir)
    paths.ensure()
    binary = pm2_bin or find_pm2_bin()
    runtime = (
        BridgedPm2Runtime(binary, paths.pm2_home)
        if use_pm2_bridge()
        else Pm2Runtime(binary, paths.pm2_home)
    )
    return EngineHandles(
        paths=paths,
        runtime=runtime,
        router=PlatformRouter(paths),
        ports=PortAllocator(lock_dir=paths.port_locks_dir),
    )
