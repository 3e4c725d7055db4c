"""Services and what hangs off them: variables, domains, webhooks."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from caboose.models.base import Base, TimestampMixin, UUIDPrimaryKeyMixin
from caboose.models.enums import DomainKind, RestartPolicy, WebhookProvider

if TYPE_CHECKING:
    from caboose.models.project import Environment, Project


class Service(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """Something that runs: a Git repository (+ branch + root dir) or `caboose up` uploads.

    The deploy settings here are the dashboard's; config-as-code in the repository
    (railway.json / railway.toml) fills whatever is left unset here.
    """

    __tablename__ = "service"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(63))
    repo_url: Mapped[str | None] = mapped_column(String(500))
    branch: Mapped[str] = mapped_column(String(255), default="main")
    root_directory: Mapped[str] = mapped_column(String(500), default="")
    build_command: Mapped[str | None] = mapped_column(Text)
    start_command: Mapped[str | None] = mapped_column(Text)
    pre_deploy_command: Mapped[str | None] = mapped_column(Text)
    healthcheck_path: Mapped[str | None] = mapped_column(String(500))
    healthcheck_timeout: Mapped[int | None]
    num_replicas: Mapped[int | None]
    restart_policy_type: Mapped[RestartPolicy | None] = mapped_column(String(16))
    restart_policy_max_retries: Mapped[int | None]
    memory_limit_mb: Mapped[int | None]
    cron_schedule: Mapped[str | None] = mapped_column(String(100))
    watch_patterns: Mapped[list[str] | None] = mapped_column(JSON)
    overlap_seconds: Mapped[int | None]
    draining_seconds: Mapped[int | None]

    project: Mapped[Project] = relationship(back_populates="services")
    variables: Mapped[list[Variable]] = relationship(
        back_populates="service", cascade="all, delete-orphan", passive_deletes=True
    )
    domains: Mapped[list[Domain]] = relationship(
        back_populates="service", cascade="all, delete-orphan", passive_deletes=True
    )
    webhooks: Mapped[list[Webhook]] = relationship(
        back_populates="service", cascade="all, delete-orphan", passive_deletes=True
    )


class Variable(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """One variable of a service in one environment. The value is never stored in clear."""

    __tablename__ = "variable"
    __table_args__ = (UniqueConstraint("service_id", "environment_id", "key"),)

    service_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("service.id", ondelete="CASCADE"))
    environment_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("environment.id", ondelete="CASCADE"), index=True
    )
    key: Mapped[str] = mapped_column(String(255))
    # AES-256-GCM envelope `encrypted:v1:<kid>:<b64>`, row-bound through associated data.
    value_encrypted: Mapped[str] = mapped_column(Text)
    # Sealed values are used at deploy time and never readable through the API again.
    is_sealed: Mapped[bool] = mapped_column(default=False)

    service: Mapped[Service] = relationship(back_populates="variables")


class SharedVariable(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """A variable of an environment, referenced from services as ``${{shared.KEY}}``."""

    __tablename__ = "shared_variable"
    __table_args__ = (UniqueConstraint("environment_id", "key"),)

    environment_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("environment.id", ondelete="CASCADE")
    )
    key: Mapped[str] = mapped_column(String(255))
    value_encrypted: Mapped[str] = mapped_column(Text)
    is_sealed: Mapped[bool] = mapped_column(default=False)

    environment: Mapped[Environment] = relationship(back_populates="shared_variables")


class Domain(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """A hostname routed to a service in an environment. Hostnames are unique instance-wide."""

    __tablename__ = "domain"

    service_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("service.id", ondelete="CASCADE"), index=True
    )
    environment_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("environment.id", ondelete="CASCADE"), index=True
    )
    hostname: Mapped[str] = mapped_column(String(253), unique=True)
    kind: Mapped[DomainKind] = mapped_column(String(16), default=DomainKind.GENERATED)
    target_port: Mapped[int | None]
    status: Mapped[str] = mapped_column(String(32), default="pending")

    service: Mapped[Service] = relationship(back_populates="domains")


class Webhook(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """An inbound GitHub/GitLab webhook of a service, with its own secret."""

    __tablename__ = "webhook"

    service_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("service.id", ondelete="CASCADE"), index=True
    )
    provider: Mapped[WebhookProvider] = mapped_column(String(16))
    secret_encrypted: Mapped[str] = mapped_column(Text)
    is_active: Mapped[bool] = mapped_column(default=True)
    last_delivery_at: Mapped[datetime | None]
    last_delivery_status: Mapped[str | None] = mapped_column(String(64))
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    service: Mapped[Service] = relationship(back_populates="webhooks")
