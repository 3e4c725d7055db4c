"""Expand variable references for ``caboose run``, the way the platform does at deploy time.

A value may embed Railway's templates: ``${{shared.KEY}}`` (a shared variable of the
environment), ``${{api.KEY}}`` (a variable, or a platform value such as ``CABOOSE_PUBLIC_DOMAIN``,
of service ``api``), ``${{KEY}}`` (the same service's; inside a shared variable, another shared
one). References nest and are expanded in the context of the variable holding them, and ``$${{``
is a literal ``${{``. The API returns variables as stored, so the CLI expands them itself, from
what it can read through the API; anything it cannot resolve is left as written and reported —
``run`` is a local convenience and must not refuse to start over one reference.

Pure: values come from a ``lookup`` callable, so this is tested without a server.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final

SHARED: Final = "shared"
MAX_DEPTH: Final = 32
_OPEN: Final = "${{"
_REFERENCE_RE: Final = re.compile(
    r"\$\{\{[ \t]*(?:(?P<namespace>[A-Za-z0-9_-]+)\.)?(?P<key>[A-Za-z_][A-Za-z0-9_]*)[ \t]*\}\}"
)

# (namespace, key) -> value, or None when unknown. The namespace is "shared" or a service name.
Lookup = Callable[[str, str], str | None]


@dataclass
class Resolution:
    values: dict[str, str]
    problems: list[str] = field(default_factory=list)


class _Unresolvable(Exception):  # noqa: N818 (control flow, never escapes this module)
    pass


class _Resolver:
    def __init__(self, service: str, lookup: Lookup) -> None:
        self.service = service
        self.lookup = lookup
        self.memo: dict[tuple[str, str], str] = {}

    def node(self, namespace: str, key: str, stack: tuple[tuple[str, str], ...]) -> str:
        current = (namespace, key)
        if current in self.memo:
            return self.memo[current]
        if current in stack:
            chain = " → ".join(self._label(n) for n in (*stack, current))
            raise _Unresolvable(f"a cycle: {chain}")
        if len(stack) >= MAX_DEPTH:
            raise _Unresolvable(f"references nest deeper than {MAX_DEPTH}")
        raw = self.lookup(namespace, key)
        if raw is None:
            raise _Unresolvable(f"{self._label(current)} is unknown or not readable")
        value = self.expand(raw, namespace, (*stack, current))
        self.memo[current] = value
        return value

    def expand(self, value: str, context: str, stack: tuple[tuple[str, str], ...]) -> str:
        out: list[str] = []
        position = 0
        while True:
            index = value.find(_OPEN, position)
            if index < 0:
                out.append(value[position:])
                return "".join(out)
            if index > 0 and value[index - 1] == "$":  # $${{ is a literal ${{
                out.append(value[position : index - 1] + _OPEN)
                position = index + len(_OPEN)
                continue
            match = _REFERENCE_RE.match(value, index)
            if match is None:
                raise _Unresolvable("a malformed ${{…}} (write $${{ for a literal)")
            out.append(value[position:index])
            namespace = match.group("namespace") or context
            out.append(self.node(namespace, match.group("key"), stack))
            position = match.end()

    def _label(self, node: tuple[str, str]) -> str:
        namespace, key = node
        return key if namespace == self.service else f"{namespace}.{key}"


def resolve(values: Mapping[str, str], *, service: str, lookup: Lookup) -> Resolution:
    """Expand every value of ``service``'s ``values``. ``lookup`` is asked for anything else
    (and for the service's own platform values); the service's own keys come from ``values``."""

    def combined(namespace: str, key: str) -> str | None:
        if namespace == service and key in values:
            return values[key]
        return lookup(namespace, key)

    resolver = _Resolver(service, combined)
    result = Resolution(values={})
    for key, value in values.items():
        if _OPEN not in value:
            result.values[key] = value
            continue
        try:
            result.values[key] = resolver.expand(value, service, ((service, key),))
        except _Unresolvable as exc:
            result.values[key] = value
            result.problems.append(f"{key}: {exc}; passed as written")
    return result
