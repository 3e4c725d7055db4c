"""Routes: variables of a service in an environment, and shared variables of an environment.

Who sees what is the role matrix (``core/permissions``): members read names with every value
masked, admins and owners read and write values, and nobody reads a sealed value back — it is not
even decrypted on this path. Writes are all or nothing: one invalid key or over-large value is a
422 naming it, and the stored set is left as it was. Changing variables never redeploys by
itself; ``?deploy=true`` asks for it: each service of the set that runs in the environment is
redeployed (``deploys.actions.redeploy_latest``) once the change is committed, and the answer
lists the new deployments (``deployments``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated, Any

import pydantic
from fastapi import APIRouter, Depends, Path, Query, Request
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from caboose.api.deployments import TaskSenderDep
from caboose.api.deps import (
    Access,
    EnvironmentAccess,
    KeysDep,
    RedisDep,
    ServiceAccess,
    SessionDep,
    SettingsDep,
    load_environment,
)
from caboose.config import Settings
from caboose.core.errors import (
    BadRequestError,
    ConflictError,
    FieldError,
    UnsupportedMediaTypeError,
    ValidationError,
    not_found,
)
from caboose.core.permissions import Permission
from caboose.deploys import actions
from caboose.deploys.actions import Outbox, TaskSender
from caboose.models import Deployment, Environment, Service
from caboose.schemas.variables import (
    VariableImportResult,
    VariableSetPublic,
    VariablesImport,
    VariablesUpdate,
    VariableWriteResult,
)
from caboose.variables.dotenv import DotenvError, parse_dotenv
from caboose.variables.names import display_key
from caboose.variables.store import (
    InvalidVariablesError,
    Problem,
    VariableScope,
    delete_variable,
    read_variable_set,
    service_scope,
    shared_scope,
    write_variables,
)

router = APIRouter(tags=["variables"])

ServiceId = Annotated[uuid.UUID, Path(description="The service's id.")]
EnvironmentPath = Annotated[uuid.UUID, Path(description="The environment's id.")]
EnvironmentQuery = Annotated[
    uuid.UUID, Query(description="The environment (of the service's project).")
]
KeyPath = Annotated[str, Path(description="The variable's name.", max_length=1024)]
DeployQuery = Annotated[
    bool,
    Query(description="Roll the change out with a new deployment (default: no redeploy)."),
]
ReplaceQuery = Annotated[
    bool, Query(description="For a text/plain body: make the file the whole set.")
]

_IMPORT_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "text/plain": {"schema": {"type": "string", "description": "The .env text."}},
        "application/json": {"schema": VariablesImport.model_json_schema()},
    },
}


# Helpers -----------------------------------------------------------------------------------


async def _service_environment(
    session: AsyncSession, access: Access[Service], environment_id: uuid.UUID
) -> Environment:
    """The environment, if the caller may see it and it belongs to the service's project."""
    environment: Environment = (
        await load_environment(session, access.principal, environment_id)
    ).obj
    if environment.project_id != access.obj.project_id:
        raise not_found("Environment", environment_id)
    return environment


def _field_errors(problems: list[Problem], lines: dict[str, int] | None = None) -> list[FieldError]:
    """Problems as RFC 7807 ``errors``: ``variables.KEY`` (``sealed.KEY``) for a JSON body,
    ``line.N`` for an imported file, and the set as a whole as ``variables`` (``text``)."""
    errors: list[FieldError] = []
    for problem in problems:
        if problem.key is None:
            field = "variables" if lines is None else "text"
            message = problem.message
        else:
            shown = display_key(problem.key)
            field = f"{problem.where}.{shown}"
            message = f"{shown}: {problem.message}"
            if lines is not None and problem.where == "variables" and problem.key in lines:
                field = f"line.{lines[problem.key]}"
                message = f"line {lines[problem.key]}: {message}"
        errors.append(FieldError(field=field, message=message, code=problem.code))
    return errors


