"""Real builds of the sample apps with real uv and npm, as the project's user when root."""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from caboose.engine.build import (
    BuildResult,
    BuildTools,
    build_artifact,
    collect_old_artifacts,
    collect_unused_cache_entries,
    load_build_result,
    referenced_cache_keys,
)
from caboose.engine.build.artifacts import write_manifest
from caboose.engine.plan import plan_build
from caboose.engine.sandbox import AppUser, is_privileged
from caboose.engine.types import (
    BuildError,
    BuildPlan,
    MemoryReporter,
    OperationCancelledError,
    StepTimeoutError,
)


@dataclasses.dataclass
class Builder:
    work_dir: Path
    cache_dir: Path
    tools: BuildTools
    user: AppUser
    fixture_app: Callable[[str], Path]
    count: int = 0

    def plan(self, app: str, **changes: object) -> tuple[Path, BuildPlan]:
        source = self.fixture_app(app)
        plan = plan_build(source, runtimes=self.tools.runtimes())
        return source, dataclasses.replace(plan, **changes)  # type: ignore[arg-type]

    def build(
        self, app: str, reporter: MemoryReporter | None = None, **kw: object
    ) -> tuple[BuildResult, MemoryReporter]:
        changes = kw.pop("changes", {})
        source, plan = self.plan(app, **changes)  # type: ignore[arg-type]
        return self.build_plan(source, plan, reporter, **kw)

    def build_plan(
        self, source: Path, plan: BuildPlan, reporter: MemoryReporter | None = None, **kw: object
    ) -> tuple[BuildResult, MemoryReporter]:
        reporter = reporter or MemoryReporter()
        self.count += 1
        result = build_artifact(
            plan,
            source_dir=source,
            artifact_dir=self.work_dir / "artifacts" / f"build-{self.count}",
            cache_dir=self.cache_dir,
            tools=self.tools,
            user=self.user,
            reporter=reporter,
            **kw,  # type: ignore[arg-type]
        )
        return result, reporter


@pytest.fixture
def builder(
    work_dir: Path,
    cache_dir: Path,
    build_tools: BuildTools,
    app_user: AppUser,
    fixture_app: Callable[[str], Path],
) -> Builder:
    (work_dir / "artifacts").mkdir()
    return Builder(work_dir, cache_dir, build_tools, app_user, fixture_app)


def test_flask_app_installs_then_hits_the_cache(builder: Builder) -> None:
    first, log = builder.build("flask-gunicorn")
    assert not first.cache_hit
    assert "cache miss" in log.text
    assert "+ flask==3.1.0" in log.text  # uv's own output, streamed
    assert ("build", "succeeded") in log.stages
    venv = Path(first.runtime_env["VIRTUAL_ENV"])
    assert (venv / "bin" / "gunicorn").exists()
    assert (first.app_dir / ".venv").resolve() == venv.resolve()

    second, log = builder.build("flask-gunicorn")
    assert second.cache_hit
    assert second.cache_key == first.cache_key
    assert "cache hit" in log.text
    assert "Resolved" not in log.text and "Installed" not in log.text  # no installer ran
    assert load_build_result(second.artifact_dir) == second

    # the artifact is frozen, and the app's dependencies import as the app user
    assert not any(os.stat(p).st_mode & 0o222 for p in second.artifact_dir.rglob("*.py"))
    assert not (second.artifact_dir / ".build").exists()
    _, run = builder.build_plan(
        builder.fixture_app("static-site"),
        dataclasses.replace(
            second.plan,
            provider="command",
            build_command=f"{venv}/bin/python -c 'import flask, gunicorn; print(\"imports ok\")'",
        ),
    )
    assert "imports ok" in run.text


def test_uv_lock_app(builder: Builder) -> None:
    result, log = builder.build("fastapi-uvicorn")
    assert "uv sync" in log.text
    site = Path(result.runtime_env["VIRTUAL_ENV"]) / "lib" / "python3.11" / "site-packages"
    assert (site / "fastapi").is_dir() and (site / "uvicorn").is_dir()


def test_express_app_installs_then_hits_the_cache(builder: Builder) -> None:
    probe = "node -e \"require('express'); console.log('express loads')\""
    _, log = builder.build("express", changes={"build_command": probe})
    assert "added 72 packages" in log.text
    assert "express loads" in log.text
    second, log = builder.build("express", changes={"build_command": probe})
    assert second.cache_hit
    assert "cache hit" in log.text
    assert "added" not in log.text
    assert "express loads" in log.text
    assert (second.app_dir / "node_modules" / "express" / "package.json").is_file()
    assert second.runtime_env["NODE_ENV"] == "production"
    assert str(second.app_dir / "node_modules" / ".bin") in second.path_prefix


def test_static_site_needs_no_install(builder: Builder) -> None:
    result, log = builder.build("static-site")
    assert result.plan.static_dir == "."
    assert (result.app_dir / "index.html").is_file()
    assert "==> install" not in log.text


