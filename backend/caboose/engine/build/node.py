"""Installing a Node app's packages (npm, yarn or pnpm), cached per project.

The install runs in the build's own directory, so the app's own install scripts see the whole
tree (``postinstall: prisma generate``). Right after a successful install, ``node_modules`` is
hard-linked into the cache entry (``cp -Rl``: no data is copied). A later build with the same
key hard-links it back and skips the package manager entirely, then runs only the app's own
install-time scripts (``preinstall``, ``install``, ``postinstall``, ``prepare``) so their
effects are the same as after a real install.

yarn and pnpm are run through corepack shims in ``<cache>/bin`` (corepack ships with Node and
fetches the pinned version from the npm registry). Yarn 2+ (Plug'n'Play, no node_modules) and
workspaces (node_modules in several places) are installed every time, without the cache.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from caboose.engine.build.cache import (
    cache_key,
    entry_lock,
    force_rmtree,
    is_complete,
    mark_complete,
    tool_variables,
)
from caboose.engine.build.context import BuildContext, Installed
from caboose.engine.plan.files import read_bytes
from caboose.engine.plan.providers.node import is_yarn_berry, load_package_json
from caboose.engine.types import BuildError

_KEY_FIELDS = (
    "dependencies",
    "devDependencies",
    "optionalDependencies",
    "peerDependencies",
    "bundledDependencies",
    "overrides",
    "resolutions",
    "pnpm",
    "packageManager",
    "workspaces",
)
_LIFECYCLE = ("preinstall", "install", "postinstall", "prepare")
# Hard-link files, copy symlinks as symlinks, create directories afresh (not -a: the cache's
# directories are read-only and the build must be able to add to its own node_modules).
_LINK_COPY = ("cp", "-R", "-l", "-P")


def install_node(ctx: BuildContext) -> Installed:
    """Install (or restore from the cache) the app's node_modules."""
    plan = ctx.plan
    started = time.monotonic()
    bin_dir = str(ctx.app_dir / "node_modules" / ".bin")
    if bin_dir not in ctx.path_prefix:
        ctx.path_prefix.insert(0, bin_dir)
    manager, _, version = (plan.package_manager or "npm").partition("@")
    if manager in ("yarn", "pnpm"):
        _ensure_corepack_shims(ctx)
    runtime_env = {"NODE_ENV": "production"}
    if plan.is_custom_install:
        ctx.note(f"==> install (service setting, uncached): {plan.install_command}")
        _check(ctx.run(["bash", "-c", plan.install_command or ""]).exit_code, "install command")
        return Installed(None, False, time.monotonic() - started, [bin_dir], runtime_env)

    pkg = load_package_json(ctx.app_dir)
    argv = _install_argv(ctx, manager, version)
    berry = manager == "yarn" and is_yarn_berry(ctx.app_dir, version or None)
    if berry or pkg.get("workspaces") is not None or "pnpm-workspace.yaml" in plan.dependency_files:
        ctx.note(
            f"==> install (uncached: {'yarn 2+' if berry else 'workspaces'}): "
            f"{plan.install_command}"
        )
        _check(ctx.run(argv, env=_pm_env(ctx, manager)).exit_code, "package install")
        return Installed(None, False, time.monotonic() - started, [bin_dir], runtime_env)

    key = cache_key(_key_inputs(ctx, pkg))
    entry = ctx.cache_dir / "node" / key
    modules = ctx.app_dir / "node_modules"
    ctx.mkdir(entry.parent)
    with entry_lock(ctx.cache_dir, key):
        if is_complete(entry) and (entry / "node_modules").is_dir():
            ctx.note(f"==> install: cache hit ({key[:12]}), dependencies unchanged: skipped")
            force_rmtree(modules)
            _check(
                ctx.run([*_LINK_COPY, str(entry / "node_modules"), str(modules)]).exit_code,
                "restoring node_modules from the cache",
            )
            _run_lifecycle(ctx, manager, pkg)
            return Installed(key, True, time.monotonic() - started, [bin_dir], runtime_env)
        ctx.note(f"==> install: cache miss ({key[:12]}): {plan.install_command}")
        _check(ctx.run(argv, env=_pm_env(ctx, manager)).exit_code, "package install")
        if modules.is_dir():
            _fill_cache(ctx, entry, modules, key)
    return Installed(key, False, time.monotonic() - started, [bin_dir], runtime_env)


