"""Shared vocabulary of the deploy pipeline: the plan, the reporter, the errors.

Everything the fetch, plan and build stages exchange is a frozen dataclass, so a stage cannot
change what an earlier one decided, and a plan can be stored (``to_dict``) and replayed for a
rollback without re-reading the source tree. Progress leaves the engine only through a
``Reporter``: the Celery task gives one that writes to Redis and the database, tests give a
``MemoryReporter``. Nothing here imports the web framework, the ORM or the settings.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, fields
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

# --------------------------------------------------------------------------------------------
# Reporting


class StageStatus(StrEnum):
    """What a stage reports about itself (``Reporter.stage``)."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"


@runtime_checkable
class Reporter(Protocol):
    """Where the engine sends progress: log lines as they come, and stage transitions.

    ``stream`` is one of the log streams of ARCHITECTURE.md (``build``, ``stdout``, ``stderr``,
    ``system``); the build stages write ``build`` for tool output and ``system`` for the
    platform's own remarks. Implementations must be cheap: they are called once per output line.
    """

    def log(self, line: str, *, stream: str = "build") -> None: ...

    def stage(self, name: str, status: str) -> None: ...


class MemoryReporter:
    """A reporter that keeps everything in memory (tests, previews, the CLI's dry runs)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.lines: list[tuple[str, str]] = []
        self.stages: list[tuple[str, str]] = []

    def log(self, line: str, *, stream: str = "build") -> None:
        with self._lock:
            self.lines.append((stream, line))

    def stage(self, name: str, status: str) -> None:
        with self._lock:
            self.stages.append((name, str(status)))

    @property
    def text(self) -> str:
        """All log lines joined, whatever their stream (handy in assertions)."""
        with self._lock:
            return "\n".join(line for _, line in self.lines)


# --------------------------------------------------------------------------------------------
# Errors


class EngineError(Exception):
    """A failure the user should read: ``message`` is shown as the deployment's status reason.

    ``status`` is an HTTP-like code for the API layer when the failure happens while a request
    is still open (an upload refused before the deployment is queued); later failures only end
    the deployment.
    """

    status: int = 500

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status


class SourceError(EngineError):
    """The source could not be fetched: a refused or corrupt archive, a failed clone.

    400 for an archive that is malformed or dangerous, 413 for one over a size or count limit.
    """

    status = 400


class PlanError(EngineError):
    """The tree cannot be planned: unrecognised, or a config file that is malformed."""

    status = 422


class BuildError(EngineError):
    """A build step failed (non-zero exit), or the build could not be prepared."""

    status = 422

    def __init__(
        self,
        message: str,
        *,
        step: str | None = None,
        exit_code: int | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message, status=status)
        self.step = step
        self.exit_code = exit_code


class StepTimeoutError(EngineError):
    """A stage ran past its time budget; its processes were killed."""

    status = 504


class SkippedError(EngineError):
    """Nothing to deploy (no changed file matches the watch patterns): the deployment ends
    CANCELLED with this reason rather than FAILED."""

    status = 409


class OperationCancelledError(EngineError):
    """The caller cancelled (the deployment was cancelled or superseded); processes were killed."""

    status = 409


# --------------------------------------------------------------------------------------------
# The plan


class RestartPolicyType(StrEnum):
    """Railway's restart policies; the runtime maps them onto PM2."""

    ON_FAILURE = "ON_FAILURE"
    ALWAYS = "ALWAYS"
    NEVER = "NEVER"


DEFAULT_HEALTHCHECK_TIMEOUT = 300
DEFAULT_RESTART_MAX_RETRIES = 10


@dataclass(frozen=True, slots=True)
class ServiceOverrides:
    """Settings of the service (dashboard/API) that beat everything found in the repository.

    ``None`` means "not set here": the next source down decides (see ``plan_build``).
    ``config_path`` names a config-as-code file other than ``railway.json``/``railway.toml``,
    relative to the source directory. ``install_command`` replaces the provider's install step
    (and so disables the dependency cache for that service).
    """

    install_command: str | None = None
    build_command: str | None = None
    start_command: str | None = None
    pre_deploy_command: tuple[str, ...] | None = None
    healthcheck_path: str | None = None
    healthcheck_timeout: int | None = None
    restart_policy_type: RestartPolicyType | None = None
    restart_policy_max_retries: int | None = None
    num_replicas: int | None = None
    cron_schedule: str | None = None
    overlap_seconds: int | None = None
    draining_seconds: int | None = None
    watch_patterns: tuple[str, ...] | None = None
    config_path: str | None = None


