"""The deploy pipeline, end to end: fetch → plan → build, then release → run → health → route →
retire. Plain typed Python over the engine's pieces; no web framework, no ORM, no settings.

A Celery task loads rows, turns them into a frozen :class:`DeploySpec` and calls :func:`build`
and :func:`release_and_run`; tests call the same two functions with a ``MemoryReporter``.
Everything the pipeline decides is in the spec, so a redelivered task, a rollback (an old
artifact, no rebuild) and a restart (same artifact, fresh processes) are the same calls with
another spec.

Why the swap is ordered this way (zero failed requests, and a failure never hurts what runs):

1. the pre-deploy (release) command runs once, as the app's user with the app's environment; if
   it fails nothing was started and the previous deployment is untouched;
2. new replicas start on fresh ports under fresh names (``<service>-<deployment>-<i>``), beside
   the old ones;
3. each is health-checked (``healthcheckPath`` until a 2xx, else the port accepting connections,
   for up to ``healthcheckTimeout``); a crash loop or a timeout stops the new replicas and fails
   the deployment while the old one keeps serving;
4. the route is rewritten to the new servers only, and the pipeline waits until Traefik's API
   shows exactly them (``wait_applied``): from then on new requests reach the new replicas;
5. the caller is told the deployment is live (``on_live``: it marks it ACTIVE), and only then the
   old replicas are retired: left running for ``overlapSeconds`` so requests already in flight
   to them finish, then deleted (SIGTERM, SIGKILL after their ``drainingSeconds``).

Defaults, chosen for zero failed requests under gunicorn (whose SIGTERM is a graceful stop that
finishes in-flight requests): overlap 2 s (Railway's default is 0: a request that Traefik
dispatched just before the switch could still be on its way to the old replica) and draining
10 s (SIGTERM to SIGKILL; Railway's default is 0, which kills gunicorn's in-flight requests).
Both happen after the new deployment is live, so neither delays a deploy.

PM2's CLI costs a Node start (~0.5 s) per call, so the success path makes exactly two calls:
one ``start`` (whose listing gives the pids health checks watch) and one ``delete`` of the old
replicas, after the switch. Failure paths may ask for more (a crash's exit code).

Cron services (``cronSchedule``) are started on their schedule by PM2: no health check, no
route, and the previous deployment's processes are retired at once.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from caboose.engine.build import BuildResult, BuildTools, build_artifact, load_build_result
from caboose.engine.build.cache import force_rmtree
from caboose.engine.build.context import PROTECTED_VARIABLES
from caboose.engine.build.process import run_step
from caboose.engine.health import HealthOutcome, pid_is_alive, wait_healthy
from caboose.engine.plan import plan_and_report
from caboose.engine.plan.runtimes import SYSTEM_PATH
from caboose.engine.routing import Route, RouteNotAppliedError, Router
from caboose.engine.runtime import (
    ReplicaSpec,
    ReplicaState,
    ReplicaStatus,
    Runtime,
    StaticSite,
    is_crash_looping,
)
from caboose.engine.runtime.ports import PortAllocator
from caboose.engine.sandbox import AppUser, ensure_app_user, make_private_dir
from caboose.engine.source import clone_repository, extract_tarball
from caboose.engine.types import (
    BuildError,
    BuildPlan,
    CommitInfo,
    EngineError,
    OperationCancelledError,
    Reporter,
    ServiceOverrides,
    SkippedError,
    StageStatus,
    StepTimeoutError,
)
from caboose.engine.watch import matching_files

__all__ = [
    "DEFAULT_DRAINING_SECONDS",
    "DEFAULT_OVERLAP_SECONDS",
    "DEFAULT_UPLOAD_MAX_BYTES",
    "DEFAULT_UPLOAD_MAX_FILES",
    "ArtifactSource",
    "BuildOutcome",
    "DeployError",
    "DeploySpec",
    "GitSource",
    "ReplicaInfo",
    "RunResult",
    "UploadSource",
    "build",
    "release_and_run",
    "remove_replicas",
    "replica_name",
    "replica_prefix",
    "route_name_for",
]

DEFAULT_OVERLAP_SECONDS = 2
DEFAULT_DRAINING_SECONDS = 10
# Uncompressed size and entry count of an uploaded source tree (the upload itself is capped at
# 200 MiB compressed by the API's body limit).
DEFAULT_UPLOAD_MAX_BYTES = 1024 * 1024 * 1024
DEFAULT_UPLOAD_MAX_FILES = 100_000
_LOOPBACK = "127.0.0.1"
_VALID_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SLUG = re.compile(r"[^a-z0-9-]+")
# While a replica that crashed is being restarted by PM2, how often to ask for its new pid.
_RESTART_POLL_S = 0.25
# Health checks poll every 50 ms for this long after a start, then back off.
_FAST_POLL_WINDOW_S = 5.0
_FAST_POLL_S = 0.05
_STDERR_TAIL_BYTES = 4096


class DeployError(EngineError):
    """The release or run stage failed: the message is the deployment's ``status_reason``."""

    status = 422


