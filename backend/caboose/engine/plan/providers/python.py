"""Python apps: how dependencies are declared, and how the app starts when nobody said.

Dependency declarations, most precise first: ``uv.lock`` (with pyproject.toml), ``poetry.lock``,
``Pipfile.lock``, ``requirements.txt``, ``Pipfile``, then a bare ``pyproject.toml``. Without any,
the app still gets a virtualenv of its own (so ``python`` means the build's interpreter).

The default start command, as Heroku/Railway users expect: find the app object (a module-level
``app``/``application`` in ``main.py``, ``app.py``, ``wsgi.py``... or a Django project's
``wsgi``), then serve it with the server the dependencies bring (uvicorn or hypercorn for ASGI
apps; gunicorn, waitress or uvicorn for WSGI ones) on ``0.0.0.0:$PORT``; failing that, run
``python main.py`` (or ``app.py``...) and let the app read ``PORT`` itself.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from caboose.engine.plan.files import is_file, read_text, scan_text
from caboose.engine.plan.providers.base import ProviderPlan
from caboose.engine.plan.requirements import (
    load_toml,
    normalize_name,
    pipfile_dependency_names,
    pyproject_dependency_names,
    scan_requirements,
)
from caboose.engine.plan.runtimes import Runtimes, python_spec_allows, version_tuple
from caboose.engine.types import PlanError

_MANIFESTS = (
    "requirements.txt",
    "pyproject.toml",
    "Pipfile",
    "Pipfile.lock",
    "setup.py",
    "uv.lock",
    "poetry.lock",
    "runtime.txt",
)
_ENTRY_FILES = (
    "main.py",
    "app.py",
    "wsgi.py",
    "asgi.py",
    "server.py",
    "application.py",
    "api.py",
    "run.py",
    "app/main.py",
    "src/main.py",
    "src/app.py",
    "api/main.py",
    "backend/main.py",
)
_RUNNABLE = ("main.py", "app.py", "server.py", "run.py", "bot.py", "application.py")
_APP_ASSIGNMENT = re.compile(
    r"^(?P<var>app|application|api|server)\s*(?::[^=\n]+)?=\s*(?P<value>[^\n]+)$", re.MULTILINE
)
_ASGI_HINTS = (
    "FastAPI(",
    "Starlette(",
    "Quart(",
    "Litestar(",
    "Sanic(",
    "Starlite(",
    "socketio.ASGIApp",
    "get_asgi_application(",
)
_WSGI_HINTS = (
    "Flask(",
    "Bottle(",
    "falcon.App(",
    "falcon.API(",
    "Pyramid",
    "get_wsgi_application(",
    "make_wsgi_app(",
    "Dash(",
    "bottle.default_app(",
)
_ASGI_PACKAGES = {"fastapi", "starlette", "quart", "litestar", "sanic", "starlite"}
_WSGI_PACKAGES = {"flask", "django", "bottle", "falcon", "pyramid", "dash"}


class PythonProvider:
    name = "python"
    markers = (
        "requirements.txt, pyproject.toml, Pipfile, setup.py, uv.lock, poetry.lock "
        "or a .py file at the root"
    )

    def detect(self, source_dir: Path) -> bool:
        if any(is_file(source_dir, name) for name in _MANIFESTS):
            return True
        if is_file(source_dir, "package.json"):
            return False  # a Node app with helper scripts in Python
        return any(p.suffix == ".py" and p.is_file() for p in _children(source_dir))

    def plan(self, source_dir: Path, runtimes: Runtimes) -> ProviderPlan:
        if runtimes.python is None:
            raise PlanError("this is a Python app, but no Python interpreter is installed")
        notes: list[str] = []
        manager, files, install, names = _dependencies(source_dir, notes)
        requested = _requested_version(source_dir, runtimes.python, notes)
        start = _default_start(source_dir, names, notes)
        hint = None
        if start is None:
            hint = (
                "no start command for this Python app: add a Procfile ('web: <command>'), "
                "set deploy.startCommand in railway.json, set the service's start command, "
                "or add a main.py/app.py"
            )
        return ProviderPlan(
            provider=self.name,
            runtime="python",
            runtime_version=runtimes.python,
            package_manager=manager,
            dependency_files=tuple(files),
            install_command=install,
            start_command=start,
            requested_runtime_version=requested,
            notes=tuple(notes),
            start_hint=hint,
        )


def _children(source_dir: Path) -> list[Path]:
    try:
        return [p for p in source_dir.iterdir() if not p.name.startswith(".")][:2000]
    except OSError:
        return []


def _dependencies(
    source_dir: Path, notes: list[str]
) -> tuple[str | None, list[str], str, set[str]]:
    """(package manager, files keying the cache, install command for the log, dep names)."""
    pyproject = (
        load_toml(source_dir, "pyproject.toml") if is_file(source_dir, "pyproject.toml") else None
    )
    if pyproject is not None and is_file(source_dir, "uv.lock"):
        return (
            "uv",
            ["pyproject.toml", "uv.lock"],
            "uv sync --frozen --no-dev --no-install-project",
            pyproject_dependency_names(pyproject),
        )
    if pyproject is not None and is_file(source_dir, "poetry.lock"):
        return (
            "poetry",
            ["pyproject.toml", "poetry.lock"],
            "uv pip install (the poetry.lock pins of the main dependencies)",
            pyproject_dependency_names(pyproject),
        )
    if is_file(source_dir, "Pipfile.lock"):
        pipfile = load_toml(source_dir, "Pipfile") if is_file(source_dir, "Pipfile") else {}
        return (
            "pipenv",
            ["Pipfile.lock"],
            "uv pip install (the Pipfile.lock default packages)",
            pipfile_dependency_names(pipfile or {}) | _pipfile_lock_names(source_dir),
        )
    if is_file(source_dir, "requirements.txt"):
        scan = scan_requirements(source_dir, "requirements.txt")
        if scan.has_bogus:
            notes.append(
                "requirements.txt: 'pkg-resources==0.0.0' (a pip freeze artifact) is skipped"
            )
        return "pip", scan.files, "uv pip install -r requirements.txt", scan.names
    if is_file(source_dir, "Pipfile"):
        pipfile = load_toml(source_dir, "Pipfile") or {}
        return (
            "pipenv",
            ["Pipfile"],
            "uv pip install (the Pipfile packages)",
            pipfile_dependency_names(pipfile),
        )
    if pyproject is not None:
        return (
            "pyproject",
            ["pyproject.toml"],
            "uv pip install -r pyproject.toml",
            pyproject_dependency_names(pyproject),
        )
    if is_file(source_dir, "setup.py"):
        notes.append("setup.py without requirements: installing the project itself (uncached)")
        return "setup.py", ["setup.py"], "uv pip install .", set()
    return None, [], "uv venv (no dependencies declared)", set()


def _pipfile_lock_names(source_dir: Path) -> set[str]:
    import json

    text = read_text(source_dir, "Pipfile.lock")
    try:
        data: Any = json.loads(text or "{}")
    except (ValueError, RecursionError):
        raise PlanError("Pipfile.lock is not valid JSON") from None
    default = data.get("default") if isinstance(data, dict) else None
    if not isinstance(default, dict):
        raise PlanError("Pipfile.lock has no 'default' section")
    return {normalize_name(k) for k in default if isinstance(k, str)}


def _requested_version(source_dir: Path, have: str, notes: list[str]) -> str | None:
    """The Python version the app asks for, noting when it is not the one installed."""
    requested: str | None = None
    origin = ""
    runtime_txt = (
        read_text(source_dir, "runtime.txt", limit=4096)
        if is_file(source_dir, "runtime.txt")
        else None
    )
    if runtime_txt and runtime_txt.strip():
        requested = runtime_txt.strip().splitlines()[0].strip().removeprefix("python-")
        origin = "runtime.txt"
    elif is_file(source_dir, ".python-version"):
        text = read_text(source_dir, ".python-version", limit=4096) or ""
        lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
        if lines:
            requested, origin = lines[0], ".python-version"
    if requested is not None:
        want = version_tuple(requested)
        if not want or want[:2] != version_tuple(have)[:2]:
            notes.append(
                f"{origin} asks for Python {requested}; only Python {have} is installed "
                "here, so the app is built with it"
            )
        return requested
    pyproject = (
        load_toml(source_dir, "pyproject.toml") if is_file(source_dir, "pyproject.toml") else None
    )
    project = pyproject.get("project") if pyproject else None
    spec = project.get("requires-python") if isinstance(project, dict) else None
    if isinstance(spec, str) and spec.strip():
        if python_spec_allows(spec, have) is False:
            notes.append(
                f"pyproject.toml requires Python {spec}; only Python {have} is installed "
                "here, so the app is built with it"
            )
        return spec.strip()
    return None


def _default_start(source_dir: Path, deps: set[str], notes: list[str]) -> str | None:
    has = deps.__contains__
    if is_file(source_dir, "manage.py"):
        project = _django_project(source_dir)
        if project is not None:
            if has("gunicorn"):
                return f"gunicorn --bind 0.0.0.0:$PORT {project}.wsgi"
            if has("uvicorn") and is_file(source_dir, f"{project}/asgi.py"):
                return f"uvicorn {project}.asgi:application --host 0.0.0.0 --port $PORT"
            return "python manage.py runserver 0.0.0.0:$PORT --noreload"
    found = _find_app(source_dir, deps)
    if found is not None:
        target, kind = found
        if kind == "asgi":
            if has("uvicorn"):
                return f"uvicorn {target} --host 0.0.0.0 --port $PORT"
            if has("hypercorn"):
                return f"hypercorn {target} --bind 0.0.0.0:$PORT"
            if has("daphne"):
                return f"daphne --bind 0.0.0.0 --port $PORT {target}"
        else:
            if has("gunicorn"):
                return f"gunicorn --bind 0.0.0.0:$PORT {target}"
            if has("waitress"):
                return f"waitress-serve --listen=0.0.0.0:$PORT {target}"
            if has("uvicorn"):
                return f"uvicorn {target} --interface wsgi --host 0.0.0.0 --port $PORT"
            if has("hypercorn"):
                return f"hypercorn {target} --bind 0.0.0.0:$PORT"
        notes.append(
            f"found the app object {target}, but no server (gunicorn, uvicorn, "
            "hypercorn, waitress) among the dependencies"
        )
    for name in _RUNNABLE:
        if is_file(source_dir, name):
            return f"python {name}"
    return None


def _django_project(source_dir: Path) -> str | None:
    text = scan_text(source_dir, "manage.py") or ""
    match = re.search(r"DJANGO_SETTINGS_MODULE['\"]\s*,\s*['\"]([\w.]+)\.settings", text)
    if match and is_file(source_dir, f"{match.group(1).replace('.', '/')}/wsgi.py"):
        return match.group(1)
    for child in _children(source_dir):
        if (child / "wsgi.py").is_file() and (child / "settings.py").exists():
            return child.name
    return None


def _find_app(source_dir: Path, deps: set[str]) -> tuple[str, str] | None:
    """``("module:var", "asgi"|"wsgi")`` for the first file defining an app at module level."""
    for rel in _ENTRY_FILES:
        if not is_file(source_dir, rel):
            continue
        text = scan_text(source_dir, rel)
        if not text:
            continue
        match = _APP_ASSIGNMENT.search(text)
        if match is None:
            continue
        module = rel.removesuffix(".py").replace("/", ".")
        kind = _app_kind(text, match.group("value"), deps)
        if kind is None:
            continue
        return f"{module}:{match.group('var')}", kind
    return None


def _app_kind(text: str, value: str, deps: set[str]) -> str | None:
    if any(h in value for h in _ASGI_HINTS) or any(h in text for h in _ASGI_HINTS):
        return "asgi"
    if any(h in value for h in _WSGI_HINTS) or any(h in text for h in _WSGI_HINTS):
        return "wsgi"
    imports = set(re.findall(r"^\s*(?:from|import)\s+([A-Za-z_]\w*)", text, re.MULTILINE))
    imported = {normalize_name(i) for i in imports}
    if imported & _ASGI_PACKAGES:
        return "asgi"
    if imported & _WSGI_PACKAGES:
        return "wsgi"
    if "create_app" in value:
        return "asgi" if deps & _ASGI_PACKAGES else "wsgi" if deps & _WSGI_PACKAGES else None
    return None
