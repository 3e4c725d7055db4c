"""Projects, environments and services, with the validation of every deploy setting.

The validators are strict on purpose: a service's repository URL, branch and root directory end up
as arguments of ``git`` and as paths on the build machine, and its names end up in hostnames. What
passes here must be safe to hand to the engine as is.
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from datetime import datetime
from typing import Annotated, Any, Final
from urllib.parse import SplitResult, urlsplit

from pydantic import (
    AfterValidator,
    AliasChoices,
    BeforeValidator,
    Field,
    TypeAdapter,
    field_validator,
)
from typing_extensions import TypedDict

from caboose.models import RestartPolicy
from caboose.schemas.common import DnsLabel, StrictModel, TimestampedPublic

MAX_COMMAND_LENGTH: Final = 4096
MAX_WATCH_PATTERNS: Final = 100
MASKED_CREDENTIALS: Final = "***"

# Shared helpers ------------------------------------------------------------------------------


def _has_control_characters(value: str) -> bool:
    return any(ord(c) < 32 or ord(c) == 127 for c in value)


def _blank_to_none(value: Any) -> Any:
    """An empty optional setting means "unset" (config-as-code or detection decides), like null."""
    if isinstance(value, str) and not value.strip():
        return None
    return value


def reject_null(value: Any) -> Any:
    # PATCH bodies: an omitted field is left alone, but an explicit null for a column that cannot
    # be empty must be a 422 naming the field, not a NOT NULL violation in the database.
    if value is None:
        raise ValueError("may not be null")
    return value


# Repository URLs -----------------------------------------------------------------------------

_HOSTNAME = re.compile(r"^[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?$")
_SCP_LIKE = re.compile(r"^git@(?P<host>[^:/]+):(?P<path>.+)$")
_SCP_PATH_SEGMENT = re.compile(r"^[A-Za-z0-9._~+-]+$")
_ALLOWED_FORMS = "must be an https://, http:// or git@host:path repository URL"


def _valid_host(host: str) -> bool:
    if _HOSTNAME.match(host) and ".." not in host:
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _check_scp_like(value: str) -> str:
    match = _SCP_LIKE.match(value)
    if match is None:
        raise ValueError(_ALLOWED_FORMS)
    host, path = match.group("host").lower(), match.group("path")
    if not _valid_host(host):
        raise ValueError("the host of a git@host:path URL is not a valid hostname")
    segments = path.split("/")
    if (
        path.startswith("-")
        or any(segment in {"", ".", ".."} for segment in segments)
        or not all(_SCP_PATH_SEGMENT.match(segment) for segment in segments)
    ):
        raise ValueError(
            "the path of a git@host:path URL must be like owner/repo.git "
            "(letters, digits, . _ ~ + -; no empty or '..' segments)"
        )
    return f"git@{host}:{path}"


def _check_http(value: str) -> str:
    try:
        parts: SplitResult = urlsplit(value)
        _ = parts.port  # only to refuse a malformed port: reading it raises ValueError
    except ValueError:
        raise ValueError(_ALLOWED_FORMS) from None
    scheme = parts.scheme.lower()
    if scheme not in {"http", "https"}:
        raise ValueError(_ALLOWED_FORMS)
    host = parts.hostname
    if not host or not _valid_host(host):
        raise ValueError("the URL has no valid host")
    if parts.username is not None or parts.password is not None:
        if scheme != "https":
            raise ValueError("credentials in a repository URL are only allowed over https://")
        if MASKED_CREDENTIALS in (parts.username, parts.password):
            raise ValueError(
                "these are the masked credentials: send the real ones, or leave repo_url out "
                "to keep the stored URL"
            )
    if parts.query or parts.fragment or "#" in value or "?" in value:
        raise ValueError("a repository URL has no query string or fragment")
    segments = [s for s in parts.path.split("/") if s]
    if not segments:
        raise ValueError("the URL names no repository (e.g. https://github.com/owner/repo)")
    if any(s in {".", ".."} for s in segments):
        raise ValueError("the URL path may not contain '.' or '..' segments")
    return value


def validate_repo_url(value: str) -> str:
    """Accept ``https://``, ``http://`` and ``git@host:path`` only.

    Everything else git would also accept is refused: ``file://`` and local paths (read the
    platform's own disk), ``ext::`` (runs a command), ``ssh://`` (arbitrary users and options),
    a leading ``-`` (read as an option), whitespace or control characters (split into several
    arguments by anything that logs or re-parses them). Credentials inside the URL are accepted
    only with ``https://``, where they are encrypted on the wire.
    """
    if _has_control_characters(value) or any(c.isspace() for c in value):
        raise ValueError("must not contain whitespace or control characters")
    if value.startswith("-"):
        raise ValueError("must not start with '-'")
    if value.startswith("git@"):
        return _check_scp_like(value)
    return _check_http(value)


def mask_repo_url(value: str | None) -> str | None:
    """The URL with any credentials replaced by ``***``: shown to every member, so no secret."""
    if value is None or not value.lower().startswith("https://"):
        return value
    parts = urlsplit(value)
    if parts.username is None and parts.password is None:
        return value
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{MASKED_CREDENTIALS}@{host}").geturl()


# Git ref names (git check-ref-format --branch) -------------------------------------------

_REF_FORBIDDEN_CHARACTERS = frozenset(" ~^:?*[\\")


def validate_branch(value: str) -> str:
    """A branch name git itself would accept (``git check-ref-format --branch``)."""
    if not value:
        raise ValueError("must not be empty")
    if _has_control_characters(value) or any(c in _REF_FORBIDDEN_CHARACTERS for c in value):
        raise ValueError("must not contain spaces, control characters or any of ~ ^ : ? * [ \\")
    if value.startswith("-"):
        raise ValueError("must not start with '-'")
    if value in {"@", "HEAD"} or "@{" in value:
        raise ValueError("is not a valid branch name")
    if ".." in value or "//" in value or value.startswith("/") or value.endswith(("/", ".")):
        raise ValueError("must not contain '..' or '//', nor start with '/' or end with '/' or '.'")
    for component in value.split("/"):
        if component.startswith(".") or component.endswith(".lock"):
            raise ValueError("no part of the name may start with '.' or end with '.lock'")
    return value


# Paths ---------------------------------------------------------------------------------------


def normalize_root_directory(value: str) -> str:
    """A directory inside the repository, normalised (``./apps//web/`` → ``apps/web``).

    ``""`` is the repository root. Absolute paths and ``..`` are refused: the build must never
    leave the checkout.
    """
    if _has_control_characters(value) or "\\" in value:
        raise ValueError("must not contain control characters or backslashes")
    if value.startswith("/"):
        raise ValueError("must be relative to the repository root (no leading '/')")
    parts = [part for part in value.split("/") if part not in {"", "."}]
    if ".." in parts:
        raise ValueError("must not contain '..'")
    return "/".join(parts)


def validate_healthcheck_path(value: str) -> str:
    """An absolute path on the app (``/health``), requested on the replica's own port."""
    if not value.startswith("/") or value.startswith("//"):
        raise ValueError("must be a path starting with a single '/', like /health")
    if _has_control_characters(value) or any(c.isspace() for c in value) or "#" in value:
        raise ValueError("must not contain whitespace, control characters or '#'")
    return value


# Commands and patterns -----------------------------------------------------------------------


def validate_command(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def validate_watch_pattern(value: str) -> str:
    if not value or _has_control_characters(value):
        raise ValueError("each pattern must be non-empty, on one line, without control characters")
    return value


# Cron ----------------------------------------------------------------------------------------

_MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MONTHS = {name: number for number, name in enumerate(_MONTH_NAMES, 1)}
_WEEKDAYS = {
    name: number for number, name in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))
}
_CRON_FIELDS: Final[tuple[tuple[str, int, int, dict[str, int]], ...]] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _WEEKDAYS),  # 0 and 7 are both Sunday
)