# Names ----------------------------------------------------------------------------------------


def replica_prefix(service_name: str, deployment_id: str | uuid.UUID) -> str:
    """``<service>-<first 8 hex of the deployment id>``: readable in ``pm2 ls``, fresh per
    deployment (so old and new replicas run side by side during a swap), and a prefix that
    identifies the deployment's processes for reconciliation. PM2 names must start with a
    letter: a service name starting with a digit gets an ``s``."""
    slug = _SLUG.sub("-", service_name.lower()).strip("-")[:48] or "app"
    if not slug[0].isalpha():
        slug = f"s{slug}"
    return f"{slug}-{uuid.UUID(str(deployment_id)).hex[:8]}"


def replica_name(prefix: str, index: int) -> str:
    return f"{prefix}-{index}"


def route_name_for(service_id: str | uuid.UUID, environment_id: str | uuid.UUID) -> str:
    """One route per service-environment, named by ids (names can be renamed, ids cannot).
    Never starts with ``caboose-`` (reserved for the platform's own routes)."""
    return f"svc-{uuid.UUID(str(service_id)).hex}-{uuid.UUID(str(environment_id)).hex}"


# The spec -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GitSource:
    """Clone ``url`` at ``branch``/``commit``, keep ``root_directory``. ``allow_local`` permits
    ``file://`` and local paths (tests; never for user-supplied URLs)."""

    url: str
    branch: str | None = None
    commit: str | None = None
    root_directory: str | None = None
    allow_local: bool = False


@dataclass(frozen=True, slots=True)
class UploadSource:
    """An uploaded gzip tarball (what ``caboose up`` sends), extracted safely."""

    tarball: Path
    max_bytes: int = DEFAULT_UPLOAD_MAX_BYTES
    max_files: int = DEFAULT_UPLOAD_MAX_FILES


@dataclass(frozen=True, slots=True)
class ArtifactSource:
    """An existing build (rollback, restart): nothing is fetched or built."""

    artifact_dir: Path


Source = GitSource | UploadSource | ArtifactSource


