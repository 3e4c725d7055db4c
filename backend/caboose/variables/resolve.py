"""Reference variables, expanded at deploy time: pure functions, no database, no keys.

A value may embed references, Railway's template syntax:

``${{shared.KEY}}``
    a shared variable of the environment;
``${{api.KEY}}``
    a variable of another service of the project (``api``) in the same environment, or one of its
    platform values such as ``${{api.CABOOSE_PUBLIC_DOMAIN}}`` (``RAILWAY_PUBLIC_DOMAIN`` too);
``${{KEY}}``
    a variable of the same service (in a shared variable: another shared variable), or one of
    its own platform values.

References nest (a referenced value may itself hold references) and are expanded in the context
of the variable that holds them: ``api.URL = https://${{CABOOSE_PUBLIC_DOMAIN}}`` gives every
service that references ``${{api.URL}}`` *api's* domain. ``$${{`` writes a literal ``${{`` (Railway
documents no escape; this is Docker Compose's and Terraform's convention, and a lone ``$`` or
``$$`` anywhere else is left alone). Any other ``${{`` that is not a well-formed reference is an
error rather than text passed through, so a typo cannot reach an app as a literal template.

Only what the deployed service needs is resolved: a cycle or an unknown reference elsewhere in
the project does not fail this deploy. Errors name the variable, the reference and the chain,
never a value (values may be sealed secrets).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

from caboose.variables.names import (
    MAX_RESOLVED_ENV_BYTES,
    MAX_RESOLVED_VALUE_BYTES,
    RESERVED_PREFIXES,
    with_railway_aliases,
)

__all__ = [
    "SHARED_NAMESPACE",
    "ProjectVariables",
    "Reference",
    "VariableReferenceError",
    "VariableResolutionError",
    "find_references",
    "reference_syntax_problem",
    "referenced_values",
    "resolve_service_environment",
]

SHARED_NAMESPACE: Final = "shared"
"""``${{shared.KEY}}``. A service named ``shared`` can therefore not be referenced by name."""

MAX_REFERENCE_DEPTH: Final = 32
"""References of references of …: deeper than this is a mistake, and Python's stack is finite."""

_OPEN: Final = "${{"
# ${{ KEY }} or ${{ namespace.KEY }}; service names are DNS labels, Railway's may hold more.
_REFERENCE_RE: Final = re.compile(
    r"\$\{\{[ \t]*(?:(?P<namespace>[A-Za-z0-9_-]+)\.)?(?P<key>[A-Za-z_][A-Za-z0-9_]*)[ \t]*\}\}"
)

ErrorKind = Literal["unknown", "cycle", "malformed", "too_deep", "too_large"]


@dataclass(frozen=True, slots=True)
class Reference:
    """One ``${{…}}`` in a value: where it is, and what it names (``namespace`` None: own)."""

    start: int
    end: int
    namespace: str | None
    key: str

    @property
    def text(self) -> str:
        inner = f"{self.namespace}.{self.key}" if self.namespace else self.key
        return "${{" + inner + "}}"


@dataclass(frozen=True, slots=True)
class _Literal:
    start: int
    end: int
    text: str


class VariableResolutionError(Exception):
    """A service's environment cannot be built; the deploy fails with this message.

    The base of :class:`VariableReferenceError` and of ``store.UndecryptableVariableError``, so
    the pipeline catches one type. Messages name variables, never values.
    """


class VariableReferenceError(VariableResolutionError):
    """A variable could not be resolved: an unknown or malformed reference, a cycle, or a result
    too large to pass to a process. ``variable`` is the key in the deployed service whose value
    failed, ``reference`` the ``${{…}}`` at fault, ``chain`` the path that led to it
    (``["A", "shared.B", "A"]`` for a cycle). The message says all three, and never a value.

    (Not named ``ReferenceError``: that is a Python builtin, for dead weak references.)
    """

    def __init__(
        self,
        message: str,
        *,
        kind: ErrorKind,
        variable: str,
        reference: str | None = None,
        chain: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message)
        self.kind: ErrorKind = kind
        self.variable = variable
        self.reference = reference
        self.chain = chain


@dataclass(frozen=True)
class ProjectVariables:
    """Everything one environment of a project holds, decrypted: the resolver's whole input.

    ``services`` and ``platform`` are keyed by service *name* (what references use). Platform
    values are given under their ``CABOOSE_`` names; ``RAILWAY_`` twins are derived.
    """

    services: Mapping[str, Mapping[str, str]] = field(repr=False)
    shared: Mapping[str, str] = field(default_factory=dict, repr=False)
    platform: Mapping[str, Mapping[str, str]] = field(default_factory=dict, repr=False)


