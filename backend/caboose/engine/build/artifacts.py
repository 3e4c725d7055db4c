"""Build artifacts: what a build leaves behind, how it is described, when it is collected.

Layout, one directory per build under the service's artifacts directory::

    <service_artifacts_dir>/<build_id>/        read-only once the build succeeded
      app/                 the source tree after install and build: the runtime's cwd
      app/.venv ->         the virtualenv (Python: a stable path in the project's cache)
      venv/                a virtualenv that could not be cached (rare: local packages)
      caboose-build.json   the manifest (this module's ``BuildResult``)

An artifact never changes after its build (a rollback runs exactly what ran before), and the
last ``keep`` successful builds of a service are kept for rollbacks. Dependency cache entries are
shared by a project's builds; one still referenced by a kept artifact must not be collected.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from caboose.engine.build.cache import force_rmtree
from caboose.engine.types import BuildPlan

MANIFEST = "caboose-build.json"
# A directory without a manifest may be a build still running: leave it this long.
STALE_INCOMPLETE_SECONDS = 6 * 3600


@dataclass(frozen=True, slots=True)
class BuildResult:
    """A finished build: where it is, how to run it, what it cost.

    The runtime starts the app in ``app_dir`` with ``PATH`` = ``path_prefix`` + the system path,
    ``runtime_env`` (``VIRTUAL_ENV``, ``NODE_ENV``...), then the user's variables and ``PORT``.
    """

    build_id: str
    artifact_dir: Path
    app_dir: Path
    plan: BuildPlan
    cache_key: str | None
    cache_hit: bool
    path_prefix: tuple[str, ...]
    runtime_env: Mapping[str, str] = field(default_factory=dict)
    started_at: float = 0.0
    finished_at: float = 0.0
    install_seconds: float = 0.0
    build_seconds: float = 0.0

    @property
    def duration(self) -> float:
        return self.finished_at - self.started_at

    def to_dict(self) -> dict[str, Any]:
        return {
            "build_id": self.build_id,
            "artifact_dir": str(self.artifact_dir),
            "app_dir": str(self.app_dir),
            "plan": self.plan.to_dict(),
            "cache_key": self.cache_key,
            "cache_hit": self.cache_hit,
            "path_prefix": list(self.path_prefix),
            "runtime_env": dict(self.runtime_env),
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "install_seconds": self.install_seconds,
            "build_seconds": self.build_seconds,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BuildResult:
        return cls(
            build_id=str(data["build_id"]),
            artifact_dir=Path(data["artifact_dir"]),
            app_dir=Path(data["app_dir"]),
            plan=BuildPlan.from_dict(data["plan"]),
            cache_key=data.get("cache_key"),
            cache_hit=bool(data.get("cache_hit")),
            path_prefix=tuple(data.get("path_prefix") or ()),
            runtime_env=dict(data.get("runtime_env") or {}),
            started_at=float(data.get("started_at") or 0.0),
            finished_at=float(data.get("finished_at") or 0.0),
            install_seconds=float(data.get("install_seconds") or 0.0),
            build_seconds=float(data.get("build_seconds") or 0.0),
        )


def write_manifest(result: BuildResult) -> None:
    path = result.artifact_dir / MANIFEST
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result.to_dict(), indent=2, sort_keys=True))
    tmp.rename(path)


def load_build_result(artifact_dir: Path) -> BuildResult | None:
    """The manifest of a successful build (None: no such build, or it never finished)."""
    try:
        data = json.loads((artifact_dir / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return BuildResult.from_dict(data)


def collect_old_artifacts(
    service_artifacts_dir: Path,
    keep: int = 5,
    in_use: Iterable[str] = frozenset(),
    *,
    stale_after: float = STALE_INCOMPLETE_SECONDS,
) -> list[Path]:
    """Delete a service's artifacts beyond the newest ``keep`` successful builds.

    ``in_use`` names build ids (directory names) that must survive whatever their age (the
    builds of running deployments). Directories without a manifest are failed or abandoned
    builds and go once older than ``stale_after`` (a younger one may still be building).
    Returns the removed paths.
    """
    if not service_artifacts_dir.is_dir():
        return []
    protected = set(in_use)
    finished: list[tuple[float, Path]] = []
    removed: list[Path] = []
    now = time.time()
    for child in service_artifacts_dir.iterdir():
        if not child.is_dir() or child.is_symlink():
            continue
        result = load_build_result(child)
        if result is None:
            age = now - child.stat().st_mtime
            if child.name not in protected and age > stale_after:
                force_rmtree(child)
                removed.append(child)
            continue
        finished.append((result.finished_at, child))
    finished.sort(reverse=True)
    for _, child in finished[keep:]:
        if child.name in protected:
            continue
        force_rmtree(child)
        removed.append(child)
    return removed


def referenced_cache_keys(artifact_dirs: Iterable[Path]) -> set[str]:
    """Cache keys used by the given artifacts (all of a project's kept builds)."""
    keys: set[str] = set()
    for artifact in artifact_dirs:
        result = load_build_result(artifact)
        if result is not None and result.cache_key:
            keys.add(result.cache_key)
    return keys


def collect_unused_cache_entries(
    cache_dir: Path, referenced: set[str], *, min_age_seconds: float = 3600.0
) -> list[Path]:
    """Delete dependency cache entries no kept artifact refers to (and not just created)."""
    removed: list[Path] = []
    now = time.time()
    for kind in ("python", "node"):
        base = cache_dir / kind
        if not base.is_dir():
            continue
        for entry in base.iterdir():
            key = entry.name.removesuffix(".staging")
            if key in referenced or now - entry.stat().st_mtime < min_age_seconds:
                continue
            force_rmtree(entry)
            removed.append(entry)
    return removed
