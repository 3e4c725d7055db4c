"""Installing a Python app's dependencies with uv, cached per project.

Every Python app gets a virtualenv made by ``uv venv`` from the build interpreter; the app's
declared dependencies go into it with ``uv sync --frozen`` (uv.lock) or ``uv pip install``
(requirements.txt, and lists derived from poetry.lock, Pipfile.lock or Pipfile: pip-free, no
poetry or pipenv needed).

Old dependency sets pinned years ago expect the packaging tools of their time, and uv is stricter
than the pip they were written for. When uv refuses, the install is retried, cheapest first:

1. source packages that fail to build get an older setuptools in their build environment
   (``--build-constraints``: ``setuptools<70``, then ``setuptools<58`` for ``use_2to3``-era code);
2. a fully pinned set (a ``pip freeze``) whose pins conflict is installed as listed, without
   resolution (``--no-deps``), which is what pip did before its 2020 resolver;
3. finally pip itself, with ``setuptools<58`` and ``wheel`` in the virtualenv and
   ``--no-build-isolation``.

Each retry is announced in the log, so a user sees why their old app still installed.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from caboose.engine.build.cache import (
    cache_key,
    entry_lock,
    force_rmtree,
    is_complete,
    make_readonly,
    mark_complete,
    tool_variables,
)
from caboose.engine.build.context import BuildContext, Installed
from caboose.engine.build.process import StepResult
from caboose.engine.plan.files import read_bytes, read_text
from caboose.engine.plan.requirements import (
    BOGUS_REQUIREMENTS,
    RequirementsScan,
    load_toml,
    normalize_name,
    scan_requirements,
)
from caboose.engine.types import BuildError, PlanError

_BUILD_FAILURE = (
    "Failed to build",
    "build backend returned an error",
    "Failed to download and build",
)
_RESOLUTION_FAILURE = ("No solution found", "we can conclude that", "unsatisfiable")


def install_python(ctx: BuildContext) -> Installed:
    """Create (or reuse from the cache) the app's virtualenv; returns where it is."""
    plan = ctx.plan
    started = time.monotonic()
    if plan.is_custom_install:
        venv = ctx.artifact_dir / "venv"
        _create_venv(ctx, venv, seed=True)
        _activate(ctx, venv)
        _run_custom_install(ctx)
        return _installed(ctx, venv, None, False, started)

    inputs = _key_inputs(ctx)
    if inputs is None:
        ctx.note("Dependencies refer to the source tree itself: installing without the cache")
        venv = ctx.artifact_dir / "venv"
        _create_venv(ctx, venv)
        _install_into(ctx, venv)
        return _installed(ctx, venv, None, False, started)

    key = cache_key(inputs)
    entry = ctx.cache_dir / "python" / key
    venv = entry / "venv"
    ctx.mkdir(entry.parent)
    with entry_lock(ctx.cache_dir, key):
        if is_complete(entry) and (venv / "bin" / "python").exists():
            ctx.note(f"==> install: cache hit ({key[:12]}), dependencies unchanged: skipped")
            return _installed(ctx, venv, key, True, started)
        ctx.note(f"==> install: cache miss ({key[:12]}): {plan.install_command}")
        force_rmtree(entry)
        ctx.mkdir(entry)
        try:
            _create_venv(ctx, venv)
            _install_into(ctx, venv)
        except BaseException:
            force_rmtree(entry)
            raise
        mark_complete(
            entry,
            {"key": key, "python": plan.runtime_version, "manager": plan.package_manager or ""},
        )
        make_readonly(venv)
    return _installed(ctx, venv, key, False, started)


def _installed(
    ctx: BuildContext, venv: Path, key: str | None, hit: bool, started: float
) -> Installed:
    link = ctx.app_dir / ".venv"
    if not link.exists() and not link.is_symlink():
        link.symlink_to(venv)
        ctx.give(link)
    _activate(ctx, venv)
    return Installed(
        cache_key=key,
        cache_hit=hit,
        seconds=time.monotonic() - started,
        path_prefix=[str(venv / "bin")],
        runtime_env={
            "VIRTUAL_ENV": str(venv),
            "UV_PROJECT_ENVIRONMENT": str(venv),
            "UV_NO_SYNC": "1",
            "PYTHONUNBUFFERED": "1",
        },
    )


