"""Decide the build plan of a source tree.

Precedence, field by field (the first source that sets a field wins):

1. the service's settings (``ServiceOverrides``: what the user set in the dashboard or API);
2. config-as-code (``railway.json`` / ``railway.toml``, or the service's custom config path,
   with its ``environments.<environment>`` block applied);
3. the ``Procfile`` (``web`` → start, ``release`` → pre-deploy);
4. the provider's defaults (Python, then Node, then static sites: the first that recognises
   the tree);
5. the platform defaults (healthcheck timeout 300 s, ``ON_FAILURE`` with 10 retries, 1 replica).

Settings beat the repository so that an operator can always fix a deploy without a commit.
(Railway itself lets the file win over the dashboard; Caboose chose the other way round.)

A tree no provider recognises still deploys when a start command is given (from any of 1-3):
it runs as is, with nothing installed. Otherwise the error says what was looked for.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

from caboose.engine.plan.config import RailwayConfig, load_railway_config
from caboose.engine.plan.files import listing
from caboose.engine.plan.procfile import Procfile, load_procfile
from caboose.engine.plan.providers import PROVIDERS, ProviderPlan
from caboose.engine.plan.runtimes import Runtimes, detect_runtimes
from caboose.engine.types import (
    DEFAULT_HEALTHCHECK_TIMEOUT,
    DEFAULT_RESTART_MAX_RETRIES,
    BuildPlan,
    PlanError,
    Reporter,
    RestartPolicyType,
    ServiceOverrides,
    StageStatus,
)

SETTINGS = "service settings"
T = TypeVar("T")


def plan_build(
    source_dir: Path,
    overrides: ServiceOverrides | None = None,
    *,
    environment_name: str | None = None,
    runtimes: Runtimes | None = None,
) -> BuildPlan:
    """The plan for ``source_dir`` (see the module docstring for who wins what).

    ``runtimes`` are the interpreter versions builds will use (probed when not given).
    Raises ``PlanError`` for an unrecognised tree or a malformed manifest/config file.
    """
    if not source_dir.is_dir():
        raise PlanError(f"source directory {source_dir} does not exist")
    overrides = overrides or ServiceOverrides()
    runtimes = runtimes or detect_runtimes()
    config = load_railway_config(
        source_dir, config_path=overrides.config_path, environment_name=environment_name
    )
    procfile = load_procfile(source_dir)
    provider = next((p for p in PROVIDERS if p.detect(source_dir)), None)
    base = provider.plan(source_dir, runtimes) if provider is not None else None

    origins: dict[str, str] = {}
    notes: list[str] = []
    cfg = config.path if config else ""

    def pick(name: str, *candidates: tuple[T | None, str]) -> T | None:
        for value, origin in candidates:
            if value is not None and value != "":
                origins[name] = origin
                return value
        return None

    c = config or RailwayConfig(path="")
    prov = f"{base.provider} provider" if base else "provider"
    web = _web_command(procfile, notes)
    start = pick(
        "start_command",
        (overrides.start_command, SETTINGS),
        (c.start_command, cfg),
        (web, "Procfile"),
        (base.start_command if base else None, prov),
    )
    build = pick(
        "build_command",
        (overrides.build_command, SETTINGS),
        (c.build_command, cfg),
        (base.build_command if base else None, prov),
    )
    release = procfile.release if procfile else None
    pre_deploy = pick(
        "pre_deploy_commands",
        (overrides.pre_deploy_command, SETTINGS),
        (c.pre_deploy_commands, cfg),
        ((release,) if release else None, "Procfile"),
    )
    install = pick(
        "install_command",
        (overrides.install_command, SETTINGS),
        (base.install_command if base else None, prov),
    )

    if base is None:
        if start is None:
            raise PlanError(_unrecognised(source_dir))
        notes.append("no language recognised: the start command runs as is, nothing installed")
        base = ProviderPlan(provider="command", runtime="shell", runtime_version="")
    if start is not None:
        static_dir, spa = None, False
    else:
        static_dir, spa = base.static_dir, base.spa
        if static_dir is None:
            raise PlanError(base.start_hint or "no start command")
        origins["static_dir"] = prov

    healthcheck_timeout = pick(
        "healthcheck_timeout",
        (overrides.healthcheck_timeout, SETTINGS),
        (c.healthcheck_timeout, cfg),
    )
    restart_type = pick(
        "restart_policy_type",
        (overrides.restart_policy_type, SETTINGS),
        (c.restart_policy_type, cfg),
    )
    max_retries = pick(
        "restart_policy_max_retries",
        (overrides.restart_policy_max_retries, SETTINGS),
        (c.restart_policy_max_retries, cfg),
    )
    replicas = pick("num_replicas", (overrides.num_replicas, SETTINGS), (c.num_replicas, cfg))
    watch = pick("watch_patterns", (overrides.watch_patterns, SETTINGS), (c.watch_patterns, cfg))
    processes = procfile.processes if procfile else ()
    return BuildPlan(
        provider=base.provider,
        runtime=base.runtime,
        runtime_version=base.runtime_version,
        package_manager=base.package_manager,
        dependency_files=base.dependency_files,
        install_command=install,
        is_custom_install=overrides.install_command is not None,
        build_command=build,
        start_command=start,
        pre_deploy_commands=pre_deploy or (),
        healthcheck_path=pick(
            "healthcheck_path", (overrides.healthcheck_path, SETTINGS), (c.healthcheck_path, cfg)
        ),
        healthcheck_timeout=healthcheck_timeout or DEFAULT_HEALTHCHECK_TIMEOUT,
        restart_policy_type=RestartPolicyType(restart_type or RestartPolicyType.ON_FAILURE),
        restart_policy_max_retries=(
            max_retries if max_retries is not None else DEFAULT_RESTART_MAX_RETRIES
        ),
        num_replicas=replicas or 1,
        cron_schedule=pick(
            "cron_schedule", (overrides.cron_schedule, SETTINGS), (c.cron_schedule, cfg)
        ),
        overlap_seconds=pick(
            "overlap_seconds", (overrides.overlap_seconds, SETTINGS), (c.overlap_seconds, cfg)
        ),
        draining_seconds=pick(
            "draining_seconds", (overrides.draining_seconds, SETTINGS), (c.draining_seconds, cfg)
        ),
        watch_patterns=watch or (),
        static_dir=static_dir,
        spa=spa,
        requested_runtime_version=base.requested_runtime_version,
        processes=processes,
        config_file=config.path if config else None,
        builder=c.builder,
        origins=tuple(sorted(origins.items())),
        notes=(*c.notes, *base.notes, *notes),
    )


def _web_command(procfile: Procfile | None, notes: list[str]) -> str | None:
    if procfile is None:
        return None
    others = [name for name, _ in procfile.processes if name not in ("web", "release")]
    if procfile.web:
        if others:
            notes.append(
                f"Procfile: only the web process runs; {', '.join(others)} ignored "
                "(create another service for them)"
            )
        return procfile.web
    worker = procfile.get("worker")
    if worker:
        notes.append("Procfile has no web process: running the worker process")
    return worker


def _unrecognised(source_dir: Path) -> str:
    looked = "; ".join(f"{p.name}: {p.markers}" for p in PROVIDERS)
    found = ", ".join(listing(source_dir)) or "nothing"
    return (
        "Could not tell how to build this app. Looked for a start command (service settings, "
        f"railway.json/railway.toml, Procfile) and for {looked}. Found: {found}."
    )


def render_plan(plan: BuildPlan) -> list[str]:
    """The plan as lines for the top of the build log."""

    def src(name: str) -> str:
        origin = plan.origin(name)
        return f"   [{origin}]" if origin else ""

    manager = f" ({plan.package_manager})" if plan.package_manager else ""
    runtime = f"{plan.runtime} {plan.runtime_version}".strip()
    if plan.requested_runtime_version:
        runtime += f" (requested: {plan.requested_runtime_version})"
    if plan.static_dir is not None:
        start = f"pm2 serve {plan.static_dir} $PORT" + (" --spa" if plan.spa else "")
    else:
        start = plan.start_command or "-"
    lines = [
        "==> Build plan",
        f"    provider     {plan.provider}{manager}",
        f"    runtime      {runtime}",
        f"    install      {plan.install_command or '-'}{src('install_command')}",
        f"    build        {plan.build_command or '-'}{src('build_command')}",
        f"    start        {start}{src('start_command') or src('static_dir')}",
    ]
    for command in plan.pre_deploy_commands:
        lines.append(f"    pre-deploy   {command}{src('pre_deploy_commands')}")
    if plan.healthcheck_path:
        lines.append(
            f"    healthcheck  {plan.healthcheck_path} (timeout "
            f"{plan.healthcheck_timeout} s){src('healthcheck_path')}"
        )
    retries = (
        f", up to {plan.restart_policy_max_retries} retries"
        if plan.restart_policy_type is RestartPolicyType.ON_FAILURE
        else ""
    )
    lines.append(f"    restart      {plan.restart_policy_type}{retries}")
    lines.append(f"    replicas     {plan.num_replicas}")
    if plan.cron_schedule:
        lines.append(f"    cron         {plan.cron_schedule}{src('cron_schedule')}")
    if plan.config_file:
        lines.append(f"    config       {plan.config_file}")
    lines.extend(f"    note: {note}" for note in plan.notes)
    return lines


def plan_and_report(
    source_dir: Path,
    overrides: ServiceOverrides | None,
    reporter: Reporter,
    *,
    environment_name: str | None = None,
    runtimes: Runtimes | None = None,
) -> BuildPlan:
    """``plan_build`` as a pipeline stage: reports ``plan`` and logs the rendered plan."""
    reporter.stage("plan", StageStatus.RUNNING)
    try:
        plan = plan_build(
            source_dir, overrides, environment_name=environment_name, runtimes=runtimes
        )
    except PlanError as exc:
        reporter.log(exc.message, stream="system")
        reporter.stage("plan", StageStatus.FAILED)
        raise
    for line in render_plan(plan):
        reporter.log(line, stream="system")
    reporter.stage("plan", StageStatus.SUCCEEDED)
    return plan