def _cron_value(token: str, name: str, low: int, high: int, names: dict[str, int]) -> int:
    if token.isdigit():
        number = int(token)
    elif token.lower() in names:
        number = names[token.lower()]
    else:
        raise ValueError(f"{name}: {token!r} is not a number")
    if not low <= number <= high:
        raise ValueError(f"{name}: {number} is outside {low}-{high}")
    return number


def validate_cron_schedule(value: str) -> str:
    """Standard 5-field cron (minute hour day-of-month month day-of-week), as Railway takes it:
    ``*``, numbers, ranges ``a-b``, steps ``/n`` (``5/15`` = from 5), lists ``a,b``, month and
    weekday names."""
    fields = value.split()
    if len(fields) != 5:
        raise ValueError("must have 5 fields: minute hour day-of-month month day-of-week")
    for text, (name, low, high, names) in zip(fields, _CRON_FIELDS, strict=True):
        for item in text.split(","):
            base, has_step, step = item.partition("/")
            if has_step and (not step.isdigit() or not 1 <= int(step) <= high - low + 1):
                raise ValueError(f"{name}: the step in {item!r} must be 1-{high - low + 1}")
            if base == "*":
                continue
            start, has_range, end = base.partition("-")
            first = _cron_value(start, name, low, high, names)
            if has_range and _cron_value(end, name, low, high, names) < first:
                raise ValueError(f"{name}: the range {base!r} runs backwards")
    return " ".join(fields)