# Parsing ------------------------------------------------------------------------------------


def _scan(value: str) -> list[Reference | _Literal]:
    """Split ``value`` into references and escaped openings, or raise ``ValueError(offset)``."""
    parts: list[Reference | _Literal] = []
    position = 0
    while True:
        index = value.find(_OPEN, position)
        if index < 0:
            return parts
        if index > 0 and value[index - 1] == "$":  # $${{ : a literal ${{
            parts.append(_Literal(index - 1, index + len(_OPEN), _OPEN))
            position = index + len(_OPEN)
            continue
        match = _REFERENCE_RE.match(value, index)
        if match is None:
            raise ValueError(index)
        parts.append(Reference(index, match.end(), match.group("namespace"), match.group("key")))
        position = match.end()


def find_references(value: str) -> list[Reference]:
    """The references in a value, in order. Raises ``ValueError`` on a malformed ``${{``."""
    return [part for part in _scan(value) if isinstance(part, Reference)]


def reference_syntax_problem(value: str) -> str | None:
    """Why ``value``'s templates cannot be parsed, or None: checked when a value is stored, so a
    typo is reported at once and not at the next deploy."""
    try:
        _scan(value)
    except ValueError:
        return (
            "'${{' starts a reference: write ${{shared.KEY}}, ${{service.KEY}} or ${{KEY}}, "
            "or $${{ for a literal '${{'"
        )
    return None


# Resolving ----------------------------------------------------------------------------------

_Node = tuple[str, str]  # (namespace: "shared" or a service name, key)


class _Resolver:
    """One deploy's resolution: memoised, so each node is expanded once however often used."""

    def __init__(self, project: ProjectVariables, service: str) -> None:
        self.project = project
        self.service = service  # the service being deployed: its own keys print unqualified
        self.top = ""  # the variable of the deployed service being resolved (for messages)
        self.memo: dict[_Node, str] = {}
        self.platform = {
            name: with_railway_aliases(values) for name, values in project.platform.items()
        }

    def label(self, node: _Node) -> str:
        namespace, key = node
        return key if namespace == self.service else f"{namespace}.{key}"

    def chain(self, nodes: list[_Node]) -> tuple[str, ...]:
        return tuple(self.label(n) for n in nodes)

    def fail(
        self,
        message: str,
        kind: ErrorKind,
        *,
        reference: Reference | None = None,
        chain: tuple[str, ...] = (),
    ) -> VariableReferenceError:
        return VariableReferenceError(
            f"variable {self.top}: {message}",
            kind=kind,
            variable=self.top,
            reference=reference.text if reference else None,
            chain=chain,
        )

    def raw(self, node: _Node) -> tuple[str, bool] | None:
        """``(value, is_template)`` of a node, or None if nothing by that name exists."""
        namespace, key = node
        if namespace == SHARED_NAMESPACE:
            shared = self.project.shared.get(key)
            return None if shared is None else (shared, True)
        variables = self.project.services.get(namespace, {})
        if key in variables:
            return variables[key], True
        platform = self.platform.get(namespace, {})
        if key in platform:
            return platform[key], False  # platform values are data, never templates
        return None

    def missing(self, reference: Reference, namespace: str) -> str:
        if namespace == SHARED_NAMESPACE:
            return f"{reference.text} is not defined (no shared variable {reference.key})"
        if namespace not in self.project.services and namespace not in self.project.platform:
            return f"{reference.text} names no service of this project ({namespace!r})"
        owner = "this service" if namespace == self.service else f"service {namespace!r}"
        hint = ""
        if reference.key.startswith(RESERVED_PREFIXES):
            hint = "; a platform value it does not have, e.g. no public domain yet"
        return f"{reference.text} is not defined ({owner} has no variable {reference.key}{hint})"

    def resolve_top(self, key: str) -> str:
        self.top = key
        return self.resolve((self.service, key), [])

    def resolve(self, node: _Node, stack: list[_Node]) -> str:
        if node in self.memo:
            return self.memo[node]
        found = self.raw(node)
        if found is None:  # pragma: no cover - expand() checks existence first
            raise self.fail(f"{self.label(node)} is not defined", "unknown")
        value, is_template = found
        if is_template and _OPEN in value:
            stack.append(node)
            try:
                value = self.substitute(value, node, stack)
            finally:
                stack.pop()
        self.memo[node] = value
        return value

    def substitute(self, value: str, node: _Node, stack: list[_Node]) -> str:
        if len(stack) > MAX_REFERENCE_DEPTH:
            raise self.fail(
                f"references nest more than {MAX_REFERENCE_DEPTH} deep "
                f"({' -> '.join(self.chain(stack))})",
                "too_deep",
                chain=self.chain(stack),
            )
        try:
            parts = _scan(value)
        except ValueError:
            raise self.fail(
                f"{self.label(node)} holds a malformed reference (write $${{{{ for a literal "
                "'${{')",
                "malformed",
                chain=self.chain(stack),
            ) from None
        pieces: list[str] = []
        length = 0
        position = 0
        for part in parts:
            before = value[position : part.start]
            inserted = part.text if isinstance(part, _Literal) else self.expand(part, node, stack)
            pieces += (before, inserted)
            position = part.end
            # Characters never outnumber UTF-8 bytes: stop building as soon as it is too large
            # (a value referencing a huge one many times must not eat the worker's memory).
            length += len(before) + len(inserted)
            if length > MAX_RESOLVED_VALUE_BYTES:
                break
        else:
            pieces.append(value[position:])
            result = "".join(pieces)
            if len(result.encode("utf-8")) <= MAX_RESOLVED_VALUE_BYTES:
                return result
        raise self.fail(
            f"{self.label(node)} expands to more than {MAX_RESOLVED_VALUE_BYTES} bytes, "
            "more than a process can receive in one variable",
            "too_large",
            chain=self.chain(stack),
        )

    def expand(self, reference: Reference, holder: _Node, stack: list[_Node]) -> str:
        namespace = reference.namespace or holder[0]
        target: _Node = (namespace, reference.key)
        if target in stack:
            chain = self.chain([*stack[stack.index(target) :], target])
            raise self.fail(
                f"reference cycle {' -> '.join(chain)}", "cycle", reference=reference, chain=chain
            )
        if self.raw(target) is None:
            raise self.fail(
                self.missing(reference, namespace),
                "unknown",
                reference=reference,
                chain=self.chain([*stack, target]),
            )
        return self.resolve(target, stack)


