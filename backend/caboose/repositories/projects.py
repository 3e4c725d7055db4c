"""Tenant-scoped repositories of the project tree."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import and_, func, or_, select

from caboose.models import (
    Build,
    Deployment,
    DeploymentStatus,
    Domain,
    Environment,
    Project,
    Service,
    Variable,
    Webhook,
)
from caboose.repositories.tenant import TenantRepository


@dataclass(frozen=True, slots=True)
class ServiceDeployments:
    """A service's newest deployment in an environment, and its newest ACTIVE one (the one
    serving traffic; the same object when the newest is live)."""

    service_id: uuid.UUID
    latest: Deployment | None
    active: Deployment | None


class ProjectRepository(TenantRepository[Project]):
    model = Project
    noun = "Project"


class EnvironmentRepository(TenantRepository[Environment]):
    model = Environment
    noun = "Environment"
    tenant_path = (Environment.project,)


class ServiceRepository(TenantRepository[Service]):
    model = Service
    noun = "Service"
    tenant_path = (Service.project,)


class VariableRepository(TenantRepository[Variable]):
    model = Variable
    noun = "Variable"
    tenant_path = (Variable.service, Service.project)


class DomainRepository(TenantRepository[Domain]):
    model = Domain
    noun = "Domain"
    tenant_path = (Domain.service, Service.project)


class BuildRepository(TenantRepository[Build]):
    model = Build
    noun = "Build"
    tenant_path = (Build.service, Service.project)


class DeploymentRepository(TenantRepository[Deployment]):
    model = Deployment
    noun = "Deployment"
    tenant_path = (Deployment.service, Service.project)

    async def latest_per_service(
        self, project_id: uuid.UUID, environment_id: uuid.UUID
    ) -> list[ServiceDeployments]:
        """For every service of the project, oldest service first: its newest deployment in
        the environment and its newest ACTIVE one. One query, whatever the number of services
        (what the project canvas shows), instead of one list per service.

        Deployments are ranked per service (newest first) and per service and status; a row
        is kept when it is the newest of its service, or the newest ACTIVE one.
        """
        newest_first = (Deployment.created_at.desc(), Deployment.id.desc())
        ranked = (
            select(
                Deployment.id.label("deployment_id"),
                Deployment.service_id.label("service_id"),
                Deployment.status.label("status"),
                func.row_number()
                .over(partition_by=Deployment.service_id, order_by=newest_first)
                .label("newest"),
                func.row_number()
                .over(
                    partition_by=(Deployment.service_id, Deployment.status), order_by=newest_first
                )
                .label("newest_of_status"),
            )
            .where(Deployment.environment_id == environment_id)
            .subquery()
        )
        wanted = and_(
            ranked.c.service_id == Service.id,
            or_(
                ranked.c.newest == 1,
                and_(ranked.c.status == DeploymentStatus.ACTIVE, ranked.c.newest_of_status == 1),
            ),
        )
        query = (
            select(Service.id, Deployment)
            .join(Project, Project.id == Service.project_id)
            .outerjoin(ranked, wanted)
            .outerjoin(Deployment, Deployment.id == ranked.c.deployment_id)
            .where(Service.project_id == project_id, Project.tenant_id.in_(self.tenant_ids))
            .order_by(Service.created_at, Service.id, ranked.c.newest)
        )
        rows: dict[uuid.UUID, list[Deployment]] = {}
        for service_id, deployment in (await self.session.execute(query)).all():
            found = rows.setdefault(service_id, [])
            if deployment is not None:
                found.append(deployment)
        return [
            ServiceDeployments(
                service_id=service_id,
                latest=found[0] if found else None,
                active=next((d for d in found if d.status == DeploymentStatus.ACTIVE), None),
            )
            for service_id, found in rows.items()
        ]


class WebhookRepository(TenantRepository[Webhook]):
    model = Webhook
    noun = "Webhook"
    tenant_path = (Webhook.service, Service.project)