@dataclass(frozen=True, slots=True)
class DeploySpec:
    """Everything one deployment needs, decided before anything runs.

    ``variables`` are the service's resolved variables (references expanded), as the app and
    its build see them; the platform's own variables (:meth:`platform_variables`, and ``PORT``
    per replica) are added on top and always win. ``hostnames`` are the service-environment's
    domains (generated and custom); empty means not routed. ``retire`` names the replicas of
    the deployment being replaced, ``previous_servers`` what its route served (put back if the
    new route is not applied in time). ``run_pre_deploy`` is false for a restart (same build,
    nothing to migrate). ``changed_files`` are the paths a pushed commit changed, when known
    (a webhook push): the build is skipped (:class:`SkippedError`) if the plan has watch
    patterns and none of them matches.
    """

    deployment_id: str
    build_id: str
    project_id: str
    project_name: str
    service_id: str
    service_name: str
    environment_id: str
    environment_name: str
    source: Source
    artifacts_dir: Path
    cache_dir: Path
    logs_dir: Path
    home_dir: Path | None = None
    overrides: ServiceOverrides | None = None
    variables: Mapping[str, str] = field(default_factory=dict)
    hostnames: tuple[str, ...] = ()
    public_domain: str | None = None
    private_domain: str | None = None
    commit_sha: str | None = None
    memory_limit_mb: int | None = None
    retire: tuple[str, ...] = ()
    previous_servers: tuple[str, ...] = ()
    run_pre_deploy: bool = True
    build_timeout_s: float = 1800.0
    pre_deploy_timeout_s: float = 600.0
    route_timeout_s: float = 10.0
    host: str = _LOOPBACK
    changed_files: tuple[str, ...] | None = None

    @property
    def artifact_dir(self) -> Path:
        """Where this deployment's build lives (``<artifacts_dir>/<build_id>``)."""
        if isinstance(self.source, ArtifactSource):
            return self.source.artifact_dir
        return self.artifacts_dir / self.build_id

    @property
    def route_name(self) -> str:
        return route_name_for(self.service_id, self.environment_id)

    @property
    def replica_prefix(self) -> str:
        return replica_prefix(self.service_name, self.deployment_id)

    def replica_names(self, count: int) -> list[str]:
        return [replica_name(self.replica_prefix, i) for i in range(count)]

    def platform_variables(self) -> dict[str, str]:
        """The Railway-style variables every app and build sees (``PORT`` excepted: it is per
        replica), under ``CABOOSE_`` and ``RAILWAY_`` names."""
        values = {
            "DEPLOYMENT_ID": self.deployment_id,
            "PROJECT_ID": self.project_id,
            "PROJECT_NAME": self.project_name,
            "SERVICE_ID": self.service_id,
            "SERVICE_NAME": self.service_name,
            "ENVIRONMENT_ID": self.environment_id,
            "ENVIRONMENT_NAME": self.environment_name,
        }
        public = self.public_domain or (self.hostnames[0] if self.hostnames else None)
        if public:
            values["PUBLIC_DOMAIN"] = public
        if self.private_domain:
            values["PRIVATE_DOMAIN"] = self.private_domain
        if self.commit_sha:
            values["GIT_COMMIT_SHA"] = self.commit_sha
        out: dict[str, str] = {}
        for name, value in values.items():
            out[f"CABOOSE_{name}"] = value
            out[f"RAILWAY_{name}"] = value
        return out


# Results --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BuildOutcome:
    """A build ready to run: the artifact, and the commit when the source was git.

    ``reused``: the artifact already existed (a redelivered task, a rollback) and was not rebuilt.
    """

    result: BuildResult
    commit: CommitInfo | None = None
    reused: bool = False


@dataclass(frozen=True, slots=True)
class ReplicaInfo:
    """One started replica, as stored in ``deployment.replicas``."""

    index: int
    name: str
    port: int | None
    pid: int | None
    status: str
    restarts: int = 0

    def to_dict(self) -> dict[str, object]:
        return {
            "index": self.index,
            "name": self.name,
            "port": self.port,
            "pid": self.pid,
            "status": self.status,
            "restarts": self.restarts,
        }


@dataclass(frozen=True, slots=True)
class RunResult:
    """What ``release_and_run`` left running.

    ``timings`` (seconds): ``pre_deploy``, ``start`` (the PM2 call), ``health`` (from the start
    returning to the last replica healthy: the app's boot time, as seen from outside), ``route``
    (write + applied), ``retire``. ``retire_error`` is set when the old replicas could not be
    deleted (the new deployment is live anyway; reconciliation removes them later).
    """

    replicas: tuple[ReplicaInfo, ...]
    servers: tuple[str, ...]
    routed: bool
    timings: Mapping[str, float]
    retired: tuple[str, ...] = ()
    retire_error: str | None = None


# Build ----------------------------------------------------------------------------------------