def resolve_service_environment(project: ProjectVariables, service: str) -> dict[str, str]:
    """The environment ``service`` runs with: its platform values (under ``CABOOSE_`` and
    ``RAILWAY_`` names) and its own variables with every reference expanded.

    Shared variables and other services' variables are not injected, only what is referenced
    (as on Railway). Raises :class:`VariableReferenceError` for the first variable, in key order,
    that cannot be resolved.
    """
    if service == SHARED_NAMESPACE:
        raise ValueError(f"{SHARED_NAMESPACE!r} is the shared namespace, not a service")
    resolver = _Resolver(project, service)
    environment = with_railway_aliases(project.platform.get(service, {}))
    total = sum(len(k.encode("utf-8")) + len(v.encode("utf-8")) + 2 for k, v in environment.items())
    for key in sorted(project.services.get(service, {})):
        value = resolver.resolve_top(key)
        environment[key] = value
        total += len(key.encode("utf-8")) + len(value.encode("utf-8")) + 2  # '=' and NUL
        if total > MAX_RESOLVED_ENV_BYTES:
            raise resolver.fail(
                f"the resolved environment passes {MAX_RESOLVED_ENV_BYTES} bytes "
                "(too large to start a process with)",
                "too_large",
            )
    return environment


def referenced_values(project: ProjectVariables, service: str) -> list[str]:
    """Every variable value ``service``'s environment is built from, before and after expansion:
    its own, and the shared and other services' values its references reach.

    For log redaction: an app that prints a referenced password prints the referenced value, not
    the template that embeds it. Best effort by design — a variable that does not resolve (or
    a value that cannot be read) is skipped, and everything else is still returned, since a
    deploy that fails on it may have printed the rest already. Platform values (names, domains)
    are not secrets and are left out.
    """
    resolver = _Resolver(project, service)
    own = project.services.get(service, {})
    values: list[str] = []
    for key in sorted(own):
        try:
            values.append(own[key])
            resolver.resolve_top(key)
        except VariableResolutionError:
            continue
    for node, resolved in resolver.memo.items():
        found = resolver.raw(node)
        if found is not None and found[1]:  # a stored variable, not a platform value
            values += (found[0], resolved)
    return values
