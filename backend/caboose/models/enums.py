"""Enumerations stored as strings (VARCHAR + CHECK-free): adding a value needs no migration."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    MEMBER = "member"


class DeploymentStatus(StrEnum):
    QUEUED = "QUEUED"
    BUILDING = "BUILDING"
    DEPLOYING = "DEPLOYING"
    ACTIVE = "ACTIVE"
    FAILED = "FAILED"
    CRASHED = "CRASHED"
    CANCELLED = "CANCELLED"
    REMOVED = "REMOVED"

    @property
    def is_final(self) -> bool:
        return self in FINAL_DEPLOYMENT_STATUSES


FINAL_DEPLOYMENT_STATUSES = frozenset(
    {
        DeploymentStatus.FAILED,
        DeploymentStatus.CRASHED,
        DeploymentStatus.CANCELLED,
        DeploymentStatus.REMOVED,
    }
)
IN_PROGRESS_DEPLOYMENT_STATUSES = frozenset(
    {DeploymentStatus.QUEUED, DeploymentStatus.BUILDING, DeploymentStatus.DEPLOYING}
)


class BuildStatus(StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


class SourceType(StrEnum):
    GIT = "git"
    UPLOAD = "upload"


class DeploymentTrigger(StrEnum):
    MANUAL = "manual"
    UPLOAD = "upload"
    WEBHOOK = "webhook"
    REDEPLOY = "redeploy"
    ROLLBACK = "rollback"
    RESTART = "restart"
    PREVIEW = "preview"


class RestartPolicy(StrEnum):
    ON_FAILURE = "ON_FAILURE"
    ALWAYS = "ALWAYS"
    NEVER = "NEVER"


class DomainKind(StrEnum):
    GENERATED = "generated"
    CUSTOM = "custom"


class WebhookProvider(StrEnum):
    GITHUB = "github"
    GITLAB = "gitlab"
