"""Projects and their environments (production, staging, pr-42 …)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from caboose.models.base import Base, TimestampMixin, UUIDPrimaryKeyMixin

if TYPE_CHECKING:
    from caboose.models.service import Service, SharedVariable
    from caboose.models.tenant import Tenant


class Project(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    __tablename__ = "project"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(63))
    description: Mapped[str] = mapped_column(Text, default="")
    # A pull request opened against the repository gets its own `pr-<n>` environment.
    preview_environments: Mapped[bool] = mapped_column(default=False)

    tenant: Mapped[Tenant] = relationship(back_populates="projects")
    environments: Mapped[list[Environment]] = relationship(
        back_populates="project", cascade="all, delete-orphan", passive_deletes=True
    )
    services: Mapped[list[Service]] = relationship(
        back_populates="project", cascade="all, delete-orphan", passive_deletes=True
    )


class Environment(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    __tablename__ = "environment"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("project.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(63))
    is_preview: Mapped[bool] = mapped_column(default=False)
    pr_number: Mapped[int | None]

    project: Mapped[Project] = relationship(back_populates="environments")
    shared_variables: Mapped[list[SharedVariable]] = relationship(
        back_populates="environment", cascade="all, delete-orphan", passive_deletes=True
    )
