"""The hostnames of a service in an environment: the generated one, custom ones, the public URL.

A service-environment gets one generated hostname on its first deployment,
``<service>-<project>.<base domain>``, with ``-<environment>`` added outside production (so
``web-shop.localhost`` and ``web-shop-staging.localhost``). Hostnames are unique across the
whole instance, and two workspaces may both have a project ``shop`` with a service ``web``: the
second one then gets a short random suffix, as Railway's generated domains do. A DNS label holds
at most 63 characters; longer names are cut and made unique with a hash of the full name.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from caboose.core.errors import ConflictError
from caboose.engine.routing import validate_hostname
from caboose.models import Domain, DomainKind, Environment, Project, Service

__all__ = [
    "PRODUCTION",
    "ensure_generated_domain",
    "generated_hostname",
    "hostnames_for",
    "primary_hostname",
    "private_domain",
    "public_url",
]

PRODUCTION = "production"
_MAX_LABEL = 63
_NOT_LABEL = re.compile(r"[^a-z0-9-]+")
_ATTEMPTS = 5


def _label(*parts: str) -> str:
    raw = "-".join(_NOT_LABEL.sub("-", part.lower()).strip("-") for part in parts if part)
    raw = re.sub(r"-{2,}", "-", raw).strip("-") or "app"
    if len(raw) <= _MAX_LABEL:
        return raw
    digest = hashlib.sha256(raw.encode()).hexdigest()[:6]
    return f"{raw[: _MAX_LABEL - 7].rstrip('-')}-{digest}"


def generated_hostname(
    service_name: str,
    project_name: str,
    environment_name: str,
    base_domain: str,
    *,
    suffix: str | None = None,
) -> str:
    """``<service>-<project>[-<environment>][-<suffix>].<base domain>``, a valid DNS name."""
    parts = [service_name, project_name]
    if environment_name != PRODUCTION:
        parts.append(environment_name)
    label = _label(*parts)
    if suffix:
        label = f"{label[: _MAX_LABEL - len(suffix) - 1].rstrip('-')}-{suffix}"
    return validate_hostname(f"{label}.{base_domain}")


def private_domain(service_name: str) -> str:
    """``CABOOSE_PRIVATE_DOMAIN``: ``<service>.caboose.internal``, the name Railway apps expect
    (``<service>.railway.internal``). Caboose has no private network yet, so nothing resolves
    it; apps that only log or template it keep working."""
    return f"{_label(service_name)}.caboose.internal"


async def ensure_generated_domain(
    session: AsyncSession,
    service: Service,
    environment: Environment,
    project: Project,
    base_domain: str,
) -> Domain:
    """The service-environment's generated domain, created (flushed) if it has none."""
    existing = await session.scalar(
        select(Domain).where(
            Domain.service_id == service.id,
            Domain.environment_id == environment.id,
            Domain.kind == DomainKind.GENERATED,
        )
    )
    if existing is not None:
        return existing
    suffix: str | None = None
    for _ in range(_ATTEMPTS):
        hostname = generated_hostname(
            service.name, project.name, environment.name, base_domain, suffix=suffix
        )
        taken = await session.scalar(select(Domain.id).where(Domain.hostname == hostname))
        if taken is None:
            domain = Domain(
                service_id=service.id,
                environment_id=environment.id,
                hostname=hostname,
                kind=DomainKind.GENERATED,
                status="active",
            )
            session.add(domain)
            await session.flush()
            return domain
        suffix = secrets.token_hex(2)
    raise ConflictError("Could not generate a free hostname for this service")


async def hostnames_for(
    session: AsyncSession, service_id: uuid.UUID, environment_id: uuid.UUID
) -> list[str]:
    """Every hostname routed to the service in the environment: custom ones first (oldest
    first), then the generated one. The first is the public one (``CABOOSE_PUBLIC_DOMAIN``)."""
    rows = await session.execute(
        select(Domain.hostname, Domain.kind)
        .where(Domain.service_id == service_id, Domain.environment_id == environment_id)
        .order_by(Domain.created_at, Domain.hostname)
    )
    custom: list[str] = []
    generated: list[str] = []
    for hostname, kind in rows.all():
        (custom if kind == DomainKind.CUSTOM else generated).append(hostname)
    return [*custom, *generated]


def primary_hostname(hostnames: Sequence[str]) -> str | None:
    return hostnames[0] if hostnames else None


def public_url(hostname: str, http_port: int) -> str:
    """How users reach a hostname through the edge router's web entrypoint."""
    port = "" if http_port == 80 else f":{http_port}"
    return f"http://{hostname}{port}"
