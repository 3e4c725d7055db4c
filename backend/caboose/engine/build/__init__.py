"""Build: install dependencies (cached) and run the build command, as the project's user."""

from __future__ import annotations

from caboose.engine.build.artifacts import (
    BuildResult,
    collect_old_artifacts,
    collect_unused_cache_entries,
    load_build_result,
    referenced_cache_keys,
)
from caboose.engine.build.builder import build_artifact
from caboose.engine.build.process import StepResult, run_step
from caboose.engine.build.tools import BuildTools, discover_build_tools

__all__ = [
    "BuildResult",
    "BuildTools",
    "StepResult",
    "build_artifact",
    "collect_old_artifacts",
    "collect_unused_cache_entries",
    "discover_build_tools",
    "load_build_result",
    "referenced_cache_keys",
    "run_step",
]