def _activate(ctx: BuildContext, venv: Path) -> None:
    if str(venv / "bin") not in ctx.path_prefix:
        ctx.path_prefix.insert(0, str(venv / "bin"))
    ctx.extra_env["VIRTUAL_ENV"] = str(venv)
    ctx.extra_env["UV_PROJECT_ENVIRONMENT"] = str(venv)


def _key_inputs(ctx: BuildContext) -> list[str | bytes] | None:
    """What decides the installed set, or None when it depends on the tree (uncacheable)."""
    plan = ctx.plan
    root = ctx.app_dir
    parts: list[str | bytes] = [
        "python",
        plan.runtime_version,
        str(ctx.tools.python.resolve()),
        plan.package_manager or "",
        *tool_variables(ctx.variables),
    ]
    manager = plan.package_manager
    if manager == "pip":
        scan = scan_requirements(root, "requirements.txt")
        if scan.has_local:
            return None
        for rel in scan.files:
            parts += [rel, read_bytes(root, rel) or b""]
    elif manager == "uv":
        lock = read_bytes(root, "uv.lock") or b""
        if b"\n[manifest]\nmembers" in lock:
            return None  # a workspace: members are installed from the tree
        parts.append(lock)
    elif manager == "poetry":
        lock = read_bytes(root, "poetry.lock") or b""
        if b'type = "directory"' in lock or b'type = "file"' in lock:
            return None
        pyproject = load_toml(root, "pyproject.toml") or {}
        parts += [lock, json.dumps(_poetry_top_level(pyproject), sort_keys=True)]
    elif manager == "pipenv":
        for rel in plan.dependency_files:
            data = read_bytes(root, rel) or b""
            if b'"path"' in data or b"path =" in data or b'"editable"' in data:
                return None
            parts += [rel, data]
    elif manager == "pyproject":
        for rel in ("pyproject.toml", "setup.cfg", "setup.py"):
            parts += [rel, read_bytes(root, rel) or b""]
    elif manager is not None:
        return None  # setup.py: the project itself is installed
    return parts


def _create_venv(ctx: BuildContext, venv: Path, *, seed: bool = False) -> None:
    argv = [str(ctx.tools.uv), "venv", "--quiet", "--python", str(ctx.tools.python)]
    if seed:
        argv.append("--seed")
    result = ctx.run([*argv, str(venv)])
    if not result.ok:
        raise BuildError(
            f"creating the virtualenv failed (exit {result.exit_code})",
            step="install",
            exit_code=result.exit_code,
        )


def _install_into(ctx: BuildContext, venv: Path) -> None:
    manager = ctx.plan.package_manager
    if manager is None:
        return
    if manager == "uv":
        _uv_sync(ctx, venv)
        return
    if manager == "pip":
        scan = scan_requirements(ctx.app_dir, "requirements.txt")
        requirements = _sanitized_requirements(ctx, scan)
        _pip_install(ctx, venv, ["-r", requirements], pinned=scan.fully_pinned)
    elif manager == "poetry":
        top, pins = _poetry_requirements(ctx)
        _pip_install(ctx, venv, ["-r", str(top), "-c", str(pins)], pinned=False)
    elif manager == "pipenv":
        pipenv_file = _pipenv_requirements(ctx)
        _pip_install(
            ctx, venv, ["-r", str(pipenv_file)], pinned="Pipfile.lock" in ctx.plan.dependency_files
        )
    elif manager == "pyproject":
        _pip_install(ctx, venv, ["-r", "pyproject.toml"], pinned=False)
    elif manager == "setup.py":
        _pip_install(ctx, venv, ["."], pinned=False)


def _uv_sync(ctx: BuildContext, venv: Path) -> None:
    env = {"UV_PROJECT_ENVIRONMENT": str(venv)}
    result = ctx.run(
        [str(ctx.tools.uv), "sync", "--frozen", "--no-dev", "--no-install-project"], env=env
    )
    if result.ok:
        return
    ctx.note(
        "uv sync refused (often a requires-python this machine does not meet): installing "
        "the exported lock with uv pip instead"
    )
    exported = ctx.scratch_dir / "uv-export.txt"
    result = ctx.run(
        [
            str(ctx.tools.uv),
            "export",
            "--frozen",
            "--no-dev",
            "--no-hashes",
            "--no-emit-project",
            "--format",
            "requirements-txt",
            "--output-file",
            str(exported),
        ],
        env=env,
    )
    if not result.ok:
        raise BuildError(
            "uv could not read uv.lock (is it up to date with pyproject.toml?)",
            step="install",
            exit_code=result.exit_code,
        )
    _pip_install(ctx, venv, ["--no-deps", "-r", str(exported)], pinned=True)