def build(
    spec: DeploySpec,
    tools: BuildTools,
    reporter: Reporter,
    cancel: threading.Event | None = None,
) -> BuildOutcome:
    """Fetch the source into ``<artifact>/app``, plan it, build it; return the artifact.

    Idempotent: an artifact that already has its manifest (the same build id built before, or an
    ``ArtifactSource``) is returned as is; a half-made one (a worker died mid-build) is removed
    and built again. Raises ``SourceError``, ``PlanError``, ``BuildError``,
    ``StepTimeoutError`` or ``OperationCancelledError``; nothing is left on disk then.
    """
    artifact_dir = spec.artifact_dir
    existing = load_build_result(artifact_dir)
    if existing is not None:
        reporter.log(f"Using the existing build {spec.build_id}", stream="system")
        return BuildOutcome(existing, None, reused=True)
    if isinstance(spec.source, ArtifactSource):
        raise BuildError(
            "the build of this deployment is no longer available (collected)", status=409
        )
    user = ensure_app_user(spec.project_id)
    if artifact_dir.exists():
        force_rmtree(artifact_dir)  # left by a worker that died mid-build
    spec.artifacts_dir.mkdir(parents=True, exist_ok=True)
    spec.artifacts_dir.chmod(0o711)
    make_private_dir(artifact_dir, user)
    app_dir = artifact_dir / "app"
    variables = {**spec.variables, **spec.platform_variables()}
    commit: CommitInfo | None = None
    try:
        if isinstance(spec.source, UploadSource):
            extract_tarball(
                spec.source.tarball,
                app_dir,
                max_bytes=spec.source.max_bytes,
                max_files=spec.source.max_files,
                owner=user,
                reporter=reporter,
                cancel=cancel,
            )
        else:
            fetched = clone_repository(
                spec.source.url,
                app_dir,
                branch=spec.source.branch,
                commit=spec.source.commit,
                root_directory=spec.source.root_directory,
                allow_local=spec.source.allow_local,
                owner=user,
                reporter=reporter,
                cancel=cancel,
            )
            commit = fetched.commit
            variables.setdefault("CABOOSE_GIT_COMMIT_SHA", commit.sha)
            variables.setdefault("RAILWAY_GIT_COMMIT_SHA", commit.sha)
        plan = plan_and_report(
            app_dir,
            spec.overrides,
            reporter,
            environment_name=spec.environment_name,
            runtimes=tools.runtimes(),
        )
        _check_watch_patterns(spec, plan, reporter)
    except BaseException:
        force_rmtree(artifact_dir)
        raise
    result = build_artifact(
        plan,
        source_dir=app_dir,
        artifact_dir=artifact_dir,
        cache_dir=spec.cache_dir,
        tools=tools,
        user=user,
        reporter=reporter,
        variables=variables,
        timeout=spec.build_timeout_s,
        cancel=cancel,
        build_id=spec.build_id,
    )
    return BuildOutcome(result, commit)


def _check_watch_patterns(spec: DeploySpec, plan: BuildPlan, reporter: Reporter) -> None:
    """Skip a push none of whose changed files the plan's watch patterns select."""
    if spec.changed_files is None or not plan.watch_patterns:
        return
    if matching_files(plan.watch_patterns, spec.changed_files):
        return
    origin = plan.origin("watch_patterns") or "the configuration"
    message = (
        f"skipped: none of the {len(spec.changed_files)} changed file(s) matches the watch "
        f"patterns of {origin} ({', '.join(plan.watch_patterns)})"
    )
    reporter.log(f"==> Deployment {message}", stream="system")
    raise SkippedError(message)


# Release and run ----------------------------------------------------------------------------


def app_environment(
    spec: DeploySpec,
    result: BuildResult,
    user: AppUser,
    *,
    port: int | None = None,
    replica: str | None = None,
) -> dict[str, str]:
    """An app process's whole environment, built from nothing (never the worker's own).

    Order: defaults, the user's variables (minus the names the platform controls: ``PATH``,
    ``HOME``...), the build's runtime variables (``VIRTUAL_ENV``, ``NODE_ENV``), the platform's
    variables, then ``PORT``.
    """
    home = spec.home_dir or result.app_dir
    env: dict[str, str] = {"LANG": "C.UTF-8", "PYTHONUNBUFFERED": "1"}
    for key, value in spec.variables.items():
        if _VALID_NAME.match(key) and key not in PROTECTED_VARIABLES and "\x00" not in value:
            env[key] = value
    env.update(result.runtime_env)
    env.update(spec.platform_variables())
    path = ":".join(dict.fromkeys(":".join([*result.path_prefix, SYSTEM_PATH]).split(":")))
    env.update(
        {
            "PATH": path,
            "HOME": str(home),
            "USER": user.name,
            "LOGNAME": user.name,
            "SHELL": "/bin/bash",
        }
    )
    if replica is not None:
        env["CABOOSE_REPLICA_ID"] = env["RAILWAY_REPLICA_ID"] = replica
    if port is not None:
        env["PORT"] = str(port)
    return env


