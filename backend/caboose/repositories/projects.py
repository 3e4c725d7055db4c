"""Tenant-scoped repositories of the project tree."""

from __future__ import annotations

from caboose.models import (
    Build,
    Deployment,
    Domain,
    Environment,
    Project,
    Service,
    Variable,
    Webhook,
)
from caboose.repositories.tenant import TenantRepository


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


class WebhookRepository(TenantRepository[Webhook]):
    model = Webhook
    noun = "Webhook"
    tenant_path = (Webhook.service, Service.project)