# Annotated field types -----------------------------------------------------------------------

# Optional text: at most N characters, blank means null (the BeforeValidator runs first).
RepoUrl = Annotated[
    Annotated[str, Field(max_length=500)] | None,
    BeforeValidator(_blank_to_none),
    Field(description="https://, http:// or git@host:path; null: CLI uploads only."),
]
Branch = Annotated[str, Field(max_length=255), AfterValidator(validate_branch)]
RootDirectory = Annotated[
    str,
    Field(max_length=500, description="Relative to the repository root; '' is the root."),
    AfterValidator(normalize_root_directory),
]
Command = Annotated[
    Annotated[str, Field(max_length=MAX_COMMAND_LENGTH)] | None,
    BeforeValidator(_blank_to_none),
    Field(description="Run with bash -c as the app's user; null: detected or from railway.json."),
]
HealthcheckPath = Annotated[
    Annotated[str, Field(max_length=500)] | None,
    BeforeValidator(_blank_to_none),
    Field(description="Requested until it answers 2xx, e.g. /health."),
]
CronSchedule = Annotated[
    Annotated[str, Field(max_length=100)] | None,
    BeforeValidator(_blank_to_none),
    Field(description="5-field cron (minute hour day-of-month month day-of-week)."),
]
WatchPatterns = Annotated[
    list[Annotated[str, Field(max_length=500), AfterValidator(validate_watch_pattern)]] | None,
    Field(max_length=MAX_WATCH_PATTERNS, description="Globs; a push touching none skips deploy."),
]
Seconds = Annotated[int | None, Field(strict=True, ge=0, le=3600)]


class _ServiceSettings(StrictModel):
    """Every deploy setting, optional: left unset, config-as-code or detection decides."""

    repo_url: RepoUrl = None
    build_command: Command = None
    start_command: Command = None
    pre_deploy_command: Command = None
    healthcheck_path: HealthcheckPath = None
    healthcheck_timeout: Annotated[int | None, Field(strict=True, ge=1, le=3600)] = None
    num_replicas: Annotated[int | None, Field(strict=True, ge=1, le=20)] = None
    restart_policy_type: RestartPolicy | None = None
    restart_policy_max_retries: Annotated[int | None, Field(strict=True, ge=0, le=100)] = None
    memory_limit_mb: Annotated[int | None, Field(strict=True, ge=64, le=65536)] = None
    cron_schedule: CronSchedule = None
    watch_patterns: WatchPatterns = None
    overlap_seconds: Seconds = None
    draining_seconds: Seconds = None

    # Validators run on the non-null values only (the Annotated types above allow null).
    @field_validator("repo_url")
    @classmethod
    def _repo_url(cls, value: str | None) -> str | None:
        return None if value is None else validate_repo_url(value)

    @field_validator("build_command", "start_command", "pre_deploy_command")
    @classmethod
    def _command(cls, value: str | None) -> str | None:
        return None if value is None else validate_command(value)

    @field_validator("healthcheck_path")
    @classmethod
    def _healthcheck_path(cls, value: str | None) -> str | None:
        return None if value is None else validate_healthcheck_path(value)

    @field_validator("cron_schedule")
    @classmethod
    def _cron_schedule(cls, value: str | None) -> str | None:
        return None if value is None else validate_cron_schedule(value)


