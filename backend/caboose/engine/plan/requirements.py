"""Reading Python dependency declarations without installing anything.

Used twice: by the planner (which web server is among the dependencies decides the default
start command) and by the build (which files key the dependency cache, and whether the set
refers to the source tree itself, which makes it uncacheable).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from caboose.engine.plan.files import read_text
from caboose.engine.types import PlanError

_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_INCLUDE = re.compile(r"^\s*(-r|--requirement|-c|--constraint)(?:\s+|=)(\S+)")
_MAX_INCLUDES = 32
# pip-freeze output on old Ubuntu: a distribution that never existed on PyPI.
BOGUS_REQUIREMENTS = re.compile(r"^\s*pkg[-_]resources\s*==\s*0\.0\.0\s*$", re.IGNORECASE)


def normalize_name(name: str) -> str:
    """PEP 503 normalisation: ``Flask_SQLAlchemy`` → ``flask-sqlalchemy``."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(slots=True)
class RequirementsScan:
    """What a requirements file (and the files it includes) declares."""

    names: set[str] = field(default_factory=set)
    files: list[str] = field(default_factory=list)  # the file itself first, then its includes
    has_local: bool = False  # -e . / ./pkg / file: — depends on the tree, so uncacheable
    has_bogus: bool = False  # pkg-resources==0.0.0
    fully_pinned: bool = True  # every requirement is name==version (a pip freeze)


def scan_requirements(source_dir: Path, rel: str) -> RequirementsScan:
    scan = RequirementsScan()
    _scan_into(source_dir, rel, scan, depth=0)
    return scan


def _scan_into(source_dir: Path, rel: str, scan: RequirementsScan, depth: int) -> None:
    if rel in scan.files:
        return
    if depth > 8 or len(scan.files) >= _MAX_INCLUDES:
        raise PlanError(f"{rel}: too many nested requirement files")
    text = read_text(source_dir, rel)
    if text is None:
        if depth == 0:
            return
        raise PlanError(f"requirements file {rel} (included from {scan.files[-1]}) not found")
    scan.files.append(rel)
    base = PurePosixPath(rel).parent
    for raw in _logical_lines(text):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        include = _INCLUDE.match(line)
        if include:
            target = PurePosixPath(base, include.group(2))
            if target.is_absolute() or ".." in target.parts:
                if "://" in include.group(2):
                    continue  # a remote constraints file: pip fetches it itself
                raise PlanError(f"{rel}: included file {include.group(2)!r} is outside the tree")
            _scan_into(source_dir, str(target), scan, depth + 1)
            continue
        if BOGUS_REQUIREMENTS.match(line):
            scan.has_bogus = True
            continue
        if line.startswith(("-e", "--editable", ".", "/", "file:")) or " @ file:" in line:
            scan.has_local = True
            scan.fully_pinned = False
            continue
        if line.startswith("-"):
            continue  # --index-url, --extra-index-url, --find-links, --hash ...
        match = _NAME.match(line)
        if match:
            scan.names.add(normalize_name(match.group(1)))
            if "==" not in line and "@" not in line:
                scan.fully_pinned = False


def _logical_lines(text: str) -> list[str]:
    """Join backslash continuations, as pip does."""
    out: list[str] = []
    pending = ""
    for line in text.splitlines():
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        out.append(pending + line)
        pending = ""
    if pending:
        out.append(pending)
    return out


def load_toml(source_dir: Path, rel: str) -> dict[str, Any] | None:
    """A TOML manifest (pyproject.toml, Pipfile, poetry.lock), PlanError when malformed."""
    text = read_text(source_dir, rel, limit=8 * 1024 * 1024)
    if text is None:
        return None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PlanError(f"{rel} is not valid TOML: {exc}") from None
    except RecursionError:
        raise PlanError(f"{rel} is nested too deeply") from None


def pyproject_dependency_names(pyproject: dict[str, Any]) -> set[str]:
    """Top-level dependency names of PEP 621 ``[project]`` and Poetry's table."""
    names: set[str] = set()
    project = pyproject.get("project")
    if isinstance(project, dict):
        deps = project.get("dependencies")
        if isinstance(deps, list):
            for dep in deps:
                if isinstance(dep, str) and (m := _NAME.match(dep)):
                    names.add(normalize_name(m.group(1)))
    tool = pyproject.get("tool")
    poetry = tool.get("poetry") if isinstance(tool, dict) else None
    if isinstance(poetry, dict):
        deps = poetry.get("dependencies")
        if isinstance(deps, dict):
            names.update(normalize_name(k) for k in deps if isinstance(k, str) and k != "python")
    return names


def pipfile_dependency_names(pipfile: dict[str, Any]) -> set[str]:
    packages = pipfile.get("packages")
    if not isinstance(packages, dict):
        return set()
    return {normalize_name(k) for k in packages if isinstance(k, str)}