def release_and_run(
    spec: DeploySpec,
    result: BuildResult,
    runtime: Runtime,
    router: Router,
    ports: PortAllocator,
    reporter: Reporter,
    cancel: threading.Event | None = None,
    *,
    on_live: Callable[[RunResult], None] | None = None,
) -> RunResult:
    """Release, start, health-check, route, then retire the previous deployment.

    ``on_live`` is called once the new replicas serve (route applied), before the retirement's
    overlap: the caller records the deployment ACTIVE there. Cancelling (``cancel``) is honoured
    until the route switch; after it, the deployment is live and the swap completes.

    Raises ``DeployError`` (with the reason), ``OperationCancelledError``, or
    ``ProcessManagerError``; in every failure the new replicas are deleted and the previous
    deployment keeps running and routed.
    """
    plan = result.plan
    user = ensure_app_user(spec.project_id)
    waiter = cancel if cancel is not None else threading.Event()
    timings: dict[str, float] = {}
    if spec.home_dir is not None:
        make_private_dir(spec.home_dir, user)

    if spec.run_pre_deploy and plan.pre_deploy_commands:
        reporter.stage("release", StageStatus.RUNNING)
        started = time.monotonic()
        try:
            _pre_deploy(spec, result, user, reporter, waiter)
        except OperationCancelledError:
            reporter.stage("release", StageStatus.CANCELLED)
            raise
        except BaseException:
            reporter.stage("release", StageStatus.FAILED)
            raise
        timings["pre_deploy"] = time.monotonic() - started
        reporter.stage("release", StageStatus.SUCCEEDED)
    if waiter.is_set():
        raise OperationCancelledError("deployment cancelled")

    count = max(1, plan.num_replicas)
    is_cron = plan.cron_schedule is not None
    allocated = ports.allocate_many(count)
    names = spec.replica_names(count)
    what = (
        f"on schedule {plan.cron_schedule!r}"
        if is_cron
        else "on port(s) " + ", ".join(str(p) for p in allocated)
    )
    stage = "run"
    live = False
    try:
        specs = [
            _replica_spec(spec, result, user, names[i], i, port) for i, port in enumerate(allocated)
        ]
        reporter.stage(stage, StageStatus.RUNNING)
        reporter.log(f"==> Starting {count} replica(s) {what}", stream="system")
        started = time.monotonic()
        statuses = runtime.start(specs)
        timings["start"] = time.monotonic() - started
        reporter.stage(stage, StageStatus.SUCCEEDED)
        servers = tuple(f"http://{spec.host}:{p}" for p in allocated)
        if is_cron:
            _remove_route(router, spec.route_name)
            run = RunResult(_infos(specs, statuses), (), False, timings)
            live = True
            if on_live is not None:
                on_live(run)
            return _retire(spec, run, runtime, reporter, overlap=0.0)

        stage = "health"
        reporter.stage(stage, StageStatus.RUNNING)
        started = time.monotonic()
        statuses = _wait_all_healthy(spec, plan, specs, statuses, runtime, reporter, waiter)
        timings["health"] = time.monotonic() - started
        reporter.stage(stage, StageStatus.SUCCEEDED)
        if waiter.is_set():
            raise OperationCancelledError("deployment cancelled")

        stage = "route"
        reporter.stage(stage, StageStatus.RUNNING)
        started = time.monotonic()
        routed = _switch_route(spec, servers, router, reporter)
        timings["route"] = time.monotonic() - started
        reporter.stage(stage, StageStatus.SUCCEEDED)
        run = RunResult(_infos(specs, statuses), servers, routed, timings)
        live = True
        reporter.log(
            f"==> Live: {count} replica(s) healthy in {timings['health']:.2f} s"
            + (f", routed in {timings['route'] * 1000:.0f} ms" if routed else ""),
            stream="system",
        )
        if on_live is not None:
            on_live(run)
    except BaseException as exc:
        if live:
            raise  # on_live failed: the new replicas serve; the caller decides what to record
        cancelled = isinstance(exc, OperationCancelledError)
        reporter.stage(stage, StageStatus.CANCELLED if cancelled else StageStatus.FAILED)
        if isinstance(exc, EngineError):
            reporter.log(exc.message, stream="system")
        reporter.log(
            "==> Stopping the new replicas; the previous deployment keeps serving",
            stream="system",
        )
        with contextlib.suppress(Exception):
            runtime.delete(names)
        for port in allocated:
            ports.release(port)
        raise
    overlap = float(
        plan.overlap_seconds if plan.overlap_seconds is not None else DEFAULT_OVERLAP_SECONDS
    )
    return _retire(spec, run, runtime, reporter, overlap=overlap)


