"""Node apps: package manager by lockfile, ``build`` and ``start`` scripts.

The package manager is the one whose lockfile is committed (pnpm-lock.yaml, yarn.lock,
package-lock.json/npm-shrinkwrap.json), else the ``packageManager`` field, else npm. yarn and
pnpm come from corepack (shipped with Node), at the version ``packageManager`` pins.

Build: the ``build`` script if there is one (``next build``, ``vite build``...). Start: the
``start`` script (``npm start``), else ``node <main>``, else a conventional entry file
(``server.js``, ``index.js``...), else, for a front-end whose build emits a static site
(Vite, Create React App, Astro...), that output served as a static site.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from caboose.engine.plan.files import is_file, read_text
from caboose.engine.plan.providers.base import ProviderPlan
from caboose.engine.plan.runtimes import Runtimes, node_range_allows
from caboose.engine.types import PlanError

_LOCKFILES = (
    ("pnpm-lock.yaml", "pnpm"),
    ("yarn.lock", "yarn"),
    ("package-lock.json", "npm"),
    ("npm-shrinkwrap.json", "npm"),
)
_ENTRY_FILES = (
    "server.js",
    "index.js",
    "app.js",
    "main.js",
    "server.mjs",
    "index.mjs",
    "dist/index.js",
    "dist/server.js",
    "build/index.js",
)
_STATIC_OUTPUT = (
    ("vite", "dist"),
    ("react-scripts", "build"),
    ("astro", "dist"),
    ("@angular/cli", "dist"),
    ("parcel", "dist"),
    ("@vue/cli-service", "dist"),
)
_PM_SPEC = re.compile(r"^(npm|yarn|pnpm)@(\d+\.\d+\.\d+[\w.+-]*)")


def load_package_json(source_dir: Path) -> dict[str, Any]:
    text = read_text(source_dir, "package.json")
    if text is None:
        raise PlanError("package.json not found")
    try:
        data: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PlanError(f"package.json is not valid JSON: {exc.msg} (line {exc.lineno})") from None
    except RecursionError:
        raise PlanError("package.json is nested too deeply") from None
    if not isinstance(data, dict):
        raise PlanError("package.json: the top level must be an object")
    return data


def _scripts(pkg: dict[str, Any]) -> dict[str, str]:
    scripts = pkg.get("scripts")
    if scripts is None:
        return {}
    if not isinstance(scripts, dict):
        raise PlanError("package.json: scripts must be an object")
    return {k: v for k, v in scripts.items() if isinstance(k, str) and isinstance(v, str)}


def _deps(pkg: dict[str, Any]) -> set[str]:
    names: set[str] = set()
    for key in ("dependencies", "devDependencies"):
        section = pkg.get(key)
        if isinstance(section, dict):
            names.update(k for k in section if isinstance(k, str))
    return names


def package_manager(source_dir: Path, pkg: dict[str, Any]) -> tuple[str, str | None, str | None]:
    """(name, pinned version or None, lockfile or None)."""
    field = pkg.get("packageManager")
    pinned = _PM_SPEC.match(field) if isinstance(field, str) else None
    for lockfile, name in _LOCKFILES:
        if is_file(source_dir, lockfile):
            version = pinned.group(2) if pinned and pinned.group(1) == name else None
            return name, version, lockfile
    if pinned:
        return pinned.group(1), pinned.group(2), None
    return "npm", None, None


def install_command(manager: str, lockfile: str | None, yarn_berry: bool) -> str:
    if manager == "pnpm":
        frozen = " --frozen-lockfile" if lockfile else ""
        return f"pnpm install{frozen} --prod=false"
    if manager == "yarn":
        if yarn_berry:
            return "yarn install --immutable" if lockfile else "yarn install"
        frozen = " --frozen-lockfile" if lockfile else ""
        return f"yarn install{frozen} --production=false --non-interactive"
    return ("npm ci" if lockfile else "npm install") + " --include=dev --no-audit --no-fund"


def is_yarn_berry(source_dir: Path, version: str | None) -> bool:
    if version is not None:
        return not version.startswith("1.")
    if is_file(source_dir, ".yarnrc.yml"):
        return True
    head = (
        (read_text(source_dir, "yarn.lock", limit=64 * 1024 * 1024) or "")[:200]
        if is_file(source_dir, "yarn.lock")
        else ""
    )
    return "__metadata:" in head


class NodeProvider:
    name = "node"
    markers = "package.json"

    def detect(self, source_dir: Path) -> bool:
        return is_file(source_dir, "package.json")

    def plan(self, source_dir: Path, runtimes: Runtimes) -> ProviderPlan:
        if runtimes.node is None:
            raise PlanError("this is a Node app, but Node.js is not installed")
        pkg = load_package_json(source_dir)
        scripts = _scripts(pkg)
        deps = _deps(pkg)
        notes: list[str] = []
        manager, version, lockfile = package_manager(source_dir, pkg)
        if is_file(source_dir, "bun.lockb") or is_file(source_dir, "bun.lock"):
            notes.append("bun is not available here: installing with npm")
        berry = manager == "yarn" and is_yarn_berry(source_dir, version)
        run = "npm run" if manager == "npm" else f"{manager} run"
        files = ["package.json"] + ([lockfile] if lockfile else [])
        for extra in (".npmrc", ".yarnrc", ".yarnrc.yml", "pnpm-workspace.yaml"):
            if is_file(source_dir, extra):
                files.append(extra)
        build = f"{run} build" if "build" in scripts else None
        start: str | None = None
        static_dir: str | None = None
        if "start" in scripts:
            start = "npm start" if manager == "npm" else f"{manager} start"
        else:
            main = pkg.get("main")
            if isinstance(main, str) and main and is_file(source_dir, main):
                start = f"node {main}"
            elif "next" in deps:
                start = "next start"
            else:
                entry = next((f for f in _ENTRY_FILES if is_file(source_dir, f)), None)
                if entry is not None:
                    start = f"node {entry}"
                elif build is not None:
                    static_dir = next((out for dep, out in _STATIC_OUTPUT if dep in deps), None)
                    if static_dir is not None:
                        notes.append(
                            f"no start script: serving the build output {static_dir}/ "
                            "as a static site"
                        )
        requested = _requested_node(source_dir, pkg, runtimes.node, notes)
        return ProviderPlan(
            provider=self.name,
            runtime="node",
            runtime_version=runtimes.node,
            package_manager=f"{manager}@{version}" if version else manager,
            dependency_files=tuple(files),
            install_command=install_command(manager, lockfile, berry),
            build_command=build,
            start_command=start,
            static_dir=static_dir,
            spa=static_dir is not None,
            requested_runtime_version=requested,
            notes=tuple(notes),
            start_hint=None
            if start or static_dir
            else (
                "no start command for this Node app: add a 'start' script to package.json, a "
                "'main' file, a server.js/index.js, or set deploy.startCommand"
            ),
        )


def _requested_node(
    source_dir: Path, pkg: dict[str, Any], have: str, notes: list[str]
) -> str | None:
    engines = pkg.get("engines")
    spec = engines.get("node") if isinstance(engines, dict) else None
    origin = "package.json engines.node"
    if not isinstance(spec, str):
        spec = None
        for name in (".nvmrc", ".node-version"):
            if is_file(source_dir, name):
                spec = (read_text(source_dir, name, limit=4096) or "").strip() or None
                origin = name
                break
    if spec is None:
        return None
    if node_range_allows(spec, have) is not True:
        notes.append(
            f"{origin} asks for Node {spec}; only Node {have} is installed here, so the "
            "app is built with it"
        )
    return spec