def _invalid(errors: list[FieldError]) -> ValidationError:
    summary = "; ".join(error.message for error in errors[:3])
    more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
    return ValidationError(f"Invalid variables: {summary}{more}", errors=errors)


async def _view(
    session: AsyncSession, keys: KeysDep, access: Access[Any], scope: VariableScope
) -> VariableSetPublic:
    view = await read_variable_set(
        session,
        keys.variables,
        scope,
        reveal=access.can(Permission.VARIABLES_READ_VALUES),
    )
    return VariableSetPublic(
        variables=view.values,
        sealed=view.sealed,
        values_visible=view.values_visible,
        undecryptable=view.undecryptable,
    )


@dataclass(frozen=True)
class Rollout:
    """What ``?deploy=true`` needs to start deployments after the change is committed."""

    requested: bool
    session: AsyncSession
    redis: Redis
    settings: Settings
    sender: TaskSender


def get_rollout(
    session: SessionDep,
    redis: RedisDep,
    settings: SettingsDep,
    sender: TaskSenderDep,
    deploy: DeployQuery = False,
) -> Rollout:
    return Rollout(deploy, session, redis, settings, sender)


RolloutDep = Annotated[Rollout, Depends(get_rollout)]


async def _roll_out(rollout: Rollout, access: Access[Any], scope: VariableScope) -> list[uuid.UUID]:
    """Redeploy what runs with this set: the service (its variables), or every service of the
    project deployed in the environment (shared variables). After the variables are committed,
    so the new deployments read them; a service that cannot be redeployed (its upload is no
    longer kept) is left as it is."""
    if not rollout.requested:
        return []
    access.require(Permission.DEPLOY)
    session = rollout.session
    environment = await session.get(Environment, scope.environment_id)
    assert environment is not None
    if scope.service_id is not None:
        service_ids = [scope.service_id]
    else:
        service_ids = list(
            (
                await session.scalars(
                    select(Deployment.service_id)
                    .where(Deployment.environment_id == environment.id)
                    .distinct()
                )
            ).all()
        )
    await session.commit()  # the new deployments must read the new values
    outbox = Outbox()
    started: list[uuid.UUID] = []
    for service_id in sorted(service_ids):
        service = await session.get(Service, service_id)
        if service is None:
            continue
        try:
            deployment = await actions.redeploy_latest(
                session,
                outbox,
                service=service,
                environment=environment,
                base_domain=rollout.settings.base_domain,
                user_id=access.principal.user_id,
            )
        except ConflictError:
            continue
        if deployment is not None:
            started.append(deployment.id)
    await session.commit()
    await outbox.flush(rollout.redis, rollout.sender)
    return started


async def _write(
    session: AsyncSession,
    keys: KeysDep,
    access: Access[Any],
    scope: VariableScope,
    body: VariablesUpdate,
    *,
    rollout: Rollout,
) -> VariableWriteResult:
    access.require(Permission.VARIABLES_WRITE)
    if rollout.requested:
        access.require(Permission.DEPLOY)
    try:
        changed = await write_variables(
            session,
            keys.variables,
            scope,
            values=body.variables,
            sealed=body.sealed,
            replace=body.replace,
        )
    except InvalidVariablesError as exc:
        raise _invalid(_field_errors(exc.problems)) from None
    view = await _view(session, keys, access, scope)
    return VariableWriteResult(
        **view.model_dump(),
        changed=changed,
        deploy_requested=rollout.requested,
        deployments=await _roll_out(rollout, access, scope),
    )


async def _delete(
    session: AsyncSession,
    keys: KeysDep,
    access: Access[Any],
    scope: VariableScope,
    key: str,
    *,
    rollout: Rollout,
) -> VariableWriteResult:
    access.require(Permission.VARIABLES_WRITE)
    if rollout.requested:
        access.require(Permission.DEPLOY)
    if not await delete_variable(session, scope, key):
        raise not_found("Variable", display_key(key))
    view = await _view(session, keys, access, scope)
    return VariableWriteResult(
        **view.model_dump(),
        changed=[key],
        deploy_requested=rollout.requested,
        deployments=await _roll_out(rollout, access, scope),
    )