def remove_replicas(
    runtime: Runtime,
    router: Router | None,
    names: Sequence[str],
    *,
    route_name: str | None = None,
) -> None:
    """Take a deployment offline: unroute it (when it owns the route), then delete its
    processes (SIGTERM, SIGKILL after their draining time). Unknown names are ignored."""
    if router is not None and route_name is not None:
        router.remove(route_name)
    if names:
        runtime.delete(list(names))


def _pre_deploy(
    spec: DeploySpec,
    result: BuildResult,
    user: AppUser,
    reporter: Reporter,
    cancel: threading.Event,
) -> None:
    env = app_environment(spec, result, user)
    deadline = time.monotonic() + spec.pre_deploy_timeout_s
    for command in result.plan.pre_deploy_commands:
        reporter.log(f"==> pre-deploy: {command}", stream="system")
        try:
            step = run_step(
                ["bash", "-c", command],
                cwd=result.app_dir,
                env=env,
                user=user,
                reporter=reporter,
                deadline=deadline,
                cancel=cancel,
                stream="stdout",
            )
        except StepTimeoutError:
            raise DeployError(
                f"the pre-deploy command ran past {spec.pre_deploy_timeout_s:g} s and was stopped"
            ) from None
        except OperationCancelledError:
            raise OperationCancelledError("deployment cancelled") from None
        if not step.ok:
            raise DeployError(f"the pre-deploy command failed with exit code {step.exit_code}")


def _replica_spec(
    spec: DeploySpec,
    result: BuildResult,
    user: AppUser,
    name: str,
    index: int,
    port: int,
) -> ReplicaSpec:
    plan = result.plan
    out_log = spec.logs_dir / f"{index}.out.log"
    err_log = spec.logs_dir / f"{index}.err.log"
    draining = plan.draining_seconds if plan.draining_seconds is not None else None
    kill_timeout = float(draining if draining is not None else DEFAULT_DRAINING_SECONDS)
    env = app_environment(spec, result, user, port=port, replica=name)
    static = None
    command = plan.start_command
    if command is None and plan.static_dir is not None:
        static = StaticSite(root=result.app_dir / plan.static_dir, spa=plan.spa)
    elif command is None:
        raise DeployError("no start command: set one in the service settings")
    return ReplicaSpec(
        name=name,
        cwd=result.app_dir,
        out_log=out_log,
        err_log=err_log,
        command=command,
        static=static,
        env=env,
        port=port,
        user=user,
        restart_policy=plan.restart_policy_type,
        max_retries=plan.restart_policy_max_retries,
        memory_limit_mb=spec.memory_limit_mb,
        cron_schedule=plan.cron_schedule,
        kill_timeout_s=max(0.1, kill_timeout),
    )


def _infos(
    specs: Sequence[ReplicaSpec], statuses: Sequence[ReplicaStatus]
) -> tuple[ReplicaInfo, ...]:
    by_name = {s.name: s for s in statuses}
    infos = []
    for index, replica in enumerate(specs):
        status = by_name.get(replica.name)
        infos.append(
            ReplicaInfo(
                index=index,
                name=replica.name,
                port=replica.port,
                pid=status.pid if status else None,
                status=str(status.state) if status else "unknown",
                restarts=status.restarts if status else 0,
            )
        )
    return tuple(infos)


