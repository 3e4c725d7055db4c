"""The rules of a variable set: valid keys, names the platform reserves, and size limits.

One place for all of them, so the API, the ``.env`` importer, the resolver and the deploy pipeline
agree on what may be stored and what the platform injects on top.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

__all__ = [
    "MASK",
    "MAX_KEY_LENGTH",
    "MAX_RESOLVED_ENV_BYTES",
    "MAX_RESOLVED_VALUE_BYTES",
    "MAX_SET_BYTES",
    "MAX_VALUE_BYTES",
    "MAX_VARIABLES_PER_SET",
    "PLATFORM_VARIABLES",
    "RESERVED_NAMES",
    "RESERVED_PREFIXES",
    "display_key",
    "is_reserved",
    "is_valid_key",
    "key_problem",
    "railway_alias",
    "value_problem",
    "with_railway_aliases",
]

KEY_PATTERN: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
"""What a POSIX shell accepts as a variable name: anything else cannot be read back by most apps."""

MAX_KEY_LENGTH: Final = 255
"""The ``variable.key`` column's width."""

MAX_VALUE_BYTES: Final = 32 * 1024
"""One stored value, UTF-8 encoded. Certificates and JSON service-account keys fit; a blob
pasted by mistake does not."""

MAX_VARIABLES_PER_SET: Final = 500
"""Variables of one service in one environment (or shared variables of one environment)."""

MAX_SET_BYTES: Final = 256 * 1024
"""Keys plus values of one set. The kernel refuses to start a process whose environment and
arguments pass ``ARG_MAX`` (2 MiB on Linux), so the stored sets stay well below it."""

MAX_RESOLVED_VALUE_BYTES: Final = 128 * 1024 - 1024
"""One value after references are expanded. Linux refuses any single ``KEY=value`` string longer
than ``MAX_ARG_STRLEN`` (128 KiB) with E2BIG; the margin leaves room for the key."""

MAX_RESOLVED_ENV_BYTES: Final = 1024 * 1024
"""A whole resolved environment: half of ``ARG_MAX``, the rest for the platform and arguments."""

MASK: Final = "*****"
"""What a value reads as when the caller may not see it, and always for sealed values."""

PLATFORM_VARIABLES: Final[tuple[str, ...]] = (
    "PORT",
    "CABOOSE_PUBLIC_DOMAIN",
    "CABOOSE_PRIVATE_DOMAIN",
    "CABOOSE_GIT_COMMIT_SHA",
    "CABOOSE_DEPLOYMENT_ID",
    "CABOOSE_ENVIRONMENT_NAME",
    "CABOOSE_ENVIRONMENT_ID",
    "CABOOSE_SERVICE_NAME",
    "CABOOSE_SERVICE_ID",
    "CABOOSE_PROJECT_NAME",
    "CABOOSE_PROJECT_ID",
    "CABOOSE_REPLICA_ID",
)
"""What the deploy pipeline injects into every app. Each ``CABOOSE_X`` is also given as
``RAILWAY_X`` (:func:`with_railway_aliases`) so a Railway app runs unmodified."""

RESERVED_NAMES: Final = frozenset({"PORT"})
RESERVED_PREFIXES: Final[tuple[str, ...]] = ("CABOOSE_", "RAILWAY_")
"""Whole prefixes, not only today's names: a variable a user stored could otherwise collide with
one a later version of the platform starts injecting, and one of the two would silently win."""

_CABOOSE = "CABOOSE_"
_RAILWAY = "RAILWAY_"


def display_key(key: str) -> str:
    """A key as it may appear in an error: at most 64 characters, always encodable.

    A refused key can be anything a client sent (a pasted value, a lone surrogate that would
    make the JSON response itself fail), so it is shortened and escaped before being echoed.
    """
    shown = key if len(key) <= 64 else key[:64] + "…"
    return shown.encode("utf-8", "backslashreplace").decode("utf-8")


def is_valid_key(key: str) -> bool:
    return len(key) <= MAX_KEY_LENGTH and KEY_PATTERN.fullmatch(key) is not None


def is_reserved(key: str) -> bool:
    """Whether the platform sets ``key`` itself (users may not store it)."""
    return key in RESERVED_NAMES or key.startswith(RESERVED_PREFIXES)


def key_problem(key: str) -> tuple[str, str] | None:
    """Why ``key`` cannot be stored, as ``(code, message)``, or None if it can.

    Messages never repeat the key beyond 64 characters (it may be a pasted value by mistake).
    """
    if not key:
        return "key_empty", "a variable needs a name"
    if len(key) > MAX_KEY_LENGTH:
        return "key_too_long", f"names are at most {MAX_KEY_LENGTH} characters"
    if KEY_PATTERN.fullmatch(key) is None:
        return (
            "key_invalid",
            "names are letters, digits and underscores, not starting with a digit",
        )
    if is_reserved(key):
        prefix = next((p for p in RESERVED_PREFIXES if key.startswith(p)), None)
        reason = f"names starting with {prefix}" if prefix else f"{key}"
        return "key_reserved", f"{reason} are set by the platform and cannot be stored"
    return None


def value_problem(value: str) -> tuple[str, str] | None:
    """Why ``value`` cannot be stored, as ``(code, message)`` — never quoting the value."""
    if "\x00" in value:
        return "value_nul", "values cannot contain a NUL character (no process could receive it)"
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:  # a lone surrogate from a "\ud800" JSON escape
        return "value_not_unicode", "the value is not valid Unicode text"
    if size > MAX_VALUE_BYTES:
        return (
            "value_too_large",
            f"the value is {size} bytes; a value may be at most {MAX_VALUE_BYTES} bytes",
        )
    return None


def railway_alias(name: str) -> str | None:
    """``CABOOSE_X`` → ``RAILWAY_X`` (None for names without an alias, such as ``PORT``)."""
    return _RAILWAY + name.removeprefix(_CABOOSE) if name.startswith(_CABOOSE) else None


def with_railway_aliases(values: Mapping[str, str]) -> dict[str, str]:
    """The platform values plus their ``RAILWAY_`` twins (an explicit ``RAILWAY_X`` wins)."""
    result = dict(values)
    for name, value in values.items():
        alias = railway_alias(name)
        if alias is not None:
            result.setdefault(alias, value)
    return result