async def _import_body(request: Request, replace: bool) -> VariablesImport:
    """The import request as one shape, whichever of the two content types carried it."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    raw = await request.body()
    if content_type == "application/json":
        try:
            return VariablesImport.model_validate_json(raw)
        except pydantic.ValidationError as exc:
            if any(error["type"] == "json_invalid" for error in exc.errors()):
                raise BadRequestError("The request body is not valid JSON") from None
            errors = [
                FieldError(
                    field=".".join(str(part) for part in error["loc"]) or "body",
                    message=error["msg"],
                    code=error["type"],
                )
                for error in exc.errors()
            ]
            raise ValidationError(
                "Invalid request: " + "; ".join(f"{e.field}: {e.message}" for e in errors[:3]),
                errors=errors,
            ) from None
    if content_type in {"", "text/plain"} or content_type.startswith("text/"):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequestError("The .env text is not UTF-8") from None
        return VariablesImport(text=text, replace=replace)
    raise UnsupportedMediaTypeError(
        'Send the .env text as text/plain, or JSON {"text": …} as application/json'
    )


async def _import(
    request: Request,
    session: AsyncSession,
    keys: KeysDep,
    access: Access[Any],
    scope: VariableScope,
    *,
    replace: bool,
    rollout: Rollout,
) -> VariableImportResult:
    access.require(Permission.VARIABLES_WRITE)
    if rollout.requested:
        access.require(Permission.DEPLOY)
    body = await _import_body(request, replace)
    try:
        entries = parse_dotenv(body.text)
    except DotenvError as exc:
        raise _invalid(
            [
                FieldError(
                    field=f"line.{p.line}", message=f"line {p.line}: {p.message}", code=p.code
                )
                for p in exc.problems
            ]
        ) from None
    values = {entry.key: entry.value for entry in entries}
    lines = {entry.key: entry.line for entry in entries}  # a repeated key: its last line wins
    try:
        changed = await write_variables(
            session, keys.variables, scope, values=values, sealed=body.sealed, replace=body.replace
        )
    except InvalidVariablesError as exc:
        raise _invalid(_field_errors(exc.problems, lines)) from None
    view = await _view(session, keys, access, scope)
    return VariableImportResult(
        **view.model_dump(),
        changed=changed,
        deploy_requested=rollout.requested,
        deployments=await _roll_out(rollout, access, scope),
        imported=list(dict.fromkeys(entry.key for entry in entries)),
    )


# Service variables --------------------------------------------------------------------------


@router.get("/services/{service_id}/variables", response_model=VariableSetPublic)
async def get_variables(
    service_id: ServiceId,
    environment_id: EnvironmentQuery,
    session: SessionDep,
    keys: KeysDep,
    access: ServiceAccess,
) -> VariableSetPublic:
    """The service's variables in the environment: values for admins and owners, names with
    masked values for members; sealed values always masked."""
    environment = await _service_environment(session, access, environment_id)
    access.require(Permission.VARIABLES_READ_NAMES)
    return await _view(session, keys, access, service_scope(access.obj.id, environment.id))


@router.put("/services/{service_id}/variables", response_model=VariableWriteResult)
async def put_variables(
    service_id: ServiceId,
    environment_id: EnvironmentQuery,
    body: VariablesUpdate,
    session: SessionDep,
    keys: KeysDep,
    access: ServiceAccess,
    rollout: RolloutDep,
) -> VariableWriteResult:
    """Upsert variables (``replace``: set exactly these), sealing the keys in ``sealed``.

    All or nothing: any invalid key or value is a 422 naming it, and nothing is changed.
    """
    environment = await _service_environment(session, access, environment_id)
    scope = service_scope(access.obj.id, environment.id)
    return await _write(session, keys, access, scope, body, rollout=rollout)


@router.delete("/services/{service_id}/variables/{key}", response_model=VariableWriteResult)
async def delete_service_variable(
    service_id: ServiceId,
    key: KeyPath,
    environment_id: EnvironmentQuery,
    session: SessionDep,
    keys: KeysDep,
    access: ServiceAccess,
    rollout: RolloutDep,
) -> VariableWriteResult:
    """Delete one variable; answers with the remaining set."""
    environment = await _service_environment(session, access, environment_id)
    scope = service_scope(access.obj.id, environment.id)
    return await _delete(session, keys, access, scope, key, rollout=rollout)


@router.post(
    "/services/{service_id}/variables/import",
    response_model=VariableImportResult,
    openapi_extra={"requestBody": _IMPORT_BODY},
)
async def import_variables(
    service_id: ServiceId,
    environment_id: EnvironmentQuery,
    request: Request,
    session: SessionDep,
    keys: KeysDep,
    access: ServiceAccess,
    rollout: RolloutDep,
    replace: ReplaceQuery = False,
) -> VariableImportResult:
    """Import ``.env`` text (``text/plain``, or JSON ``{text, replace?, sealed?}``).

    Comments, ``export``, single and double quotes (multi-line in double quotes) are understood;
    a syntax error is a 422 that names the line, and nothing is imported.
    """
    environment = await _service_environment(session, access, environment_id)
    scope = service_scope(access.obj.id, environment.id)
    return await _import(request, session, keys, access, scope, replace=replace, rollout=rollout)


# Shared variables ---------------------------------------------------------------------------


@router.get("/environments/{environment_id}/shared-variables", response_model=VariableSetPublic)
async def get_shared_variables(
    environment_id: EnvironmentPath, session: SessionDep, keys: KeysDep, access: EnvironmentAccess
) -> VariableSetPublic:
    """The environment's shared variables (referenced as ``${{shared.KEY}}``)."""
    access.require(Permission.VARIABLES_READ_NAMES)
    return await _view(session, keys, access, shared_scope(access.obj.id))


