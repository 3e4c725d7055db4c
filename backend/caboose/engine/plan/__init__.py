"""Plan: decide how a source tree installs, builds and starts (see ``planner``)."""

from __future__ import annotations

from caboose.engine.plan.config import RailwayConfig, load_railway_config
from caboose.engine.plan.planner import plan_and_report, plan_build, render_plan
from caboose.engine.plan.procfile import Procfile, load_procfile, parse_procfile
from caboose.engine.plan.runtimes import Runtimes, detect_runtimes

__all__ = [
    "Procfile",
    "RailwayConfig",
    "Runtimes",
    "detect_runtimes",
    "load_procfile",
    "load_railway_config",
    "parse_procfile",
    "plan_and_report",
    "plan_build",
    "render_plan",
]