def _pm_env(ctx: BuildContext, manager: str) -> dict[str, str]:
    """pnpm's store in the project cache (npm would warn about the unknown setting)."""
    return {"npm_config_store_dir": str(ctx.cache_dir / "pnpm-store")} if manager == "pnpm" else {}


def _check(code: int, what: str) -> None:
    if code != 0:
        raise BuildError(f"{what} failed with exit code {code}", step="install", exit_code=code)


def _install_argv(ctx: BuildContext, manager: str, version: str) -> list[str]:
    lockfiles = set(ctx.plan.dependency_files)
    if manager == "pnpm":
        frozen = ["--frozen-lockfile"] if "pnpm-lock.yaml" in lockfiles else []
        return [str(ctx.bin_dir / "pnpm"), "install", *frozen, "--prod=false"]
    if manager == "yarn":
        locked = "yarn.lock" in lockfiles
        if is_yarn_berry(ctx.app_dir, version or None):
            return [str(ctx.bin_dir / "yarn"), "install", *(["--immutable"] if locked else [])]
        frozen = ["--frozen-lockfile"] if locked else []
        return [
            str(ctx.bin_dir / "yarn"),
            "install",
            *frozen,
            "--production=false",
            "--non-interactive",
        ]
    npm = str(ctx.tools.node_bin_dir / "npm") if ctx.tools.node_bin_dir else "npm"
    locked = bool(lockfiles & {"package-lock.json", "npm-shrinkwrap.json"})
    return [npm, "ci" if locked else "install", "--include=dev", "--no-audit", "--no-fund"]


def _key_inputs(ctx: BuildContext, pkg: dict[str, Any]) -> list[str | bytes]:
    """The lockfile and the dependency fields of package.json (not its version or scripts)."""
    parts: list[str | bytes] = [
        "node",
        ctx.plan.runtime_version,
        ctx.plan.package_manager or "npm",
        json.dumps({k: pkg.get(k) for k in _KEY_FIELDS}, sort_keys=True),
        *tool_variables(ctx.variables),
    ]
    for rel in ctx.plan.dependency_files:
        if rel != "package.json":
            parts += [rel, read_bytes(ctx.app_dir, rel) or b""]
    return parts


def _fill_cache(ctx: BuildContext, entry: Path, modules: Path, key: str) -> None:
    """Hard-link the fresh node_modules into the cache (atomically: temp dir, then rename)."""
    force_rmtree(entry)
    staging = entry.with_name(f"{entry.name}.staging")
    force_rmtree(staging)
    ctx.mkdir(staging)
    result = ctx.run([*_LINK_COPY, str(modules), str(staging / "node_modules")])
    if not result.ok:
        force_rmtree(staging)
        ctx.note(f"could not store node_modules in the cache (exit {result.exit_code})")
        return
    mark_complete(staging, {"key": key, "node": ctx.plan.runtime_version})
    staging.rename(entry)
    _readonly_dirs(entry)


def _readonly_dirs(root: Path) -> None:
    """Freeze the entry's directories. Its files are the build's own (hard links) until the
    build ends, when the artifact is made read-only, and with it these inodes."""
    for dirpath, _, _ in os.walk(root):
        path = Path(dirpath)
        path.chmod(path.stat().st_mode & ~0o222)


def _run_lifecycle(ctx: BuildContext, manager: str, pkg: dict[str, Any]) -> None:
    scripts = pkg.get("scripts")
    if not isinstance(scripts, dict):
        return
    runner = (
        str(ctx.tools.node_bin_dir / "npm")
        if manager == "npm" and ctx.tools.node_bin_dir
        else str(ctx.bin_dir / manager)
    )
    for name in _LIFECYCLE:
        if isinstance(scripts.get(name), str):
            result = ctx.run([runner, "run", name], announce=f"==> running the app's {name} script")
            _check(result.exit_code, f"the {name} script")


def _ensure_corepack_shims(ctx: BuildContext) -> None:
    """``yarn``/``pnpm`` shims in ``<cache>/bin`` (once per project), via Node's corepack."""
    if (ctx.bin_dir / "yarn").exists() and (ctx.bin_dir / "pnpm").exists():
        return
    corepack = ctx.tools.corepack
    if corepack is None:
        raise BuildError(
            "this app uses yarn or pnpm, but corepack (shipped with Node) is missing",
            step="install",
        )
    result = ctx.run(
        [str(corepack), "enable", "--install-directory", str(ctx.bin_dir), "yarn", "pnpm"]
    )
    _check(result.exit_code, "corepack enable")
