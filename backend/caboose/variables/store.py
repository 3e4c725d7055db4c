"""Encrypted variable rows: the only code that reads or writes ``variable``/``shared_variable``.

Values are sealed with ``keys.variables`` and bound to their row (``core/secret_fields``); the
database never sees a plaintext. Two kinds of reader exist and stay apart:

* the API reads a *view* (:func:`read_variable_set`): sealed values are never even decrypted,
  and values are masked unless the caller's role may see them;
* the deploy pipeline reads *plaintext* (:func:`load_resolved_environment`,
  :func:`secret_values_for_redaction`), sealed values included, and hands it to the app.

Writes (:func:`write_variables`) are validated as a whole before anything changes: one bad key
or value and the stored set is untouched. Like repositories, nothing here commits.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, cast

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from caboose.core.encryption import DecryptionError, Keyring
from caboose.core.keys import PlatformKeys
from caboose.core.secret_fields import shared_variable_aad, variable_aad
from caboose.models import (
    Domain,
    DomainKind,
    Environment,
    Project,
    Service,
    SharedVariable,
    Variable,
)
from caboose.variables.names import (
    MASK,
    MAX_SET_BYTES,
    MAX_VARIABLES_PER_SET,
    display_key,
    key_problem,
    value_problem,
)
from caboose.variables.resolve import (
    ProjectVariables,
    VariableReferenceError,
    VariableResolutionError,
    reference_syntax_problem,
    referenced_values,
    resolve_service_environment,
)

__all__ = [
    "MIN_REDACTED_LENGTH",
    "InvalidVariablesError",
    "Problem",
    "UndecryptableVariableError",
    "VariableReferenceError",
    "VariableResolutionError",
    "VariableScope",
    "VariableSetView",
    "delete_variable",
    "load_plaintext_variables",
    "load_resolved_environment",
    "read_variable_set",
    "secret_values_for_redaction",
    "service_scope",
    "shared_scope",
    "write_variables",
]

MIN_REDACTED_LENGTH = 6
"""Shorter values are not redacted from logs: ``true``, ``8080`` or ``en`` would blank out
half of every line and hide nothing worth hiding."""

_Row = Variable | SharedVariable


class UndecryptableVariableError(VariableResolutionError):
    """A stored value cannot be opened (tampered, moved, or its master key is gone)."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"variable {key} cannot be decrypted: {reason}")
        self.key = key


@dataclass(frozen=True, slots=True)
class Problem:
    """One reason a write is refused. ``key`` None: the set as a whole (count, total size)."""

    key: str | None
    code: str
    message: str
    where: Literal["variables", "sealed"] = "variables"


class InvalidVariablesError(Exception):
    """A write was refused; nothing was changed. ``problems`` name every offending variable."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__(
            "; ".join(f"{display_key(p.key or 'variables')}: {p.message}" for p in problems[:3])
        )


@dataclass(frozen=True)
class VariableScope:
    """Where a set lives: one service in one environment, or an environment's shared set."""

    model: type[Variable] | type[SharedVariable]
    environment_id: uuid.UUID
    service_id: uuid.UUID | None

    def aad(self, key: str) -> str:
        if self.service_id is None:
            return shared_variable_aad(self.environment_id, key)
        return variable_aad(self.service_id, self.environment_id, key)

    def new_row(self, key: str, envelope: str, *, is_sealed: bool) -> _Row:
        if self.service_id is None:
            return SharedVariable(
                environment_id=self.environment_id,
                key=key,
                value_encrypted=envelope,
                is_sealed=is_sealed,
            )
        return Variable(
            service_id=self.service_id,
            environment_id=self.environment_id,
            key=key,
            value_encrypted=envelope,
            is_sealed=is_sealed,
        )


def service_scope(service_id: uuid.UUID, environment_id: uuid.UUID) -> VariableScope:
    return VariableScope(Variable, environment_id, service_id)


def shared_scope(environment_id: uuid.UUID) -> VariableScope:
    return VariableScope(SharedVariable, environment_id, None)


async def _rows(session: AsyncSession, scope: VariableScope, key: str | None = None) -> list[_Row]:
    """The set's rows in key order (or the one row of ``key``)."""
    model = scope.model
    query = select(model).where(model.environment_id == scope.environment_id)
    if scope.service_id is not None:
        query = query.where(Variable.service_id == scope.service_id)
    if key is not None:
        query = query.where(model.key == key)
    rows = (await session.scalars(query.order_by(model.key))).all()
    return [cast(_Row, row) for row in rows]