def _wait_all_healthy(
    spec: DeploySpec,
    plan: BuildPlan,
    specs: Sequence[ReplicaSpec],
    statuses: Sequence[ReplicaStatus],
    runtime: Runtime,
    reporter: Reporter,
    cancel: threading.Event,
) -> list[ReplicaStatus]:
    """Health-check every replica in parallel; the first failure stops the others' waits."""
    by_name = {s.name: s for s in statuses}
    stop = threading.Event()  # set on the first failure, or by cancel (relayed below)
    relay_done = threading.Event()

    def relay() -> None:
        while not relay_done.is_set():
            if cancel.wait(0.05):
                stop.set()
                return

    def check(index: int) -> ReplicaStatus:
        try:
            return _wait_one_healthy(
                spec,
                plan,
                specs[index],
                index,
                by_name.get(specs[index].name),
                runtime,
                reporter,
                stop,
            )
        except BaseException:
            stop.set()
            raise

    if len(specs) == 1:
        relay_thread = threading.Thread(target=relay, daemon=True)
        relay_thread.start()
        try:
            return [check(0)]
        finally:
            relay_done.set()
            relay_thread.join()
    with ThreadPoolExecutor(max_workers=len(specs) + 1) as pool:
        pool.submit(relay)
        try:
            futures = [pool.submit(check, i) for i in range(len(specs))]
            errors: list[BaseException] = []
            results: list[ReplicaStatus] = []
            for future in futures:
                try:
                    results.append(future.result())
                except BaseException as exc:
                    errors.append(exc)
        finally:
            relay_done.set()
    if errors:
        # A real failure beats the cancellations it caused in the other replicas' waits.
        real = [e for e in errors if not isinstance(e, OperationCancelledError)]
        raise (real or errors)[0]
    return results


def _wait_one_healthy(
    spec: DeploySpec,
    plan: BuildPlan,
    replica: ReplicaSpec,
    index: int,
    status: ReplicaStatus | None,
    runtime: Runtime,
    reporter: Reporter,
    stop: threading.Event,
) -> ReplicaStatus:
    """Wait until one replica is healthy; follow PM2's restarts of a crashing one until it is
    healthy, is crash-looping (FAILED with its exit code), or the timeout passes."""
    assert replica.port is not None
    plan_timeout = float(plan.healthcheck_timeout)
    path = plan.healthcheck_path
    deadline = time.monotonic() + plan_timeout
    fast_until = time.monotonic() + _FAST_POLL_WINDOW_S
    pid = status.pid if status is not None else None
    current = status
    while True:
        if pid is None:
            current, pid = _await_pid(replica, runtime, deadline, stop)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise DeployError(
                f"replica {index} did not become healthy within {plan_timeout:g} s "
                "(it was restarting after a crash)"
            )
        # Poll every 20-50 ms while most apps boot (the first seconds: each poll is one loopback
        # request, and a slower poll would add up to its interval to every deploy), then back
        # off to wait_healthy's own pace for the slow ones.
        fast = min(remaining, max(0.0, fast_until - time.monotonic()))
        outcome = wait_healthy(
            spec.host,
            replica.port,
            path,
            timeout_s=fast if fast > 0 else remaining,
            cancel=stop,
            is_alive=pid_is_alive(pid),
            initial_delay_s=0.02 if fast > 0 else 0.05,
            max_delay_s=_FAST_POLL_S if fast > 0 else 0.5,
        )
        if fast > 0 and outcome.outcome is HealthOutcome.TIMEOUT and fast < remaining:
            continue  # the fast window is over: keep waiting at the slower pace
        if outcome.ok:
            if current is None:
                current = _placeholder_status(replica.name, pid)
            return current
        if outcome.outcome is HealthOutcome.CANCELLED:
            raise OperationCancelledError("deployment cancelled")
        if outcome.outcome is HealthOutcome.TIMEOUT:
            last = (
                f"last answer HTTP {outcome.last_status_code}"
                if outcome.last_status_code is not None
                else f"last error: {outcome.last_error or 'no answer'}"
            )
            target = f"{path} on port {replica.port}" if path else f"port {replica.port}"
            raise DeployError(
                f"replica {index}: healthcheck {target} not healthy after {plan_timeout:g} s "
                f"({last})"
            )
        # The process exited: a crash. Ask PM2 what it did about it (failure path only).
        found = runtime.status([replica.name])
        if not found:
            raise DeployError(f"replica {index} disappeared from the process manager")
        current = found[0]
        if is_crash_looping(current) or current.state in (ReplicaState.STOPPED,):
            raise DeployError(_crash_reason(index, current, replica.err_log))
        if current.pid is not None and current.pid != pid:
            reporter.log(
                f"replica {index} exited (code {current.exit_code}) and was restarted",
                stream="system",
            )
            pid = current.pid
        else:
            pid = None  # restarting: wait for its new pid


