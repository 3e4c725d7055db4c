"""Workspaces (tenants), who belongs to them, and invitations to join."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from caboose.models.base import Base, TimestampMixin, UUIDPrimaryKeyMixin
from caboose.models.enums import Role

if TYPE_CHECKING:
    from caboose.models.project import Project
    from caboose.models.user import User


class Tenant(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """A workspace: the unit of ownership and isolation. Shown to users as "workspace"."""

    __tablename__ = "tenant"

    name: Mapped[str] = mapped_column(String(100))
    slug: Mapped[str] = mapped_column(String(63), unique=True)
    is_personal: Mapped[bool] = mapped_column(default=False)

    members: Mapped[list[TeamMember]] = relationship(
        back_populates="tenant", cascade="all, delete-orphan", passive_deletes=True
    )
    projects: Mapped[list[Project]] = relationship(
        back_populates="tenant", cascade="all, delete-orphan", passive_deletes=True
    )


class TeamMember(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    __tablename__ = "team_member"
    __table_args__ = (UniqueConstraint("tenant_id", "user_id"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("user.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[Role] = mapped_column(String(16), default=Role.MEMBER)

    tenant: Mapped[Tenant] = relationship(back_populates="members")
    user: Mapped[User] = relationship(back_populates="memberships")


class Invitation(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    """An emailed, single-use, expiring invitation to join a workspace with a role."""

    __tablename__ = "invitation"

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenant.id", ondelete="CASCADE"), index=True
    )
    email: Mapped[str] = mapped_column(String(320), index=True)
    role: Mapped[Role] = mapped_column(String(16), default=Role.MEMBER)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    invited_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("user.id", ondelete="SET NULL"), index=True
    )
    expires_at: Mapped[datetime]
    accepted_at: Mapped[datetime | None]

    tenant: Mapped[Tenant] = relationship()
