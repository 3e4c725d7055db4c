"""Every model, imported here so `Base.metadata` knows all tables (Alembic reads it)."""

from caboose.models.base import Base, TimestampMixin, UUIDPrimaryKeyMixin
from caboose.models.deployment import Build, Deployment, DeploymentEvent
from caboose.models.enums import (
    BuildStatus,
    DeploymentStatus,
    DeploymentTrigger,
    DomainKind,
    RestartPolicy,
    Role,
    SourceType,
    WebhookProvider,
)
from caboose.models.project import Environment, Project
from caboose.models.service import Domain, Service, SharedVariable, Variable, Webhook
from caboose.models.tenant import Invitation, TeamMember, Tenant
from caboose.models.user import ApiToken, User

__all__ = [
    "ApiToken",
    "Base",
    "Build",
    "BuildStatus",
    "Deployment",
    "DeploymentEvent",
    "DeploymentStatus",
    "DeploymentTrigger",
    "Domain",
    "DomainKind",
    "Environment",
    "Invitation",
    "Project",
    "RestartPolicy",
    "Role",
    "Service",
    "SharedVariable",
    "SourceType",
    "TeamMember",
    "Tenant",
    "TimestampMixin",
    "UUIDPrimaryKeyMixin",
    "User",
    "Variable",
    "Webhook",
    "WebhookProvider",
]
