"""factory-boy factories for every model; ``persist`` adds and flushes them in a test session.

factory-boy's SQLAlchemy integration is synchronous, so factories only *build* objects and the
async session stores them.
"""

from __future__ import annotations

from typing import Any, TypeVar

import factory
from sqlalchemy.ext.asyncio import AsyncSession

from caboose.models import (
    Build,
    BuildStatus,
    Deployment,
    DeploymentStatus,
    Environment,
    Project,
    Role,
    Service,
    SourceType,
    TeamMember,
    Tenant,
    User,
)

T = TypeVar("T")


async def persist(session: AsyncSession, *objects: Any) -> None:
    """Store test data the way a finished request would: committed (to a savepoint of the test's
    transaction, which is rolled back when the test ends)."""
    session.add_all(objects)
    await session.commit()


class TenantFactory(factory.Factory):
    class Meta:
        model = Tenant

    name = factory.Sequence(lambda n: f"Workspace {n}")
    slug = factory.Sequence(lambda n: f"workspace-{n}")


class UserFactory(factory.Factory):
    class Meta:
        model = User

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    name = factory.Sequence(lambda n: f"User {n}")
    password_hash = None


class TeamMemberFactory(factory.Factory):
    class Meta:
        model = TeamMember

    tenant = factory.SubFactory(TenantFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.MEMBER


class ProjectFactory(factory.Factory):
    class Meta:
        model = Project

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"project-{n}")
    description = ""


class EnvironmentFactory(factory.Factory):
    class Meta:
        model = Environment

    project = factory.SubFactory(ProjectFactory)
    name = "production"


class ServiceFactory(factory.Factory):
    class Meta:
        model = Service

    project = factory.SubFactory(ProjectFactory)
    name = factory.Sequence(lambda n: f"service-{n}")
    repo_url = None
    branch = "main"
    root_directory = ""


class BuildFactory(factory.Factory):
    class Meta:
        model = Build

    service = factory.SubFactory(ServiceFactory)
    status = BuildStatus.SUCCEEDED
    source_type = SourceType.UPLOAD


class DeploymentFactory(factory.Factory):
    class Meta:
        model = Deployment

    service = factory.SubFactory(ServiceFactory)
    environment = factory.LazyAttribute(
        lambda o: EnvironmentFactory.build(project=o.service.project)
    )
    status = DeploymentStatus.QUEUED
    replicas = factory.LazyFunction(list)
