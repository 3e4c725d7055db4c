"""What every build step needs: paths, identity, environment, deadline, reporter."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from caboose.engine.build.process import StepResult, run_step
from caboose.engine.build.tools import BuildTools
from caboose.engine.plan.runtimes import SYSTEM_PATH
from caboose.engine.sandbox import AppUser, is_privileged, make_private_dir
from caboose.engine.types import BuildPlan, Reporter

_VALID_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Set by the platform; a user's variable of the same name is ignored in builds.
PROTECTED_VARIABLES = frozenset(
    {
        "PATH",
        "HOME",
        "TMPDIR",
        "USER",
        "LOGNAME",
        "PWD",
        "SHELL",
        "VIRTUAL_ENV",
        "UV_CACHE_DIR",
        "UV_PYTHON_DOWNLOADS",
        "UV_PROJECT_ENVIRONMENT",
        "UV_PYTHON",
        "npm_config_cache",
        "NPM_CONFIG_CACHE",
        "COREPACK_HOME",
        "npm_config_store_dir",
        "YARN_CACHE_FOLDER",
    }
)


@dataclass(slots=True)
class Installed:
    """What an install step left for the runtime: where the dependencies are, and if cached."""

    cache_key: str | None = None
    cache_hit: bool = False
    seconds: float = 0.0
    path_prefix: list[str] = field(default_factory=list)
    runtime_env: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class BuildContext:
    """One build's fixed facts, and the helpers to run steps with them."""

    build_id: str
    plan: BuildPlan
    app_dir: Path
    artifact_dir: Path
    scratch_dir: Path
    cache_dir: Path
    tools: BuildTools
    user: AppUser
    variables: Mapping[str, str]
    reporter: Reporter
    deadline: float
    cancel: threading.Event | None
    path_prefix: list[str] = field(default_factory=list)
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def home(self) -> Path:
        return self.scratch_dir / "home"

    @property
    def bin_dir(self) -> Path:
        """``<cache>/bin``: uv and the corepack shims, on PATH for builds and apps."""
        return self.cache_dir / "bin"

    def mkdir(self, path: Path) -> Path:
        """A directory owned by the project's user (0700)."""
        return make_private_dir(path, self.user)

    def give(self, path: Path) -> None:
        """Hand a file the platform wrote over to the project's user."""
        if is_privileged():
            os.lchown(path, self.user.uid, self.user.gid)

    def path(self) -> str:
        node = [str(self.tools.node_bin_dir)] if self.tools.node_bin_dir else []
        parts = [*self.path_prefix, str(self.bin_dir), *node, SYSTEM_PATH]
        return ":".join(dict.fromkeys(":".join(parts).split(":")))

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The whole environment of a step: built from nothing, never inherited.

        The platform's own variables (its secrets included) never reach a build: only the
        defaults below, the user's variables, and the paths the platform controls.
        """
        env = {
            "LANG": "C.UTF-8",
            "CI": "true",
            "TERM": "dumb",
            "PYTHONUNBUFFERED": "1",
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "PIP_NO_INPUT": "1",
            "UV_NO_PROGRESS": "1",
            "UV_COMPILE_BYTECODE": "1",
            "UV_LINK_MODE": "hardlink",
            "npm_config_update_notifier": "false",
            "npm_config_fund": "false",
            "npm_config_audit": "false",
            "COREPACK_ENABLE_DOWNLOAD_PROMPT": "0",
            "COREPACK_ENABLE_STRICT": "0",
            # Node 20's corepack knows only npm's old signing keys, which the registry rotated:
            # every pnpm/yarn download fails "No compatible signature found" without this.
            "COREPACK_INTEGRITY_KEYS": "0",
            "NEXT_TELEMETRY_DISABLED": "1",
            "CABOOSE_BUILD_ID": self.build_id,
            **self.tools.network_env,
        }
        for key, value in self.variables.items():
            if _VALID_NAME.match(key) and key not in PROTECTED_VARIABLES and "\x00" not in value:
                env[key] = value
        env.update(
            {
                "PATH": self.path(),
                "HOME": str(self.home),
                "TMPDIR": str(self.scratch_dir / "tmp"),
                "USER": self.user.name,
                "LOGNAME": self.user.name,
                "SHELL": "/bin/bash",
                "UV_CACHE_DIR": str(self.cache_dir / "uv"),
                "UV_PYTHON_DOWNLOADS": "never",
                "UV_PYTHON": str(self.tools.python),
                "npm_config_cache": str(self.cache_dir / "npm"),
                "YARN_CACHE_FOLDER": str(self.cache_dir / "yarn"),
                "COREPACK_HOME": str(self.cache_dir / "corepack"),
            }
        )
        env.update(self.extra_env)
        if extra:
            env.update(extra)
        return env

    def run(
        self,
        argv: Sequence[str],
        *,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        announce: str | None = None,
    ) -> StepResult:
        """Run one command as the project's user, streaming its output to the build log."""
        if announce:
            self.reporter.log(announce, stream="system")
        return run_step(
            argv,
            cwd=cwd or self.app_dir,
            env=self.env(env),
            user=self.user,
            reporter=self.reporter,
            deadline=self.deadline,
            cancel=self.cancel,
        )

    def note(self, line: str) -> None:
        self.reporter.log(line, stream="system")
