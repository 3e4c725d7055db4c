"""Deployments and domains: what the API accepts and returns (API.md, "Deployments")."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from caboose.models import DeploymentStatus, DeploymentTrigger, DomainKind
from caboose.schemas.common import PublicModel, StrictModel, TimestampedPublic

__all__ = [
    "DeploymentCreate",
    "DeploymentPublic",
    "DomainCreate",
    "DomainPublic",
    "LatestDeployment",
    "LatestDeployments",
    "ReplicaPublic",
]

CommitSha = Annotated[
    str,
    Field(
        pattern=r"^[0-9a-fA-F]{4,40}$",
        description="A commit of the service's branch (full or abbreviated sha).",
    ),
]


class DeploymentCreate(StrictModel):
    """``POST /services/{id}/deployments``: deploy the service's repository."""

    environment_id: uuid.UUID
    commit_sha: CommitSha | None = Field(
        default=None, description="Default: the head of the service's branch."
    )

    @field_validator("commit_sha")
    @classmethod
    def _lower(cls, value: str | None) -> str | None:
        return value.lower() if value is not None else None


class ReplicaPublic(BaseModel):
    """One replica as last observed: ``status`` is ``online``, ``launching``, ``stopped``,
    ``errored`` (PM2 gave up restarting it) or ``missing``."""

    model_config = ConfigDict(extra="ignore")

    index: int
    port: int | None = None
    status: str
    restarts: int = 0
    pid: int | None = None


class DeploymentPublic(TimestampedPublic):
    """A deployment. ``url`` is the public URL once routed; ``finished_at`` is when its
    deploy finished (it became ACTIVE, or failed, or was cancelled)."""

    service_id: uuid.UUID
    environment_id: uuid.UUID
    build_id: uuid.UUID | None
    status: DeploymentStatus
    status_reason: str | None
    started_at: datetime | None
    finished_at: datetime | None
    commit_sha: str | None
    commit_message: str | None
    commit_author: str | None
    url: str | None
    replicas: list[ReplicaPublic]
    trigger: DeploymentTrigger
    source_deployment_id: uuid.UUID | None

    @field_validator("replicas", mode="before")
    @classmethod
    def _none_is_empty(cls, value: object) -> object:
        return value if value is not None else []


class LatestDeployment(BaseModel):
    """One service on the project canvas: its newest deployment in the environment (whatever
    its status) and the one serving traffic now; either is null when there is none."""

    service_id: uuid.UUID
    latest: DeploymentPublic | None
    active: DeploymentPublic | None


class LatestDeployments(BaseModel):
    """``GET /projects/{id}/deployments/latest``: one entry per service of the project, in the
    order of the project's ``services``."""

    environment_id: uuid.UUID
    items: list[LatestDeployment]


class DomainCreate(StrictModel):
    """``POST /services/{id}/domains``: a custom hostname, or (no ``hostname``) the
    service-environment's generated one."""

    environment_id: uuid.UUID
    hostname: str | None = Field(
        default=None,
        max_length=253,
        description="A DNS name (punycode for international names); omit for the generated one.",
    )


class DomainPublic(PublicModel):
    id: uuid.UUID
    service_id: uuid.UUID
    environment_id: uuid.UUID
    hostname: str
    kind: DomainKind
    status: str
    created_at: datetime
    updated_at: datetime
    url: str | None = Field(default=None, description="How the hostname is reached.")
