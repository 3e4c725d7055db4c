"""The dashboard as ``caboosed up`` serves it: the Next.js app in the repository's ``frontend/``.

The dashboard is built once (``npm run build``: Next's standalone output, with ``.next/static``
and ``public/`` copied next to ``server.js`` by the postbuild script) and run with plain
``node .next/standalone/server.js`` on a loopback port; Traefik sends the platform host's
non-API paths there.

A build is *current* when the stamp written after it, ``.next/caboose-build.json``, holds the
digest of the sources it was built from (``src/``, ``public/``, the package and build
configuration files): content, not modification times, so a checkout or a worktree switch never
serves stale pages, and an unchanged tree never rebuilds. Two ``caboosed up`` sharing a checkout
(different data dirs) take ``frontend/.caboose-build.lock`` so only one builds.

Everything here is optional at run time: without Node, without ``frontend/node_modules`` or
without a build, the platform still starts with the API alone and says why.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from caboose.server.layout import REPO_ROOT

__all__ = [
    "BUILD_SOURCES",
    "BuildLock",
    "DashboardBuild",
    "DashboardUnavailableError",
    "build_environment",
    "ensure_built",
    "find_frontend",
    "server_environment",
]

# What the production build reads. Tests (*.test.ts) count too: `next build` type-checks them.
BUILD_SOURCES = (
    "src",
    "public",
    "package.json",
    "package-lock.json",
    "next.config.ts",
    "postcss.config.mjs",
    "tsconfig.json",
    "next-env.d.ts",
    "scripts/postbuild.mjs",
)
_STAMP_VERSION = 1


class DashboardUnavailableError(RuntimeError):
    """The dashboard cannot be served here; the message says why and what to do."""


def find_frontend() -> Path | None:
    """The ``frontend/`` directory of the checkout the platform runs from (editable install)."""
    candidate = REPO_ROOT / "frontend"
    return candidate if (candidate / "package.json").is_file() else None


@dataclass(frozen=True, slots=True)
class DashboardBuild:
    """Paths and state of one ``frontend/`` checkout's production build."""

    frontend_dir: Path

    @property
    def standalone_dir(self) -> Path:
        return self.frontend_dir / ".next" / "standalone"

    @property
    def server_js(self) -> Path:
        return self.standalone_dir / "server.js"

    @property
    def stamp_file(self) -> Path:
        return self.frontend_dir / ".next" / "caboose-build.json"

    @property
    def lock_file(self) -> Path:
        # Outside .next/: `next build` empties that directory.
        return self.frontend_dir / ".caboose-build.lock"

    @property
    def node_modules(self) -> Path:
        return self.frontend_dir / "node_modules"

    def sources_digest(self) -> str:
        """SHA-256 over the build's sources: each file's path relative to ``frontend/`` and its
        content, in a stable order."""
        digest = hashlib.sha256(f"caboose-dashboard-build:{_STAMP_VERSION}\n".encode())
        for path in self._source_files():
            relative = path.relative_to(self.frontend_dir).as_posix()
            digest.update(relative.encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
        return digest.hexdigest()

    def _source_files(self) -> list[Path]:
        files: list[Path] = []
        for name in BUILD_SOURCES:
            path = self.frontend_dir / name
            if path.is_file():
                files.append(path)
            elif path.is_dir():
                files.extend(p for p in path.rglob("*") if p.is_file())
        return sorted(files)

    def is_built(self) -> bool:
        """A build exists (current or not): ``server.js`` and its static assets."""
        return self.server_js.is_file() and (self.standalone_dir / ".next" / "static").is_dir()

    def built_digest(self) -> str | None:
        try:
            stamp = json.loads(self.stamp_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        value = stamp.get("sources") if isinstance(stamp, dict) else None
        return value if isinstance(value, str) else None

    def is_current(self) -> bool:
        """Built, and from the sources as they are now."""
        return self.is_built() and self.built_digest() == self.sources_digest()

    def mark_built(self, digest: str) -> None:
        """Record that the build in ``.next/`` was made from sources of ``digest``."""
        tmp = self.stamp_file.with_name(self.stamp_file.name + ".tmp")
        tmp.write_text(json.dumps({"sources": digest}) + "\n", encoding="utf-8")
        tmp.replace(self.stamp_file)

    def build_command(self) -> list[str]:
        """``npm run build`` (Next's build, then the postbuild copy of the static assets)."""
        npm = shutil.which("npm")
        if npm is None:
            raise DashboardUnavailableError(
                "npm is not installed: install Node.js 20 (with npm) to build the dashboard"
            )
        if not self.node_modules.is_dir():
            raise DashboardUnavailableError(
                f"the dashboard's packages are not installed: run `make install` "
                f"(or `npm ci` in {self.frontend_dir})"
            )
        return [npm, "run", "build", "--silent"]

    def server_command(self) -> list[str]:
        node = shutil.which("node")
        if node is None:
            raise DashboardUnavailableError("Node.js is not installed: the dashboard needs Node 20")
        if not self.is_built():
            raise DashboardUnavailableError(
                f"the dashboard is not built: run `npm run build` in {self.frontend_dir}"
            )
        return [node, str(self.server_js)]


class BuildLock:
    """An exclusive ``flock`` on the checkout's build lock file (non-blocking attempts)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None


def ensure_built(
    build: DashboardBuild,
    *,
    force: bool = False,
    echo: Callable[[str], None] = print,
) -> bool:
    """Build unless the build is current (or ``force``), waiting for another builder of the
    checkout first; the build's output goes to our stdout/stderr. Returns whether it built.

    Raises :class:`DashboardUnavailableError` when it cannot build or the build fails. For
    ``caboosed build-dashboard`` and the tests; ``caboosed up`` runs the build as a supervised
    child instead (so that Ctrl-C stops it at once).
    """
    if not force and build.is_current():
        echo(f"the dashboard build is up to date ({build.standalone_dir})")
        return False
    argv = build.build_command()
    fd = os.open(build.lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # another `up` or `build-dashboard` may be building
        if not force and build.is_current():
            echo("the dashboard was built meanwhile")
            return False
        digest = build.sources_digest()
        echo(f"building the dashboard in {build.frontend_dir} …")
        result = subprocess.run(argv, cwd=build.frontend_dir, env=build_environment(), check=False)
        if result.returncode != 0 or not build.is_built():
            raise DashboardUnavailableError(
                f"the dashboard build failed (`npm run build` exited with {result.returncode})"
            )
        build.mark_built(digest)
        return True
    finally:
        os.close(fd)  # releases the lock


def _base_environment() -> dict[str, str]:
    """Ours, less the platform's own settings (``CABOOSE_*``: secrets among them)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CABOOSE_")}
    env["NEXT_TELEMETRY_DISABLED"] = "1"
    return env


def build_environment() -> dict[str, str]:
    """What ``npm run build`` runs with: a production build, nothing of the platform's."""
    env = _base_environment()
    env["NODE_ENV"] = "production"
    return env


def server_environment(port: int) -> dict[str, str]:
    """What the Next.js server runs with: its port on loopback only, nothing of the platform's
    (it needs no secret: the browser talks to the API through Traefik, with its own cookies)."""
    env = {
        key: os.environ[key]
        for key in ("PATH", "HOME", "LANG", "LC_ALL", "TZ")
        if key in os.environ
    }
    env.update(
        {
            "NODE_ENV": "production",
            "NEXT_TELEMETRY_DISABLED": "1",
            "PORT": str(port),
            "HOSTNAME": "127.0.0.1",
        }
    )
    return env
