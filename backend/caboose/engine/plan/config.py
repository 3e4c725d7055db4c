"""Config-as-code: ``railway.json`` / ``railway.toml``, with Railway's schema.

A Railway project must deploy unmodified, so the same file names, the same keys and the same
value types are read (``build.builder``, ``build.buildCommand``, ``build.watchPatterns``,
``deploy.startCommand``, ``deploy.preDeployCommand`` as a string or a list,
``deploy.healthcheckPath``, ``deploy.healthcheckTimeout``, ``deploy.restartPolicyType``,
``deploy.restartPolicyMaxRetries``, ``deploy.numReplicas``, ``deploy.cronSchedule``,
``deploy.overlapSeconds``, ``deploy.drainingSeconds``), plus ``environments.<name>`` blocks that
override them for one environment. ``null`` means "not set", as in Railway.

The file is repository content, so it is untrusted: every value is type-checked and bounded,
and anything wrong becomes a ``PlanError`` that names the file and the field (never a crash,
never a silently wrong deploy). Keys Railway knows but Caboose has no use for (``dockerfilePath``,
``nixpacksPlan``, ``sleepApplication``, ...) are ignored; unknown keys are noted in the log.
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from caboose.engine.plan.files import read_text
from caboose.engine.types import PlanError, RestartPolicyType

CONFIG_FILES = ("railway.json", "railway.toml")
MAX_CONFIG_BYTES = 256 * 1024
MAX_COMMAND_CHARS = 16 * 1024
MAX_REPLICAS = 100
MAX_SECONDS = 24 * 3600

_BUILD_KEYS = {"builder", "buildCommand", "watchPatterns"}
_BUILD_IGNORED = {
    "dockerfilePath",
    "nixpacksPlan",
    "nixpacksConfigPath",
    "nixpacksVersion",
    "railpackVersion",
    "buildEnvironment",
    "dockerContext",
}
_DEPLOY_KEYS = {
    "startCommand",
    "preDeployCommand",
    "healthcheckPath",
    "healthcheckTimeout",
    "restartPolicyType",
    "restartPolicyMaxRetries",
    "numReplicas",
    "cronSchedule",
    "overlapSeconds",
    "drainingSeconds",
    "multiRegionConfig",
}
_DEPLOY_IGNORED = {
    "sleepApplication",
    "region",
    "runtime",
    "limitOverride",
    "requiredMountPath",
    "useLegacyStacker",
    "ipv6EgressEnabled",
    "registryCredentials",
}
_BUILDERS = {"RAILPACK", "NIXPACKS", "DOCKERFILE", "HEROKU", "PAKETO"}
_CRON_FIELD = re.compile(r"^[0-9A-Za-z*/,?LW#-]+$")


@dataclass(frozen=True, slots=True)
class RailwayConfig:
    """The validated content of a config-as-code file (``None``: not set there)."""

    path: str
    builder: str | None = None
    build_command: str | None = None
    watch_patterns: tuple[str, ...] | None = None
    start_command: str | None = None
    pre_deploy_commands: tuple[str, ...] | None = None
    healthcheck_path: str | None = None
    healthcheck_timeout: int | None = None
    restart_policy_type: RestartPolicyType | None = None
    restart_policy_max_retries: int | None = None
    num_replicas: int | None = None
    cron_schedule: str | None = None
    overlap_seconds: int | None = None
    draining_seconds: int | None = None
    notes: tuple[str, ...] = field(default=())


def find_config_file(source_dir: Path) -> str | None:
    """The config file Railway would read: ``railway.json`` first, then ``railway.toml``."""
    for name in CONFIG_FILES:
        if (source_dir / name).exists() or (source_dir / name).is_symlink():
            return name
    return None


def load_railway_config(
    source_dir: Path,
    *,
    config_path: str | None = None,
    environment_name: str | None = None,
) -> RailwayConfig | None:
    """Read and validate the config file (``config_path`` if given, else the default names).

    A given ``config_path`` that does not exist is an error (the service asked for it);
    without one, no file simply means no config-as-code.
    """
    notes: list[str] = []
    if config_path:
        rel = config_path.strip().lstrip("/")
        if ".." in rel.split("/") or not rel:
            raise PlanError(f"config file path {config_path!r} is not a path inside the source")
        text = read_text(source_dir, rel, limit=MAX_CONFIG_BYTES)
        if text is None:
            raise PlanError(f"config file {rel} (set in the service settings) was not found")
    else:
        found = find_config_file(source_dir)
        if found is None:
            return None
        rel = found
        text = read_text(source_dir, rel, limit=MAX_CONFIG_BYTES)
        if text is None:
            return None
        others = [n for n in CONFIG_FILES if n != rel and (source_dir / n).exists()]
        if others:
            notes.append(f"both {rel} and {others[0]} exist: using {rel}")
    data = parse_config_text(text, rel)
    return validate_config(data, rel, environment_name=environment_name, notes=notes)


def parse_config_text(text: str, name: str) -> dict[str, Any]:
    """Parse JSON (``.json``) or TOML (anything else) into a dict, or raise PlanError."""
    try:
        if name.endswith(".json"):
            data: Any = json.loads(text, parse_constant=_reject_constant)
        else:
            data = tomllib.loads(text)
    except json.JSONDecodeError as exc:
        raise PlanError(
            f"{name} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise PlanError(f"{name} is not valid TOML: {exc}") from None
    except (RecursionError, ValueError) as exc:
        raise PlanError(f"{name} could not be parsed: {str(exc)[:200]}") from None
    if not isinstance(data, dict):
        raise PlanError(f"{name}: the top level must be an object")
    return data


def _reject_constant(value: str) -> Any:
    raise ValueError(f"{value} is not allowed")


def validate_config(
    data: Mapping[str, Any],
    name: str,
    *,
    environment_name: str | None = None,
    notes: list[str] | None = None,
) -> RailwayConfig:
    """Check types and bounds of a parsed config; apply ``environments.<name>`` on top."""
    notes = list(notes or [])
    merged = {k: v for k, v in data.items() if k != "environments"}
    envs = data.get("environments")
    if envs is not None:
        if not isinstance(envs, dict):
            raise PlanError(f"{name}: environments must be an object")
        if environment_name and environment_name in envs:
            override = envs[environment_name]
            if not isinstance(override, dict):
                raise PlanError(f"{name}: environments.{environment_name} must be an object")
            for section in ("build", "deploy"):
                if section in override:
                    base = merged.get(section) or {}
                    extra = override[section]
                    if not isinstance(base, dict) or not isinstance(extra, dict):
                        raise PlanError(
                            f"{name}: environments.{environment_name}.{section} must be an object"
                        )
                    merged[section] = {**base, **extra}
            notes.append(f"applied environments.{environment_name} from {name}")

    for key in merged:
        if key not in ("$schema", "build", "deploy"):
            notes.append(f"{name}: unknown top-level field {key!r} ignored")
    build = _section(merged, "build", name)
    deploy = _section(merged, "deploy", name)
    for key in build:
        if key not in _BUILD_KEYS and key not in _BUILD_IGNORED:
            notes.append(f"{name}: unknown field build.{key} ignored")
    for key in deploy:
        if key not in _DEPLOY_KEYS and key not in _DEPLOY_IGNORED:
            notes.append(f"{name}: unknown field deploy.{key} ignored")

    v = _Validator(name)
    builder = v.string(build, "build", "builder", max_len=32)
    if builder is not None:
        builder = builder.upper()
        if builder not in _BUILDERS:
            raise PlanError(
                f"{name}: build.builder must be one of {', '.join(sorted(_BUILDERS))} "
                f"(got {builder!r})"
            )
        if builder == "DOCKERFILE":
            notes.append(f"{name}: builder DOCKERFILE is not available here; building natively")
    restart = v.string(deploy, "deploy", "restartPolicyType", max_len=32)
    restart_type = None
    if restart is not None:
        try:
            restart_type = RestartPolicyType(restart.upper())
        except ValueError:
            raise PlanError(
                f"{name}: deploy.restartPolicyType must be ON_FAILURE, ALWAYS or "
                f"NEVER (got {restart!r})"
            ) from None
    healthcheck_path = v.string(deploy, "deploy", "healthcheckPath", max_len=2048)
    if healthcheck_path is not None and (
        not healthcheck_path.startswith("/")
        or any(c.isspace() or ord(c) < 32 for c in healthcheck_path)
    ):
        raise PlanError(
            f"{name}: deploy.healthcheckPath must be a URL path starting with '/' "
            f"(got {healthcheck_path!r})"
        )
    cron = v.string(deploy, "deploy", "cronSchedule", max_len=256)
    if cron is not None:
        fields_ = cron.split()
        if len(fields_) != 5 or not all(_CRON_FIELD.match(f) for f in fields_):
            raise PlanError(
                f"{name}: deploy.cronSchedule must be a 5-field cron expression (got {cron!r})"
            )
        cron = " ".join(fields_)
    replicas = v.integer(deploy, "deploy", "numReplicas", minimum=1, maximum=MAX_REPLICAS)
    region_replicas = _region_replicas(deploy, name)
    if replicas is None and region_replicas is not None:
        replicas = min(region_replicas, MAX_REPLICAS)
        notes.append(f"{name}: deploy.multiRegionConfig gives {replicas} replica(s) in one region")
    return RailwayConfig(
        path=name,
        builder=builder,
        build_command=v.command(build, "build", "buildCommand"),
        watch_patterns=v.string_list(build, "build", "watchPatterns"),
        start_command=v.command(deploy, "deploy", "startCommand"),
        pre_deploy_commands=v.commands(deploy, "deploy", "preDeployCommand"),
        healthcheck_path=healthcheck_path,
        healthcheck_timeout=v.integer(
            deploy, "deploy", "healthcheckTimeout", minimum=1, maximum=MAX_SECONDS
        ),
        restart_policy_type=restart_type,
        restart_policy_max_retries=v.integer(
            deploy, "deploy", "restartPolicyMaxRetries", minimum=0, maximum=10_000
        ),
        num_replicas=replicas,
        cron_schedule=cron,
        overlap_seconds=v.integer(
            deploy, "deploy", "overlapSeconds", minimum=0, maximum=MAX_SECONDS
        ),
        draining_seconds=v.integer(
            deploy, "deploy", "drainingSeconds", minimum=0, maximum=MAX_SECONDS
        ),
        notes=tuple(notes[:20]),
    )


def _section(data: Mapping[str, Any], key: str, name: str) -> dict[str, Any]:
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise PlanError(f"{name}: {key} must be an object (got {_kind(value)})")
    return value


def _region_replicas(deploy: Mapping[str, Any], name: str) -> int | None:
    config = deploy.get("multiRegionConfig")
    if config is None:
        return None
    if not isinstance(config, dict):
        raise PlanError(f"{name}: deploy.multiRegionConfig must be an object")
    total = 0
    for region, spec in config.items():
        if spec is None:
            continue
        if not isinstance(spec, dict):
            raise PlanError(f"{name}: deploy.multiRegionConfig.{region} must be an object")
        count = spec.get("numReplicas")
        if count is None:
            continue
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise PlanError(
                f"{name}: deploy.multiRegionConfig.{region}.numReplicas must be a "
                "non-negative integer"
            )
        total += count
    return total or None


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


class _Validator:
    """Typed accessors that raise PlanError naming the file and the field."""

    def __init__(self, name: str) -> None:
        self.name = name

    def _fail(self, section: str, key: str, expected: str, value: Any) -> PlanError:
        shown = repr(value) if isinstance(value, str | int | float) else _kind(value)
        if len(shown) > 60:
            shown = shown[:57] + "..."
        return PlanError(f"{self.name}: {section}.{key} must be {expected} (got {shown})")

    def string(
        self, data: Mapping[str, Any], section: str, key: str, *, max_len: int
    ) -> str | None:
        value = data.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self._fail(section, key, "a string", value)
        if "\x00" in value:
            raise self._fail(section, key, "a string without NUL bytes", "...")
        if len(value) > max_len:
            raise PlanError(
                f"{self.name}: {section}.{key} is too long ({len(value)} characters; "
                f"the limit is {max_len})"
            )
        value = value.strip()
        return value or None

    def command(self, data: Mapping[str, Any], section: str, key: str) -> str | None:
        return self.string(data, section, key, max_len=MAX_COMMAND_CHARS)

    def commands(self, data: Mapping[str, Any], section: str, key: str) -> tuple[str, ...] | None:
        value = data.get(key)
        if value is None:
            return None
        if isinstance(value, str):
            one = self.command(data, section, key)
            return (one,) if one else None
        if not isinstance(value, list) or len(value) > 50:
            raise self._fail(section, key, "a string or a list of strings", value)
        out: list[str] = []
        for i, item in enumerate(value):
            if not isinstance(item, str) or "\x00" in item or len(item) > MAX_COMMAND_CHARS:
                raise self._fail(section, f"{key}[{i}]", "a string", item)
            if item.strip():
                out.append(item.strip())
        return tuple(out) or None

    def string_list(
        self, data: Mapping[str, Any], section: str, key: str
    ) -> tuple[str, ...] | None:
        value = data.get(key)
        if value is None:
            return None
        if not isinstance(value, list) or len(value) > 200:
            raise self._fail(section, key, "a list of strings", value)
        for i, item in enumerate(value):
            if not isinstance(item, str) or "\x00" in item or len(item) > 1024:
                raise self._fail(section, f"{key}[{i}]", "a string", item)
        return tuple(item for item in value if item)

    def integer(
        self, data: Mapping[str, Any], section: str, key: str, *, minimum: int, maximum: int
    ) -> int | None:
        value = data.get(key)
        if value is None:
            return None
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._fail(section, key, "an integer", value)
        if not minimum <= value <= maximum:
            raise self._fail(section, key, f"between {minimum} and {maximum}", value)
        return value
