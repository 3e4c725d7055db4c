"""The toolchain builds use: uv, a Python interpreter, Node's bin directory.

They are explicit arguments (a ``BuildTools``), never whatever ``PATH`` the worker happened to
start with: the platform's own virtualenv must not leak into apps, and every tool must be
reachable by the projects' unprivileged users.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from caboose.engine.plan.runtimes import (
    SYSTEM_PATH,
    Runtimes,
    detect_runtimes,
    find_node_bin_dir,
    find_python,
    is_world_executable,
    network_environment,
)
from caboose.engine.sandbox import is_privileged
from caboose.engine.types import BuildError


@dataclass(frozen=True, slots=True)
class BuildTools:
    """Absolute paths of the build toolchain, and how the machine reaches the registries.

    ``network_env`` (proxies, CA bundle: see ``NETWORK_VARIABLES``) is added to every build
    step's environment; nothing else of the platform's environment is.
    """

    uv: Path
    python: Path
    node_bin_dir: Path | None = None
    network_env: Mapping[str, str] = field(default_factory=dict)

    def runtimes(self) -> Runtimes:
        """The versions these tools provide (what ``plan_build`` should be told)."""
        return detect_runtimes(self.python, self.node_bin_dir)

    @property
    def corepack(self) -> Path | None:
        if self.node_bin_dir is None:
            return None
        path = self.node_bin_dir / "corepack"
        return path if path.exists() else None


def discover_build_tools(*, uv: Path | None = None, python: Path | None = None) -> BuildTools:
    """Find the toolchain: uv beside the running interpreter (it ships in the platform's venv),
    a system Python every user can run, and Node from the system PATH.

    When the platform runs as root, tools unreachable by other users are refused here rather
    than failing obscurely inside a build.
    """
    if uv is None:
        # Not resolve(): the venv's python is a symlink, uv is a real file beside it.
        here = Path(os.path.normpath(Path.cwd() / sys.executable)).parent
        beside = here / "uv"
        found = shutil.which("uv", path=f"{here}:{SYSTEM_PATH}")
        uv = beside if beside.exists() else Path(found) if found else None
    if uv is None or not uv.exists():
        raise BuildError("uv was not found (it is installed with the platform)", status=500)
    python = python or find_python()
    if python is None:
        raise BuildError("no Python interpreter usable by app users was found", status=500)
    if is_privileged():
        for tool in (uv, python):
            if not is_world_executable(tool):
                raise BuildError(f"{tool} is not executable by app users", status=500)
    return BuildTools(
        uv=uv, python=python, node_bin_dir=find_node_bin_dir(), network_env=network_environment()
    )