@dataclass(frozen=True, slots=True)
class BuildPlan:
    """What will be installed, built and run, decided once before anything runs.

    ``provider`` is the language support that recognised the tree (``python``, ``node``,
    ``static``). ``package_manager`` and ``dependency_files`` say how the install step runs and
    which files' contents key the dependency cache (with ``runtime_version`` and the provider).
    ``install_command`` is what the install step amounts to, for the log; the build runs it
    itself (so it can be cached), unless ``is_custom_install`` (a service override), in which
    case it is a shell command run as is, uncached.

    Static sites have no ``start_command``: the runtime serves ``static_dir`` (relative to the
    app directory) with PM2's static server (``pm2 serve``; ``PM2_SERVE_SPA`` when ``spa``).

    ``origins`` tells, per field, where its value came from (``service settings``,
    ``railway.json``, ``Procfile``, ``python provider``...), so the log can say why.
    ``notes`` are remarks for the top of the build log (a requested runtime that is not
    installed, an ignored field...).
    """

    provider: str
    runtime: str
    runtime_version: str
    package_manager: str | None = None
    dependency_files: tuple[str, ...] = ()
    install_command: str | None = None
    is_custom_install: bool = False
    build_command: str | None = None
    start_command: str | None = None
    pre_deploy_commands: tuple[str, ...] = ()
    healthcheck_path: str | None = None
    healthcheck_timeout: int = DEFAULT_HEALTHCHECK_TIMEOUT
    restart_policy_type: RestartPolicyType = RestartPolicyType.ON_FAILURE
    restart_policy_max_retries: int = DEFAULT_RESTART_MAX_RETRIES
    num_replicas: int = 1
    cron_schedule: str | None = None
    overlap_seconds: int | None = None
    draining_seconds: int | None = None
    watch_patterns: tuple[str, ...] = ()
    static_dir: str | None = None
    spa: bool = False
    requested_runtime_version: str | None = None
    processes: tuple[tuple[str, str], ...] = ()
    config_file: str | None = None
    builder: str | None = None
    origins: tuple[tuple[str, str], ...] = ()
    notes: tuple[str, ...] = ()

    def origin(self, name: str) -> str | None:
        """Where the value of field ``name`` came from, if recorded."""
        return dict(self.origins).get(name)

    @property
    def cache_key_inputs(self) -> tuple[str, ...]:
        """The plan's part of the dependency cache key (the build adds file contents)."""
        return (
            self.provider,
            self.runtime,
            self.runtime_version,
            self.package_manager or "",
            *self.dependency_files,
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (stored with the build, so a rollback needs no re-planning)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, tuple):
                value = [list(v) if isinstance(v, tuple) else v for v in value]
            elif isinstance(value, StrEnum):
                value = str(value)
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BuildPlan:
        """Inverse of ``to_dict``; unknown keys (from a newer version) are ignored."""
        known = {f.name for f in fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key not in known:
                continue
            if isinstance(value, list):
                value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
            kwargs[key] = value
        if "restart_policy_type" in kwargs:
            kwargs["restart_policy_type"] = RestartPolicyType(kwargs["restart_policy_type"])
        return cls(**kwargs)


@dataclass(frozen=True, slots=True)
class CommitInfo:
    """The commit a git source was checked out at."""

    sha: str
    message: str
    author_name: str
    author_email: str

    @property
    def author(self) -> str:
        return (
            f"{self.author_name} <{self.author_email}>" if self.author_email else self.author_name
        )

    @property
    def subject(self) -> str:
        """The first line of the message, as lists show it."""
        return self.message.splitlines()[0] if self.message else ""


@dataclass(frozen=True, slots=True)
class ExtractedSource:
    """What an archive extraction produced."""

    path: Path
    files: int
    bytes: int