def test_failing_build_reports_and_leaves_nothing(builder: Builder) -> None:
    reporter = MemoryReporter()
    with pytest.raises(BuildError) as caught:
        builder.build("failing-build", reporter)
    assert (caught.value.step, caught.value.exit_code) == ("build", 3)
    assert "failing-build: error: something is wrong with the assets" in reporter.text
    assert reporter.stages[-1] == ("build", "failed")
    assert list((builder.work_dir / "artifacts").iterdir()) == []


def test_environment_is_built_from_nothing(
    builder: Builder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CABOOSE_JWT_SECRET", "platform-secret-never-in-builds")
    result, log = builder.build(
        "static-site",
        changes={"build_command": "env | sort; id -u; echo home=$HOME"},
        variables={"API_URL": "https://api.example.com", "PATH": "/evil", "BAD=NAME": "x"},
    )
    assert "platform-secret-never-in-builds" not in log.text
    assert "CABOOSE_JWT_SECRET" not in log.text
    assert "API_URL=https://api.example.com" in log.text
    assert "CI=true" in log.text and "LANG=C.UTF-8" in log.text
    assert "/evil" not in log.text
    assert f"home={result.artifact_dir}/.build/home" in log.text
    assert str(builder.user.uid) in [line for _, line in log.lines]


def test_output_is_streamed_line_by_line(builder: Builder) -> None:
    _, log = builder.build(
        "static-site", changes={"build_command": "printf 'step 10%%\\rstep 100%%\\nnext\\n'"}
    )
    lines = [line for stream, line in log.lines if stream == "build"]
    assert lines[-2:] == ["step 100%", "next"]


def test_timeout_kills_the_build(builder: Builder) -> None:
    started = time.monotonic()
    with pytest.raises(StepTimeoutError):
        builder.build("static-site", changes={"build_command": "sleep 60"}, timeout=1.0)
    assert time.monotonic() - started < 10
    assert list((builder.work_dir / "artifacts").iterdir()) == []


def test_cancellation_kills_the_build(builder: Builder) -> None:
    cancel = threading.Event()
    threading.Timer(0.5, cancel.set).start()
    reporter = MemoryReporter()
    with pytest.raises(OperationCancelledError):
        builder.build("static-site", reporter, changes={"build_command": "sleep 60"}, cancel=cancel)
    assert reporter.stages[-1] == ("build", "cancelled")


def test_background_leftovers_do_not_hold_the_build(builder: Builder) -> None:
    started = time.monotonic()
    _, log = builder.build("static-site", changes={"build_command": "sleep 60 & echo started"})
    assert "started" in log.text
    assert time.monotonic() - started < 10


def test_old_pinned_dependencies_still_install(builder: Builder, work_dir: Path) -> None:
    """``anyjson 0.3.3`` (2012) only builds with setuptools < 58; a pip freeze line that never
    existed on PyPI is dropped."""
    source = work_dir / "old-app"
    source.mkdir()
    (source / "requirements.txt").write_text("anyjson==0.3.3\npkg-resources==0.0.0\n")
    (source / "main.py").write_text("import anyjson\n")
    plan = plan_build(source, runtimes=builder.tools.runtimes())
    result, log = builder.build_plan(source, plan)
    assert "setuptools<" in log.text
    site = Path(result.runtime_env["VIRTUAL_ENV"]) / "lib" / "python3.11" / "site-packages"
    assert (site / "anyjson").is_dir()


def test_collect_old_artifacts(work_dir: Path) -> None:
    service = work_dir / "service"
    plan = BuildPlan(provider="static", runtime="static", runtime_version="")
    for i in range(7):
        artifact = service / f"b{i}"
        (artifact / "app").mkdir(parents=True)
        write_manifest(
            BuildResult(
                build_id=f"b{i}",
                artifact_dir=artifact,
                app_dir=artifact / "app",
                plan=plan,
                cache_key=f"k{i}",
                cache_hit=False,
                path_prefix=(),
                finished_at=1000.0 + i,
            )
        )
        (artifact / "app").chmod(0o500)
    (service / "in-progress").mkdir()
    removed = collect_old_artifacts(service, keep=3, in_use={"b0"})
    assert sorted(p.name for p in removed) == ["b1", "b2", "b3"]
    assert sorted(p.name for p in service.iterdir()) == ["b0", "b4", "b5", "b6", "in-progress"]
    assert referenced_cache_keys(service.iterdir()) == {"k0", "k4", "k5", "k6"}

    cache = work_dir / "cache"
    for key in ("k0", "k1"):
        (cache / "python" / key / "venv").mkdir(parents=True)
    assert collect_unused_cache_entries(cache, {"k0"}, min_age_seconds=0) == [
        cache / "python" / "k1"
    ]


@pytest.mark.skipif(not is_privileged(), reason="needs root to drop privileges")
def test_builds_run_as_the_project_user(builder: Builder) -> None:
    result, log = builder.build("static-site", changes={"build_command": "id -un; touch made"})
    assert builder.user.name in log.text
    assert (result.app_dir / "made").stat().st_uid == builder.user.uid
    assert result.artifact_dir.stat().st_uid == builder.user.uid