async def _lock(session: AsyncSession, scope: VariableScope) -> None:
    """Serialise writers of one set (PostgreSQL; SQLite has a single writer anyway).

    Row locks on the variables alone would not stop two writers from each adding new keys past
    the set's limits, so the owning service (or environment) row is the lock.
    """
    if scope.service_id is None:
        query = select(Environment.id).where(Environment.id == scope.environment_id)
    else:
        query = select(Service.id).where(Service.id == scope.service_id)
    await session.execute(query.with_for_update())


def _decrypt(keyring: Keyring, scope: VariableScope, row: _Row) -> str:
    try:
        return keyring.decrypt(row.value_encrypted, aad=scope.aad(row.key))
    except DecryptionError as exc:
        raise UndecryptableVariableError(row.key, str(exc)) from None


def _plaintext_size(envelope: str) -> int:
    """A sealed value's UTF-8 size from its envelope alone (no key needed, nothing decrypted)."""
    body = envelope.rpartition(":")[2]
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (ValueError, binascii.Error):
        return 0
    return max(0, len(raw) - 28)  # 12-byte nonce, 16-byte tag


# Reading for the API --------------------------------------------------------------------------


@dataclass(frozen=True)
class VariableSetView:
    """A set as an API caller may see it. ``values`` are masked where the caller may not read
    them and always for sealed variables; ``undecryptable`` lists stored values that fail to
    open (shown masked, so the set stays usable while an operator investigates)."""

    values: dict[str, str] = field(repr=False)
    sealed: list[str]
    undecryptable: list[str]
    values_visible: bool


async def read_variable_set(
    session: AsyncSession, keyring: Keyring, scope: VariableScope, *, reveal: bool
) -> VariableSetView:
    """The set for the API. Sealed values are never decrypted here, whoever asks."""
    values: dict[str, str] = {}
    sealed: list[str] = []
    undecryptable: list[str] = []
    for row in await _rows(session, scope):
        if row.is_sealed:
            sealed.append(row.key)
            values[row.key] = MASK
        elif not reveal:
            values[row.key] = MASK
        else:
            try:
                values[row.key] = _decrypt(keyring, scope, row)
            except UndecryptableVariableError:
                undecryptable.append(row.key)
                values[row.key] = MASK
    return VariableSetView(values, sealed, undecryptable, values_visible=reveal)


# Writing --------------------------------------------------------------------------------------


def check_entries(values: Mapping[str, str]) -> list[Problem]:
    """Problems of the keys and values themselves, before any stored state is considered."""
    problems: list[Problem] = []
    for key, value in values.items():
        problem = key_problem(key) or value_problem(value)
        if problem is None and value != MASK:
            syntax = reference_syntax_problem(value)
            problem = ("reference_malformed", syntax) if syntax else None
        if problem is not None:
            problems.append(Problem(key, *problem))
    if len(values) > MAX_VARIABLES_PER_SET:
        problems.append(
            Problem(
                None,
                "too_many_variables",
                f"{len(values)} variables; a set holds at most {MAX_VARIABLES_PER_SET}",
            )
        )
    return problems


async def write_variables(
    session: AsyncSession,
    keyring: Keyring,
    scope: VariableScope,
    *,
    values: Mapping[str, str],
    sealed: Collection[str] = (),
    replace: bool = False,
) -> list[str]:
    """Upsert ``values`` (``replace``: and delete every other key), sealing the keys in
    ``sealed``; returns the keys whose stored value changed, were added or removed.

    All or nothing: every problem is collected and :class:`InvalidVariablesError` raised before any
    row changes. A sealed variable stays sealed (sealing cannot be undone, as on Railway); sent
    back as the mask ``*****`` — what a read returned for it — its stored value is kept, so a
    read-modify-write round trip never overwrites a secret with asterisks.
    """
    problems = check_entries(values)
    await _lock(session, scope)
    existing = {row.key: row for row in await _rows(session, scope)}
    kept = {k: r for k, r in existing.items() if not replace or k in values}
    for key in sorted(set(sealed)):
        if key not in values and key not in kept:
            problems.append(
                Problem(
                    key,
                    "unknown_key",
                    f"{display_key(key)} is neither sent nor stored",
                    where="sealed",
                )
            )
    final_keys = set(kept) | set(values)
    if not problems and len(final_keys) > MAX_VARIABLES_PER_SET:
        problems.append(
            Problem(
                None,
                "too_many_variables",
                f"the set would hold {len(final_keys)} variables; at most "
                f"{MAX_VARIABLES_PER_SET} are allowed",
            )
        )
    if not problems:
        total = 0
        for key in final_keys:
            row = existing.get(key)
            if row is not None and (key not in values or (row.is_sealed and values[key] == MASK)):
                size = _plaintext_size(row.value_encrypted)  # kept: measured without decrypting
            else:
                size = len(values[key].encode("utf-8"))
            total += len(key.encode("utf-8")) + size
        if total > MAX_SET_BYTES:
            problems.append(
                Problem(
                    None,
                    "set_too_large",
                    f"the variables would total {total} bytes; a set holds at most "
                    f"{MAX_SET_BYTES} bytes of names and values",
                )
            )
    if problems:
        raise InvalidVariablesError(problems)

    changed: list[str] = []
    seal = set(sealed)
    for key, value in values.items():
        row = existing.get(key)
        if row is None:
            envelope = keyring.encrypt(value, aad=scope.aad(key))
            session.add(scope.new_row(key, envelope, is_sealed=key in seal))
            changed.append(key)
            continue
        if key in seal and not row.is_sealed:
            row.is_sealed = True
            changed.append(key)
        if row.is_sealed and value == MASK:
            continue
        if row.is_sealed:
            # Never compared: "unchanged" in the answer would tell whoever guessed it the value.
            unchanged = False
        else:
            try:
                unchanged = _decrypt(keyring, scope, row) == value
            except UndecryptableVariableError:
                unchanged = False  # a broken value is exactly what a write should replace
        if not unchanged:
            row.value_encrypted = keyring.encrypt(value, aad=scope.aad(key))
            changed.append(key)
    for key in seal - set(values):
        if not kept[key].is_sealed:
            kept[key].is_sealed = True
            changed.append(key)
    for key, row in existing.items():
        if key not in kept:
            await session.delete(row)
            changed.append(key)
    await session.flush()
    return sorted(set(changed))