def _await_pid(
    replica: ReplicaSpec, runtime: Runtime, deadline: float, stop: threading.Event
) -> tuple[ReplicaStatus, int]:
    while True:
        found = runtime.status([replica.name])
        if not found:
            raise DeployError(f"{replica.name} disappeared from the process manager")
        current = found[0]
        if is_crash_looping(current) or current.state is ReplicaState.STOPPED:
            index = int(replica.name.rsplit("-", 1)[-1])
            raise DeployError(_crash_reason(index, current, replica.err_log))
        if current.pid is not None and current.state is ReplicaState.ONLINE:
            return current, current.pid
        if time.monotonic() >= deadline:
            raise DeployError(f"{replica.name} never came online")
        if stop.wait(_RESTART_POLL_S):
            raise OperationCancelledError("deployment cancelled")


def _placeholder_status(name: str, pid: int) -> ReplicaStatus:
    return ReplicaStatus(
        name=name,
        state=ReplicaState.ONLINE,
        pid=pid,
        restarts=0,
        unstable_restarts=0,
        cpu_percent=0.0,
        memory_bytes=0,
        uptime_s=0.0,
        exit_code=None,
        raw_status="online",
    )


def _crash_reason(index: int, status: ReplicaStatus, err_log: Path) -> str:
    code = f"exit code {status.exit_code}" if status.exit_code is not None else "no exit code"
    restarts = f", restarted {status.restarts} time(s)" if status.restarts else ""
    reason = f"replica {index} crashed before becoming healthy ({code}{restarts})"
    last = _last_line(err_log)
    return f"{reason}: {last}" if last else reason


def _last_line(path: Path) -> str | None:
    """The last non-empty line of a log file (the usual place of a crash's explanation)."""
    try:
        with path.open("rb") as handle:
            size = handle.seek(0, 2)
            handle.seek(max(0, size - _STDERR_TAIL_BYTES))
            tail = handle.read().decode("utf-8", "replace")
    except OSError:
        return None
    lines = [line.strip() for line in tail.splitlines() if line.strip()]
    return lines[-1][:500] if lines else None


def _switch_route(
    spec: DeploySpec, servers: tuple[str, ...], router: Router, reporter: Reporter
) -> bool:
    """Point the route at ``servers`` only and wait until the router serves them. On timeout,
    put the previous servers back (or remove the route) and fail."""
    if not spec.hostnames:
        _remove_route(router, spec.route_name)
        reporter.log("==> No domain: the service is not routed", stream="system")
        return False
    route = Route(spec.route_name, spec.hostnames, servers)
    router.apply(route)
    try:
        router.wait_applied(spec.route_name, servers, spec.route_timeout_s)
    except RouteNotAppliedError as exc:
        if spec.previous_servers:
            router.apply(Route(spec.route_name, spec.hostnames, spec.previous_servers))
        else:
            _remove_route(router, spec.route_name)
        raise DeployError(f"the route was not applied: {exc.message}") from exc
    return True


def _remove_route(router: Router, name: str) -> None:
    with contextlib.suppress(OSError):
        router.remove(name)


def _retire(
    spec: DeploySpec, run: RunResult, runtime: Runtime, reporter: Reporter, *, overlap: float
) -> RunResult:
    """Drain the previous deployment for ``overlap`` seconds, then delete its replicas."""
    new_names = {r.name for r in run.replicas}
    old = tuple(n for n in spec.retire if n not in new_names)
    if not old:
        return run
    reporter.stage("retire", StageStatus.RUNNING)
    started = time.monotonic()
    if overlap > 0:
        reporter.log(f"==> Draining the previous deployment for {overlap:g} s", stream="system")
        # The overlap itself (requests in flight to the old replicas finish), not a wait for
        # some state: there is nothing to poll.
        threading.Event().wait(overlap)
    error: str | None = None
    try:
        runtime.delete(list(old))
    except EngineError as exc:
        error = exc.message
        reporter.log(f"could not stop the previous deployment: {error}", stream="system")
    timings = {**run.timings, "retire": time.monotonic() - started}
    reporter.stage("retire", StageStatus.FAILED if error else StageStatus.SUCCEEDED)
    return RunResult(run.replicas, run.servers, run.routed, timings, old, error)