def _classify(result: StepResult) -> str:
    text = result.output
    if any(marker in text for marker in _RESOLUTION_FAILURE):
        return "resolution"
    if any(marker in text for marker in _BUILD_FAILURE):
        return "build"
    return "other"


def _constraints_file(ctx: BuildContext, bound: str) -> str:
    path = ctx.scratch_dir / f"build-constraints-setuptools-{bound}.txt"
    path.write_text(f"setuptools<{bound}\n")
    ctx.give(path)
    return str(path)


def _pip_install(ctx: BuildContext, venv: Path, args: list[str], *, pinned: bool) -> None:
    """``uv pip install args`` with the fallbacks of the module docstring."""
    base = [str(ctx.tools.uv), "pip", "install", "--python", str(venv / "bin" / "python")]
    result = ctx.run([*base, *args])
    if result.ok:
        return
    kind = _classify(result)
    constraints: list[str] = []
    if kind == "build":
        for bound in ("70", "58"):
            ctx.note(
                f"A source package failed to build: retrying with setuptools<{bound} in "
                "its build environment (old packages expect old tools)"
            )
            constraints = ["--build-constraints", _constraints_file(ctx, bound)]
            result = ctx.run([*base, *constraints, *args])
            if result.ok:
                return
            kind = _classify(result)
            if kind != "build":
                break
    if kind == "resolution" and pinned and "--no-deps" not in args:
        ctx.note(
            "The pinned versions conflict with each other: installing them as listed, "
            "without dependency resolution (as pip did before 2020)"
        )
        result = ctx.run([*base, "--no-deps", *constraints, *args])
        if result.ok:
            return
    ctx.note(
        "uv refused these dependencies: falling back to pip with setuptools<58, wheel and "
        "--no-build-isolation"
    )
    seeded = ctx.run([*base, "pip", "setuptools<58", "wheel"])
    if seeded.ok:
        pip_args = [a for a in args if a != "--no-deps"]
        if "--no-deps" in args or (kind == "resolution" and pinned):
            pip_args.insert(0, "--no-deps")
        result = ctx.run(
            [
                str(venv / "bin" / "python"),
                "-m",
                "pip",
                "install",
                "--no-build-isolation",
                *pip_args,
            ]
        )
        if result.ok:
            return
    raise BuildError(
        "installing the Python dependencies failed (see the log above)",
        step="install",
        exit_code=result.exit_code,
    )


def _sanitized_requirements(ctx: BuildContext, scan: RequirementsScan) -> str:
    """requirements.txt, minus lines no installer can satisfy (``pkg-resources==0.0.0``)."""
    if not scan.has_bogus:
        return "requirements.txt"
    text = read_text(ctx.app_dir, "requirements.txt") or ""
    kept = [line for line in text.splitlines() if not BOGUS_REQUIREMENTS.match(line)]
    path = ctx.app_dir / ".caboose-requirements.txt"
    path.write_text("\n".join(kept) + "\n")
    ctx.give(path)
    return path.name


def _write(ctx: BuildContext, name: str, lines: list[str]) -> Path:
    path = ctx.scratch_dir / name
    path.write_text("\n".join(lines) + "\n")
    ctx.give(path)
    return path


def _poetry_top_level(pyproject: dict[str, Any]) -> list[str]:
    """Main-group requirement names (with extras) from Poetry's table and PEP 621."""
    out: list[str] = []
    tool = pyproject.get("tool")
    poetry = tool.get("poetry") if isinstance(tool, dict) else None
    deps = poetry.get("dependencies") if isinstance(poetry, dict) else None
    if isinstance(deps, dict):
        for name, spec in deps.items():
            if name == "python" or not isinstance(name, str):
                continue
            if isinstance(spec, dict):
                if spec.get("optional"):
                    continue
                extras = spec.get("extras")
                if isinstance(extras, list) and extras:
                    name = f"{name}[{','.join(str(e) for e in extras)}]"
            out.append(name)
    project = pyproject.get("project")
    if isinstance(project, dict) and isinstance(project.get("dependencies"), list):
        out.extend(d for d in project["dependencies"] if isinstance(d, str))
    return out