async def delete_variable(session: AsyncSession, scope: VariableScope, key: str) -> bool:
    """Delete one variable; False if the set has no such key."""
    await _lock(session, scope)
    rows = await _rows(session, scope, key)
    for row in rows:
        await session.delete(row)
    await session.flush()
    return bool(rows)


# Reading for deploys ---------------------------------------------------------------------------


class _Decrypting(Mapping[str, str]):
    """A set whose values are decrypted on first use: a broken value in a service this deploy
    never references does not fail the deploy."""

    def __init__(self, keyring: Keyring, scope: VariableScope, rows: Sequence[_Row]) -> None:
        self._keyring = keyring
        self._scope = scope
        self._rows = {row.key: row for row in rows}
        self._cache: dict[str, str] = {}

    def __getitem__(self, key: str) -> str:
        if key not in self._cache:
            self._cache[key] = _decrypt(self._keyring, self._scope, self._rows[key])
        return self._cache[key]

    def __contains__(self, key: object) -> bool:
        return key in self._rows

    def __iter__(self) -> Iterator[str]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def __repr__(self) -> str:
        return f"<variables {sorted(self._rows)}>"  # names only, never values


async def load_plaintext_variables(
    session: AsyncSession, keyring: Keyring, scope: VariableScope
) -> dict[str, tuple[str, bool]]:
    """Every variable of a set, decrypted, sealed ones included: ``{key: (value, is_sealed)}``.

    For platform code that must carry values over (a preview environment copying its base's
    variables), never for an API response. Raises :class:`UndecryptableVariableError`.
    """
    return {
        row.key: (_decrypt(keyring, scope, row), row.is_sealed)
        for row in await _rows(session, scope)
    }


def _identity_values(
    project: Project, environment: Environment, service: Service
) -> dict[str, str]:
    return {
        "CABOOSE_PROJECT_NAME": project.name,
        "CABOOSE_PROJECT_ID": str(project.id),
        "CABOOSE_ENVIRONMENT_NAME": environment.name,
        "CABOOSE_ENVIRONMENT_ID": str(environment.id),
        "CABOOSE_SERVICE_NAME": service.name,
        "CABOOSE_SERVICE_ID": str(service.id),
    }


async def _public_domains(session: AsyncSession, environment_id: uuid.UUID) -> dict[uuid.UUID, str]:
    """Each service's public hostname in the environment: its oldest custom domain, else its
    oldest generated one (what ``CABOOSE_PUBLIC_DOMAIN`` means when the caller gives none)."""
    rows = await session.execute(
        select(Domain.service_id, Domain.hostname, Domain.kind)
        .where(Domain.environment_id == environment_id)
        .order_by(Domain.created_at, Domain.hostname)
    )
    domains: dict[uuid.UUID, str] = {}
    custom: set[uuid.UUID] = set()
    for service_id, hostname, kind in rows.all():
        is_custom = kind == DomainKind.CUSTOM
        if service_id not in domains or (is_custom and service_id not in custom):
            domains[service_id] = hostname
            if is_custom:
                custom.add(service_id)
    return domains


@dataclass(frozen=True)
class _Loaded:
    project: ProjectVariables
    service_name: str


