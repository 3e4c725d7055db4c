"""Fixtures of the engine tests: real directories, the real app user, the real toolchain.

When the tests run as root (CI, the dev container), builds and clones run as a real
unprivileged project user, exactly as in production; the work root is then world-traversable
(0711) like the platform's data dir, since pytest's own temp root is private to root.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from caboose.engine.build import BuildTools, discover_build_tools
from caboose.engine.build.cache import force_rmtree
from caboose.engine.sandbox import AppUser, current_user, ensure_app_user, is_privileged
from caboose.engine.types import MemoryReporter

FIXTURE_APPS = Path(__file__).resolve().parents[1] / "fixtures" / "apps"
TEST_PROJECT_ID = "caboose-engine-tests"


@pytest.fixture(scope="session")
def work_root() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="caboose-engine-"))
    root.chmod(0o711)
    try:
        yield root
    finally:
        force_rmtree(root)


@pytest.fixture
def work_dir(work_root: Path, request: pytest.FixtureRequest) -> Path:
    """A fresh directory per test under the traversable work root."""
    prefix = re.sub(r"[^A-Za-z0-9_.-]", "_", request.node.name)[:40] + "-"
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=work_root))
    path.chmod(0o711)
    return path


@pytest.fixture(scope="session")
def app_user() -> AppUser:
    return ensure_app_user(TEST_PROJECT_ID) if is_privileged() else current_user()


@pytest.fixture(scope="session")
def build_tools() -> BuildTools:
    return discover_build_tools()


@pytest.fixture(scope="session")
def cache_dir(work_root: Path) -> Path:
    """One project cache for the session: later builds reuse what earlier ones downloaded."""
    return work_root / "project-cache"


@pytest.fixture
def reporter() -> MemoryReporter:
    return MemoryReporter()


@pytest.fixture
def fixture_app(work_dir: Path) -> Callable[[str], Path]:
    """Copy a sample app from tests/fixtures/apps into a fresh source directory."""

    def copy(name: str) -> Path:
        dest = work_dir / f"src-{name}-{len(list(work_dir.iterdir()))}"
        shutil.copytree(FIXTURE_APPS / name, dest)
        return dest

    return copy
