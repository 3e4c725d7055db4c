"""Where deploys keep their files in the data dir: one place, so every process agrees.

The API writes uploads, workers write artifacts, caches and route files and drive PM2, the log
shipper reads the replicas' log files, ``cleanup`` collects old builds: they may be separate
processes (``caboosed api``/``worker``/``beat``), so the paths are computed here and nowhere
else. The platform's own run-time files (PM2 home, Traefik's directories, pid and state files)
come from :class:`~caboose.server.layout.DataLayout`, which ``caboosed up`` uses; this class adds
the deploy pipeline's directories on top of it::

    <data>/builds/<service_id>/<build_id>/     build artifacts (see engine/build/artifacts.py)
    <data>/cache/<project_id>/                  a project's dependency cache (its user's, 0700)
    <data>/homes/<project_id>/                  $HOME of a project's running apps (0700)
    <data>/uploads/<upload_id>.tar.gz           uploaded sources, kept while their build is
    <data>/logs/apps/<deployment_id>/<i>.out.log and <i>.err.log   each replica's output (PM2)
    <data>/pm2/                                 PM2_HOME
    <data>/traefik/dynamic/                     one route file per service-environment
    <data>/run/ports/                           port reservations shared by worker processes

Directories that app users must traverse (``builds``, ``cache``, ``homes``) are 0711: reachable
but not listable, like the data dir itself; what is inside belongs to each project's user.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

from caboose.server.layout import DataLayout

__all__ = ["PlatformPaths"]

_TRAVERSABLE = 0o711
_PRIVATE = 0o700


def _id(value: uuid.UUID | str) -> str:
    """A path component from an id: always the canonical UUID form, never a user string."""
    return str(uuid.UUID(str(value)))


@dataclass(frozen=True, slots=True)
class PlatformPaths:
    """The deploy pipeline's paths under ``data_dir`` (paths only; :meth:`ensure` creates)."""

    data_dir: Path

    @property
    def layout(self) -> DataLayout:
        return DataLayout(self.data_dir)

    # Builds -----------------------------------------------------------------------------------

    @property
    def builds_dir(self) -> Path:
        return self.data_dir / "builds"

    def service_artifacts_dir(self, service_id: uuid.UUID | str) -> Path:
        """All artifacts of one service (``collect_old_artifacts`` works on this)."""
        return self.builds_dir / _id(service_id)

    def artifact_dir(self, service_id: uuid.UUID | str, build_id: uuid.UUID | str) -> Path:
        return self.service_artifacts_dir(service_id) / _id(build_id)

    @property
    def cache_root(self) -> Path:
        return self.data_dir / "cache"

    def project_cache_dir(self, project_id: uuid.UUID | str) -> Path:
        return self.cache_root / _id(project_id)

    @property
    def homes_dir(self) -> Path:
        return self.data_dir / "homes"

    def app_home(self, project_id: uuid.UUID | str) -> Path:
        """``$HOME`` of the project's running apps: writable (the artifact is read-only)."""
        return self.homes_dir / _id(project_id)

    # Sources ----------------------------------------------------------------------------------

    @property
    def uploads_dir(self) -> Path:
        return self.data_dir / "uploads"

    def upload_path(self, upload_id: uuid.UUID | str) -> Path:
        return self.uploads_dir / f"{_id(upload_id)}.tar.gz"

    # Runtime ----------------------------------------------------------------------------------

    @property
    def app_logs_dir(self) -> Path:
        return self.layout.logs_dir / "apps"

    def deployment_logs_dir(self, deployment_id: uuid.UUID | str) -> Path:
        return self.app_logs_dir / _id(deployment_id)

    def replica_log_paths(self, deployment_id: uuid.UUID | str, index: int) -> tuple[Path, Path]:
        """``(stdout, stderr)`` files of replica ``index`` of a deployment (written by PM2)."""
        directory = self.deployment_logs_dir(deployment_id)
        return directory / f"{index}.out.log", directory / f"{index}.err.log"

    @property
    def pm2_home(self) -> Path:
        return self.layout.pm2_home

    @property
    def traefik_dynamic_dir(self) -> Path:
        return self.layout.traefik_dynamic_dir

    @property
    def port_locks_dir(self) -> Path:
        return self.layout.run_dir / "ports"

    def ensure(self) -> None:
        """Create the directories (idempotent, cheap: called by every worker task)."""
        self.layout.ensure()
        for directory in (self.builds_dir, self.cache_root, self.homes_dir):
            directory.mkdir(parents=True, exist_ok=True)
            directory.chmod(_TRAVERSABLE)
        for directory in (self.uploads_dir, self.app_logs_dir, self.port_locks_dir):
            directory.mkdir(mode=_PRIVATE, parents=True, exist_ok=True)
            directory.chmod(_PRIVATE)