async def _load_project_variables(
    session: AsyncSession,
    keyring: Keyring,
    service_id: uuid.UUID,
    environment_id: uuid.UUID,
    platform_values: Mapping[uuid.UUID, Mapping[str, str]],
) -> _Loaded:
    service = await session.get(Service, service_id)
    environment = await session.get(Environment, environment_id)
    if service is None or environment is None or environment.project_id != service.project_id:
        raise LookupError("the service and environment are not of one project")
    project = await session.get(Project, service.project_id)
    if project is None:  # pragma: no cover - a foreign key guarantees it
        raise LookupError("the service has no project")
    services = list(
        (await session.scalars(select(Service).where(Service.project_id == project.id))).all()
    )
    rows = list(
        (
            await session.scalars(
                select(Variable).where(
                    Variable.environment_id == environment.id,
                    Variable.service_id.in_([s.id for s in services]),
                )
            )
        ).all()
    )
    shared_rows = list(
        (
            await session.scalars(
                select(SharedVariable).where(SharedVariable.environment_id == environment.id)
            )
        ).all()
    )
    domains = await _public_domains(session, environment.id)
    by_service: dict[str, Mapping[str, str]] = {}
    platform: dict[str, Mapping[str, str]] = {}
    for each in services:
        own = [row for row in rows if row.service_id == each.id]
        by_service[each.name] = _Decrypting(keyring, service_scope(each.id, environment.id), own)
        values = _identity_values(project, environment, each)
        if each.id in domains:
            values["CABOOSE_PUBLIC_DOMAIN"] = domains[each.id]
        values.update(platform_values.get(each.id, {}))
        platform[each.name] = values
    shared = _Decrypting(keyring, shared_scope(environment.id), list(shared_rows))
    return _Loaded(ProjectVariables(by_service, shared, platform), service.name)


def _keyring(keys: PlatformKeys | Keyring) -> Keyring:
    return keys if isinstance(keys, Keyring) else keys.variables


async def load_resolved_environment(
    session: AsyncSession,
    keys: PlatformKeys | Keyring,
    service_id: uuid.UUID,
    environment_id: uuid.UUID,
    platform_values: Mapping[uuid.UUID, Mapping[str, str]] | None = None,
) -> dict[str, str]:
    """The environment a deployment of ``service_id`` in ``environment_id`` runs with.

    ``platform_values`` are the platform's values per service id under their ``CABOOSE_`` names
    (``CABOOSE_PUBLIC_DOMAIN``, ``CABOOSE_DEPLOYMENT_ID``, ``CABOOSE_GIT_COMMIT_SHA`` …): those
    of the deployed service, and any other service's its variables may reference. Names and ids
    of project, environment and every service are filled in here, and each service's public
    domain from its ``Domain`` rows when not given. The result holds the deployed service's
    platform values (also as ``RAILWAY_`` names) and its variables, sealed ones included, with
    every reference expanded. ``PORT`` is not in it: it is per replica, the runtime's to set.

    Raises :class:`VariableReferenceError` (unknown reference, cycle, too large) or
    :class:`UndecryptableVariableError`, both :class:`VariableResolutionError`, with a message
    that names the variable and is fit for the deployment's log; ``LookupError`` if the
    environment is not one of the service's project.
    """
    loaded = await _load_project_variables(
        session, _keyring(keys), service_id, environment_id, platform_values or {}
    )
    return resolve_service_environment(loaded.project, loaded.service_name)


async def secret_values_for_redaction(
    session: AsyncSession,
    keys: PlatformKeys | Keyring,
    service_id: uuid.UUID,
    environment_id: uuid.UUID,
    platform_values: Mapping[uuid.UUID, Mapping[str, str]] | None = None,
) -> list[str]:
    """Strings to blank out of this service's build and runtime logs, longest first.

    Every current value (sealed included) of at least :data:`MIN_REDACTED_LENGTH` characters
    that reaches the app: its own variables as stored and as expanded, and whatever shared or
    other services' values its references pull in; plus each line of a multi-line value (logs
    are read line by line, so a printed PEM key never matches whole). Give the same
    ``platform_values`` as to :func:`load_resolved_environment` so that references to them
    expand; a variable that does not resolve still contributes its stored value, and one that
    cannot be decrypted is skipped (nothing can print what nobody can read).
    """
    loaded = await _load_project_variables(
        session, _keyring(keys), service_id, environment_id, platform_values or {}
    )
    found: set[str] = set()
    for value in referenced_values(loaded.project, loaded.service_name):
        pieces = [value]
        if "\n" in value or "\r" in value:
            pieces += (line.strip() for line in value.splitlines())
        found.update(piece for piece in pieces if len(piece) >= MIN_REDACTED_LENGTH)
    return sorted(found, key=lambda v: (-len(v), v))
