"""The build stage: from a planned source tree to an immutable artifact.

Runs as the project's unprivileged user (when the platform is root), in a directory of its own,
with an environment built from nothing but the defaults, the user's variables and the paths the
platform controls. Steps: install (cached by dependency hash, see ``cache``), then the build
command, then the artifact is frozen (write bits dropped) and described in a manifest. A failed,
timed-out or cancelled build leaves no artifact.
"""

from __future__ import annotations

import shutil
import threading
import time
import uuid
from collections.abc import Mapping
from pathlib import Path

from caboose.engine.build.artifacts import BuildResult, write_manifest
from caboose.engine.build.cache import force_rmtree, make_readonly
from caboose.engine.build.context import BuildContext, Installed
from caboose.engine.build.node import install_node
from caboose.engine.build.python import install_python
from caboose.engine.build.tools import BuildTools
from caboose.engine.sandbox import AppUser, chown_tree, is_privileged, make_private_dir
from caboose.engine.types import (
    BuildError,
    BuildPlan,
    EngineError,
    OperationCancelledError,
    Reporter,
    StageStatus,
)

APP_DIR = "app"
SCRATCH_DIR = ".build"
# Framework caches written at run time beside the build output; they stay writable.
KEEP_WRITABLE = ("app/.next/cache",)


def build_artifact(
    plan: BuildPlan,
    *,
    source_dir: Path,
    artifact_dir: Path,
    cache_dir: Path,
    tools: BuildTools,
    user: AppUser,
    reporter: Reporter,
    variables: Mapping[str, str] | None = None,
    timeout: float = 1800.0,
    cancel: threading.Event | None = None,
    build_id: str | None = None,
) -> BuildResult:
    """Install and build ``source_dir`` per ``plan`` into ``artifact_dir``.

    ``source_dir`` is moved to ``artifact_dir/app`` (fetch straight into that path to avoid
    the move). ``artifact_dir`` must not exist otherwise. ``cache_dir`` is the project's
    dependency cache (created if needed). ``variables`` are the service's variables, visible to
    install and build commands. ``timeout`` bounds the whole stage; ``cancel`` stops it at once.
    Reports the ``build`` stage and streams every output line to ``reporter``.
    Raises ``BuildError``, ``StepTimeoutError`` or ``OperationCancelledError``.
    """
    started = time.time()
    deadline = time.monotonic() + timeout
    build_id = build_id or artifact_dir.name or uuid.uuid4().hex
    reporter.stage("build", StageStatus.RUNNING)
    app_dir = artifact_dir / APP_DIR
    created = False
    try:
        created = _prepare_dirs(source_dir, artifact_dir, app_dir, user)
        scratch = artifact_dir / SCRATCH_DIR
        for path in (scratch, scratch / "home", scratch / "tmp", cache_dir):
            make_private_dir(path, user)
        ctx = BuildContext(
            build_id=build_id,
            plan=plan,
            app_dir=app_dir,
            artifact_dir=artifact_dir,
            scratch_dir=scratch,
            cache_dir=cache_dir,
            tools=tools,
            user=user,
            variables=dict(variables or {}),
            reporter=reporter,
            deadline=deadline,
            cancel=cancel,
        )
        _link_tools(ctx)
        installed = _install(ctx)
        build_started = time.monotonic()
        if plan.build_command:
            ctx.note(f"==> build: {plan.build_command}")
            result = ctx.run(["bash", "-c", plan.build_command])
            if not result.ok:
                raise BuildError(
                    f"the build command failed with exit code {result.exit_code}",
                    step="build",
                    exit_code=result.exit_code,
                )
        build_seconds = time.monotonic() - build_started if plan.build_command else 0.0
        _check_static_output(ctx)
        shutil.rmtree(scratch, ignore_errors=True)
        node_bin = [str(tools.node_bin_dir)] if tools.node_bin_dir else []
        outcome = BuildResult(
            build_id=build_id,
            artifact_dir=artifact_dir,
            app_dir=app_dir,
            plan=plan,
            cache_key=installed.cache_key,
            cache_hit=installed.cache_hit,
            path_prefix=tuple(dict.fromkeys([*installed.path_prefix, str(ctx.bin_dir), *node_bin])),
            runtime_env=installed.runtime_env,
            started_at=started,
            finished_at=time.time(),
            install_seconds=installed.seconds,
            build_seconds=build_seconds,
        )
        write_manifest(outcome)
        make_readonly(artifact_dir, keep_writable=KEEP_WRITABLE)
    except BaseException as exc:
        if isinstance(exc, EngineError):
            reporter.log(exc.message, stream="system")
        elif isinstance(exc, OSError):
            reporter.log(f"build failed: {exc}", stream="system")
        cancelled = isinstance(exc, OperationCancelledError)
        reporter.stage("build", StageStatus.CANCELLED if cancelled else StageStatus.FAILED)
        if created or artifact_dir.exists():
            force_rmtree(artifact_dir)
        if isinstance(exc, OSError):
            raise BuildError(f"build failed: {exc.strerror or exc}", status=500) from exc
        raise
    summary = (
        "cache hit, install skipped"
        if outcome.cache_hit
        else (f"install {outcome.install_seconds:.1f} s")
    )
    reporter.log(f"==> Build finished in {outcome.duration:.1f} s ({summary})", stream="system")
    reporter.stage("build", StageStatus.SUCCEEDED)
    return outcome


def _prepare_dirs(source_dir: Path, artifact_dir: Path, app_dir: Path, user: AppUser) -> bool:
    """Put the source at ``artifact_dir/app``, owned by the project's user. True if created."""
    created = False
    if source_dir.resolve() != app_dir.resolve():
        if artifact_dir.exists():
            raise BuildError(f"artifact directory {artifact_dir} already exists", status=500)
        make_private_dir(artifact_dir, user)
        created = True
        try:
            source_dir.rename(app_dir)
        except OSError:
            shutil.copytree(source_dir, app_dir, symlinks=True)
            shutil.rmtree(source_dir, ignore_errors=True)
    elif not app_dir.is_dir():
        raise BuildError(f"source directory {source_dir} does not exist", status=500)
    make_private_dir(artifact_dir, user)
    if is_privileged() and app_dir.lstat().st_uid != user.uid:
        chown_tree(app_dir, user)
    app_dir.chmod(0o700)
    return created


def _link_tools(ctx: BuildContext) -> None:
    """``<cache>/bin/uv``: apps and build commands may call uv (``uv run ...``)."""
    ctx.mkdir(ctx.bin_dir)
    link = ctx.bin_dir / "uv"
    if link.is_symlink() and link.readlink() == ctx.tools.uv:
        return
    if link.exists() or link.is_symlink():
        link.unlink()
    link.symlink_to(ctx.tools.uv)
    ctx.give(link)


def _install(ctx: BuildContext) -> Installed:
    plan = ctx.plan
    if plan.provider == "python":
        return install_python(ctx)
    if plan.provider == "node":
        return install_node(ctx)
    if plan.is_custom_install and plan.install_command:
        ctx.note(f"==> install (service setting): {plan.install_command}")
        result = ctx.run(["bash", "-c", plan.install_command])
        if not result.ok:
            raise BuildError(
                f"the install command failed with exit code {result.exit_code}",
                step="install",
                exit_code=result.exit_code,
            )
    return Installed()


def _check_static_output(ctx: BuildContext) -> None:
    static_dir = ctx.plan.static_dir
    if static_dir is None:
        return
    index = ctx.app_dir / static_dir / "index.html"
    if not index.is_file():
        raise BuildError(
            f"the static site has no {static_dir}/index.html after the build", step="build"
        )