def _poetry_requirements(ctx: BuildContext) -> tuple[Path, Path]:
    """The main dependencies (names) and every locked pin (constraints) from poetry.lock."""
    pyproject = load_toml(ctx.app_dir, "pyproject.toml") or {}
    lock = load_toml(ctx.app_dir, "poetry.lock") or {}
    packages = lock.get("package")
    if not isinstance(packages, list):
        raise PlanError("poetry.lock has no [[package]] entries")
    top = _poetry_top_level(pyproject)
    pins: list[str] = []
    direct: dict[str, str] = {}
    for package in packages:
        if not isinstance(package, dict):
            continue
        name, version = package.get("name"), package.get("version")
        if not isinstance(name, str) or not isinstance(version, str):
            continue
        source = package.get("source")
        if isinstance(source, dict) and source.get("type") == "git":
            ref = source.get("resolved_reference") or source.get("reference") or ""
            direct[normalize_name(name)] = f"{name} @ git+{source.get('url')}@{ref}"
            continue
        if isinstance(source, dict) and source.get("type") == "url":
            direct[normalize_name(name)] = f"{name} @ {source.get('url')}"
            continue
        pins.append(f"{name}=={version}")
    top = [direct.pop(normalize_name(_bare(t)), t) for t in top] + list(direct.values())
    return _write(ctx, "poetry-main.txt", top), _write(ctx, "poetry-pins.txt", pins)


def _bare(requirement: str) -> str:
    for sep in ("[", "=", "<", ">", "~", "!", ";", " ", "@"):
        requirement = requirement.split(sep, 1)[0]
    return requirement


def _pipenv_requirements(ctx: BuildContext) -> Path:
    if "Pipfile.lock" in ctx.plan.dependency_files:
        text = read_text(ctx.app_dir, "Pipfile.lock") or "{}"
        try:
            data: Any = json.loads(text)
        except (ValueError, RecursionError):
            raise PlanError("Pipfile.lock is not valid JSON") from None
        default = data.get("default") if isinstance(data, dict) else None
        if not isinstance(default, dict):
            raise PlanError("Pipfile.lock has no 'default' section")
        lines = [_pipenv_line(name, spec) for name, spec in default.items()]
    else:
        pipfile = load_toml(ctx.app_dir, "Pipfile") or {}
        packages = pipfile.get("packages")
        lines = (
            [_pipenv_line(n, s) for n, s in packages.items()] if isinstance(packages, dict) else []
        )
    return _write(ctx, "pipenv-requirements.txt", [line for line in lines if line])


def _pipenv_line(name: str, spec: Any) -> str:
    """One Pipfile/Pipfile.lock entry as a PEP 508 requirement."""
    if isinstance(spec, str):
        return name if spec.strip() in ("*", "") else f"{name}{spec.strip()}"
    if not isinstance(spec, dict):
        return ""
    extras = spec.get("extras")
    head = f"{name}[{','.join(map(str, extras))}]" if isinstance(extras, list) and extras else name
    markers = spec.get("markers")
    tail = f" ; {markers}" if isinstance(markers, str) and markers else ""
    if isinstance(spec.get("git"), str):
        ref = spec.get("ref") or ""
        return f"{head} @ git+{spec['git']}" + (f"@{ref}" if ref else "") + tail
    if isinstance(spec.get("path"), str):
        return f"{'-e ' if spec.get('editable') else ''}{spec['path']}"
    version = spec.get("version")
    version = "" if not isinstance(version, str) or version.strip() == "*" else version.strip()
    return f"{head}{version}{tail}"


def _run_custom_install(ctx: BuildContext) -> None:
    command = ctx.plan.install_command or ""
    ctx.note(f"==> install (service setting, uncached): {command}")
    result = ctx.run(["bash", "-c", command])
    if not result.ok:
        raise BuildError(
            f"the install command failed with exit code {result.exit_code}",
            step="install",
            exit_code=result.exit_code,
        )