@router.put("/environments/{environment_id}/shared-variables", response_model=VariableWriteResult)
async def put_shared_variables(
    environment_id: EnvironmentPath,
    body: VariablesUpdate,
    session: SessionDep,
    keys: KeysDep,
    access: EnvironmentAccess,
    rollout: RolloutDep,
) -> VariableWriteResult:
    """Upsert (or ``replace``) shared variables; the same rules as a service's variables."""
    return await _write(session, keys, access, shared_scope(access.obj.id), body, rollout=rollout)


@router.delete(
    "/environments/{environment_id}/shared-variables/{key}", response_model=VariableWriteResult
)
async def delete_shared_variable(
    environment_id: EnvironmentPath,
    key: KeyPath,
    session: SessionDep,
    keys: KeysDep,
    access: EnvironmentAccess,
    rollout: RolloutDep,
) -> VariableWriteResult:
    """Delete one shared variable; answers with the remaining set."""
    return await _delete(session, keys, access, shared_scope(access.obj.id), key, rollout=rollout)


@router.post(
    "/environments/{environment_id}/shared-variables/import",
    response_model=VariableImportResult,
    openapi_extra={"requestBody": _IMPORT_BODY},
)
async def import_shared_variables(
    environment_id: EnvironmentPath,
    request: Request,
    session: SessionDep,
    keys: KeysDep,
    access: EnvironmentAccess,
    rollout: RolloutDep,
    replace: ReplaceQuery = False,
) -> VariableImportResult:
    """Import ``.env`` text into the shared variables, as for a service."""
    scope = shared_scope(access.obj.id)
    return await _import(request, session, keys, access, scope, replace=replace, rollout=rollout)
