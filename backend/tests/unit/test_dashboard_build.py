"""The dashboard build as `caboosed up` and `caboosed build-dashboard` see it: when it is current,
how it is built (real npm on a tiny package), and what its processes are given."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from caboose.server.dashboard import (
    DashboardBuild,
    DashboardUnavailableError,
    build_environment,
    ensure_built,
    find_frontend,
    server_environment,
)

needs_npm = pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed")

# A stand-in for `next build` + postbuild: what `caboosed up` needs of a build, and a counter.
BUILD_SCRIPT = """
const fs = require("fs");
fs.mkdirSync(".next/standalone/.next/static", { recursive: true });
fs.writeFileSync(".next/standalone/server.js", "// built\\n");
fs.appendFileSync("builds.txt", "built\\n");
if (process.env.CABOOSE_MASTER_KEY) fs.writeFileSync("leaked.txt", "yes");
"""


@pytest.fixture
def frontend(tmp_path: Path) -> Path:
    root = tmp_path / "frontend"
    (root / "src" / "app").mkdir(parents=True)
    (root / "public").mkdir()
    (root / "node_modules").mkdir()
    (root / "src" / "app" / "page.tsx").write_text("export default () => null;\n")
    (root / "public" / "favicon.svg").write_text("<svg/>\n")
    (root / "build.js").write_text(BUILD_SCRIPT)
    package = {"name": "fake-dashboard", "private": True, "scripts": {"build": "node build.js"}}
    (root / "package.json").write_text(json.dumps(package))
    return root


def builds(frontend: Path) -> int:
    counter = frontend / "builds.txt"
    return len(counter.read_text().splitlines()) if counter.exists() else 0


def test_the_checkout_has_a_frontend() -> None:
    found = find_frontend()
    assert found is not None and (found / "next.config.ts").is_file()


def test_the_digest_follows_the_sources_and_nothing_else(frontend: Path) -> None:
    build = DashboardBuild(frontend)
    first = build.sources_digest()
    assert build.sources_digest() == first
    # Outputs and installed packages are not sources.
    (frontend / ".next").mkdir()
    (frontend / ".next" / "anything").write_text("x")
    (frontend / "node_modules" / "dep.js").write_text("x")
    assert build.sources_digest() == first
    (frontend / "src" / "app" / "page.tsx").write_text("export default () => 1;\n")
    changed = build.sources_digest()
    assert changed != first
    # A rename with the same content is a change too.
    (frontend / "src" / "app" / "page.tsx").rename(frontend / "src" / "app" / "other.tsx")
    assert build.sources_digest() not in (first, changed)


@needs_npm
def test_built_once_then_only_when_the_sources_change(
    frontend: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CABOOSE_MASTER_KEY", "not-for-the-build")
    build = DashboardBuild(frontend)
    assert not build.is_built() and not build.is_current()

    assert ensure_built(build, echo=lambda _: None) is True
    assert build.is_current() and builds(frontend) == 1
    assert not (frontend / "leaked.txt").exists(), "the build saw the platform's settings"

    assert ensure_built(build, echo=lambda _: None) is False
    assert builds(frontend) == 1

    (frontend / "public" / "favicon.svg").write_text("<svg></svg>\n")
    assert build.is_built() and not build.is_current()
    assert ensure_built(build, echo=lambda _: None) is True
    assert builds(frontend) == 2
    assert ensure_built(build, force=True, echo=lambda _: None) is True
    assert builds(frontend) == 3


@needs_npm
def test_a_failed_build_is_reported_and_not_stamped(frontend: Path) -> None:
    (frontend / "build.js").write_text("process.exit(3);\n")
    build = DashboardBuild(frontend)
    with pytest.raises(DashboardUnavailableError, match="build failed"):
        ensure_built(build, echo=lambda _: None)
    assert not build.is_current() and build.built_digest() is None


def test_what_is_missing_is_said(frontend: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    build = DashboardBuild(frontend)
    with pytest.raises(DashboardUnavailableError, match="not built"):
        build.server_command()
    (frontend / "node_modules").rmdir()
    if shutil.which("npm") is not None:
        with pytest.raises(DashboardUnavailableError, match="make install"):
            build.build_command()
    monkeypatch.setenv("PATH", str(frontend / "nowhere"))
    with pytest.raises(DashboardUnavailableError, match="npm is not installed"):
        build.build_command()
    with pytest.raises(DashboardUnavailableError, match=r"Node\.js is not installed"):
        build.server_command()


def test_processes_get_nothing_of_the_platform(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CABOOSE_MASTER_KEY", "secret")
    monkeypatch.setenv("CABOOSE_SECRET_KEY", "secret")
    server = server_environment(43210)
    assert server["PORT"] == "43210" and server["HOSTNAME"] == "127.0.0.1"
    assert server["NODE_ENV"] == "production"
    assert not [key for key in server if key.startswith("CABOOSE_")]
    assert not [key for key in build_environment() if key.startswith("CABOOSE_")]