class ServiceCreate(_ServiceSettings):
    name: DnsLabel
    branch: Branch = "main"
    root_directory: RootDirectory = ""


class ServiceUpdate(_ServiceSettings):
    name: DnsLabel | None = None
    branch: Branch | None = None
    root_directory: RootDirectory | None = None

    _required_not_null = field_validator("name", "branch", "root_directory", mode="before")(
        reject_null
    )


class ServicePublic(TimestampedPublic):
    project_id: uuid.UUID
    name: str
    repo_url: str | None = Field(description="Credentials in the URL are masked as ***.")
    branch: str
    root_directory: str
    build_command: str | None
    start_command: str | None
    pre_deploy_command: str | None
    healthcheck_path: str | None
    healthcheck_timeout: int | None
    num_replicas: int | None
    restart_policy_type: RestartPolicy | None
    restart_policy_max_retries: int | None
    memory_limit_mb: int | None
    cron_schedule: str | None
    watch_patterns: list[str] | None
    overlap_seconds: int | None
    draining_seconds: int | None

    @field_validator("repo_url")
    @classmethod
    def _mask(cls, value: str | None) -> str | None:
        # At validation, not serialisation: the response object never holds the secret.
        return mask_repo_url(value)


# Environments --------------------------------------------------------------------------------

_PREVIEW_NAME = re.compile(r"^pr-\d+$")


def _not_a_preview_name(value: str) -> str:
    if _PREVIEW_NAME.match(value):
        raise ValueError("pr-<number> names are reserved for pull request preview environments")
    return value


EnvironmentName = Annotated[DnsLabel, AfterValidator(_not_a_preview_name)]


class EnvironmentCreate(StrictModel):
    name: EnvironmentName


class EnvironmentUpdate(StrictModel):
    name: EnvironmentName | None = None

    _name_not_null = field_validator("name", mode="before")(reject_null)


class EnvironmentPublic(TimestampedPublic):
    project_id: uuid.UUID
    name: str
    is_preview: bool
    pr_number: int | None


# Projects ------------------------------------------------------------------------------------


def _plain_text(value: str) -> str:
    # Line breaks and tabs are fine in a description; other control characters (NUL above all,
    # which PostgreSQL text cannot store) are not.
    if any((ord(c) < 32 and c not in "\n\r\t") or ord(c) == 127 for c in value):
        raise ValueError("must not contain control characters other than line breaks and tabs")
    return value


ProjectDescription = Annotated[str, Field(max_length=2000), AfterValidator(_plain_text)]


class ProjectCreate(StrictModel):
    name: DnsLabel
    description: ProjectDescription = ""


class ProjectUpdate(StrictModel):
    name: DnsLabel | None = None
    description: ProjectDescription | None = None
    preview_environments: bool | None = Field(
        default=None, description="Give each pull request its own pr-<n> environment."
    )

    _required_not_null = field_validator(
        "name", "description", "preview_environments", mode="before"
    )(reject_null)


class ProjectPublic(TimestampedPublic):
    workspace_id: uuid.UUID = Field(validation_alias=AliasChoices("workspace_id", "tenant_id"))
    name: str
    description: str
    preview_environments: bool


class ProjectRow(TypedDict):
    """:class:`ProjectPublic`'s fields, same order and types, for pages serialised straight
    from query rows (``PROJECT_PAGE_JSON``): no model instance per row."""

    id: uuid.UUID
    created_at: datetime
    updated_at: datetime
    workspace_id: uuid.UUID
    name: str
    description: str
    preview_environments: bool


class ProjectRowPage(TypedDict):
    """``PageOf[ProjectPublic]``, as plain data."""

    items: list[ProjectRow]
    total: int
    skip: int
    limit: int
    has_more: bool


# Serialises to exactly the JSON of PageOf[ProjectPublic] (tests/unit/test_row_pages.py).
PROJECT_PAGE_JSON: TypeAdapter[ProjectRowPage] = TypeAdapter(ProjectRowPage)


class ProjectDetail(ProjectPublic):
    """A project with its environments and services (what opening it in the dashboard shows)."""

    environments: list[EnvironmentPublic]
    services: list[ServicePublic]
