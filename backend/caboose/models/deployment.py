"""Builds (immutable artifacts), deployments (a build running in an environment) and the
history of each deployment's status."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from caboose.models.base import Base, TimestampMixin, UUIDPrimaryKeyMixin
from caboose.models.enums import BuildStatus, DeploymentStatus, DeploymentTrigger, SourceType

if TYPE_CHECKING:
    from caboose.models.project import Environment
    from caboose.models.service import Service


class Build(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    __tablename__ = "build"
    __table_args__ = (Index(None, "service_id", "created_at"),)

    service_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("service.id", ondelete="CASCADE"))
    status: Mapped[BuildStatus] = mapped_column(String(16), default=BuildStatus.QUEUED)
    source_type: Mapped[SourceType] = mapped_column(String(16))
    # Uploaded tarballs are kept until built; git sources are cloned at `commit_sha`.
    source_path: Mapped[str | None] = mapped_column(String(1000))
    branch: Mapped[str | None] = mapped_column(String(255))
    commit_sha: Mapped[str | None] = mapped_column(String(64))
    commit_message: Mapped[str | None] = mapped_column(Text)
    commit_author: Mapped[str | None] = mapped_column(String(255))
    provider: Mapped[str | None] = mapped_column(String(32))
    plan: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    cache_key: Mapped[str | None] = mapped_column(String(128))
    artifact_path: Mapped[str | None] = mapped_column(String(1000))
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]

    service: Mapped[Service] = relationship()


class Deployment(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    __tablename__ = "deployment"
    __table_args__ = (
        Index(None, "service_id", "environment_id", "created_at"),
        Index(None, "status"),
    )

    service_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("service.id", ondelete="CASCADE"))
    environment_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("environment.id", ondelete="CASCADE"), index=True
    )
    # Builds outlive nothing they belong to, but GC may collect an old one: keep the history.
    build_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("build.id", ondelete="SET NULL"), index=True
    )
    status: Mapped[DeploymentStatus] = mapped_column(String(16), default=DeploymentStatus.QUEUED)
    status_reason: Mapped[str | None] = mapped_column(Text)
    trigger: Mapped[DeploymentTrigger] = mapped_column(String(16), default=DeploymentTrigger.MANUAL)
    triggered_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("user.id", ondelete="SET NULL"), index=True
    )
    # For redeploy/rollback/restart: the deployment this one was made from.
    source_deployment_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("deployment.id", ondelete="SET NULL"), index=True
    )
    commit_sha: Mapped[str | None] = mapped_column(String(64))
    commit_message: Mapped[str | None] = mapped_column(Text)
    commit_author: Mapped[str | None] = mapped_column(String(255))
    url: Mapped[str | None] = mapped_column(String(500))
    # [{index, port, status, restarts, pid}] as last observed.
    replicas: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    task_id: Mapped[str | None] = mapped_column(String(64))
    # Refreshed by the worker while it works; the reaper ends deployments whose worker went quiet.
    heartbeat_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]

    service: Mapped[Service] = relationship()
    environment: Mapped[Environment] = relationship()
    build: Mapped[Build | None] = relationship()
    events: Mapped[list[DeploymentEvent]] = relationship(
        back_populates="deployment",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="DeploymentEvent.created_at",
    )


class DeploymentEvent(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """One status transition of a deployment, kept for its history."""

    __tablename__ = "deployment_event"
    __table_args__ = (Index(None, "deployment_id", "created_at"),)

    deployment_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("deployment.id", ondelete="CASCADE")
    )
    status: Mapped[DeploymentStatus] = mapped_column(String(16))
    message: Mapped[str | None] = mapped_column(Text)

    deployment: Mapped[Deployment] = relationship(back_populates="events")
