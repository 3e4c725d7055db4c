"""Routes: domains — the hostnames routed to a service in an environment (API.md,
"Configuration").

Each service-environment has a generated hostname (``<service>-<project>.<base domain>``, with
``-<environment>`` outside production), created by its first deployment or on demand here, and
any number of custom ones. Hostnames are unique across the instance (409), validated as DNS
names (422), and the platform's own host is refused. A change is applied to the running
deployment's route by a worker (``deployments.sync_route``) at once.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status
from fastapi import Path as PathParam
from sqlalchemy import select

from caboose.api.deployments import TaskSenderDep, environment_of
from caboose.api.deps import (
    PrincipalDep,
    RedisDep,
    ServiceAccess,
    SessionDep,
    SettingsDep,
    load_service,
)
from caboose.core.errors import (
    ConflictError,
    FieldError,
    NotFoundError,
    ValidationError,
    not_found,
)
from caboose.core.permissions import Permission
from caboose.deploys import actions
from caboose.deploys.actions import Outbox
from caboose.deploys.domains import ensure_generated_domain, public_url
from caboose.engine.routing import validate_hostname
from caboose.models import Domain, DomainKind, Project
from caboose.repositories.projects import DomainRepository
from caboose.schemas.common import ListParamsDep, PageOf
from caboose.schemas.deployments import DomainCreate, DomainPublic

router = APIRouter(tags=["domains"])

ServiceId = Annotated[uuid.UUID, PathParam(description="The service's id.")]
DomainId = Annotated[uuid.UUID, PathParam(description="The domain's id.")]


def _public(domain: Domain, http_port: int) -> DomainPublic:
    out = DomainPublic.model_validate(domain)
    out.url = public_url(domain.hostname, http_port)
    return out


@router.get("/services/{service_id}/domains", response_model=PageOf[DomainPublic])
async def list_domains(
    service_id: ServiceId,
    session: SessionDep,
    settings: SettingsDep,
    access: ServiceAccess,
    params: ListParamsDep,
    environment_id: Annotated[
        uuid.UUID | None, Query(description="Only this environment's domains.")
    ] = None,
) -> PageOf[DomainPublic]:
    access.require(Permission.PROJECT_READ)
    filters: dict[str, Any] = {"service_id": access.obj.id}
    if environment_id is not None:
        await environment_of(session, access, environment_id)
        filters["environment_id"] = environment_id
    page = await DomainRepository(session, access.tenant_id).list(
        filters=filters, pagination=params.pagination, sorting=params.sorting
    )
    return PageOf.from_page(page, [_public(d, settings.http_port) for d in page.items])


@router.post(
    "/services/{service_id}/domains",
    response_model=DomainPublic,
    status_code=status.HTTP_201_CREATED,
)
async def create_domain(
    service_id: ServiceId,
    body: DomainCreate,
    session: SessionDep,
    redis: RedisDep,
    settings: SettingsDep,
    sender: TaskSenderDep,
    access: ServiceAccess,
) -> DomainPublic:
    """Add a custom hostname, or (no ``hostname``) get the generated one, created if needed."""
    access.require(Permission.DOMAINS_MANAGE)
    environment = await environment_of(session, access, body.environment_id)
    service = access.obj
    if body.hostname is None:
        project = await session.get(Project, service.project_id)
        assert project is not None
        domain = await ensure_generated_domain(
            session, service, environment, project, settings.base_domain
        )
    else:
        hostname = _valid_hostname(body.hostname, settings.platform_host)
        taken = await session.scalar(select(Domain.id).where(Domain.hostname == hostname))
        if taken is not None:
            raise ConflictError(f"{hostname} is already in use")
        domain = await DomainRepository(session, access.tenant_id).create(
            service_id=service.id,
            environment_id=environment.id,
            hostname=hostname,
            kind=DomainKind.CUSTOM,
            status="active",
        )
    outbox = Outbox()
    actions.sync_routes(outbox, service.id, environment.id)
    await session.commit()
    await outbox.flush(redis, sender)
    return _public(domain, settings.http_port)


def _valid_hostname(raw: str, platform_host: str) -> str:
    try:
        hostname = validate_hostname(raw.strip())
    except ValueError as exc:
        raise ValidationError(
            str(exc), errors=[FieldError(field="hostname", message=str(exc), code="invalid")]
        ) from None
    if "." not in hostname:
        message = "a custom domain needs at least two labels (example.com)"
        raise ValidationError(
            message, errors=[FieldError(field="hostname", message=message, code="invalid")]
        )
    if hostname == platform_host.lower():
        message = "this is the platform's own hostname"
        raise ValidationError(
            message, errors=[FieldError(field="hostname", message=message, code="reserved")]
        )
    return hostname


@router.delete(
    "/domains/{domain_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response
)
async def delete_domain(
    domain_id: DomainId,
    session: SessionDep,
    redis: RedisDep,
    sender: TaskSenderDep,
    principal: PrincipalDep,
) -> None:
    """Remove a hostname (generated ones too); it stops routing at once."""
    domain = await DomainRepository(session, principal.tenant_ids).get(domain_id)
    if domain is None:
        raise not_found("Domain", domain_id)
    try:
        access = await load_service(session, principal, domain.service_id)
    except NotFoundError:
        raise not_found("Domain", domain_id) from None
    access.require(Permission.DOMAINS_MANAGE)
    service_id, environment_id = domain.service_id, domain.environment_id
    await DomainRepository(session, access.tenant_id).delete(domain)
    outbox = Outbox()
    actions.sync_routes(outbox, service_id, environment_id)
    await session.commit()
    await outbox.flush(redis, sender)
