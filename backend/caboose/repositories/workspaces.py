"""Workspaces, their members and invitations.

Workspaces are scoped by id (the caller's memberships) rather than by a ``tenant_id`` column;
members and invitations carry ``tenant_id`` and use the ordinary tenant scope.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import Select, false, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from caboose.core.principals import note_principal_change
from caboose.models import Invitation, Role, TeamMember, Tenant, User
from caboose.repositories.base import BaseRepository, Sorting
from caboose.repositories.tenant import TenantRepository


class WorkspaceRepository(BaseRepository[Tenant]):
    """The workspaces a caller belongs to; any other is simply not found."""

    model = Tenant
    noun = "Workspace"

    def __init__(self, session: AsyncSession, tenant_ids: Iterable[uuid.UUID]) -> None:
        super().__init__(session)
        self.tenant_ids: frozenset[uuid.UUID] = frozenset(tenant_ids)

    def _select(self) -> Select[Any]:
        query = super()._select()
        if not self.tenant_ids:
            return query.where(false())
        return query.where(Tenant.id.in_(self.tenant_ids))

    async def delete(self, obj: Tenant) -> None:
        # The memberships go with it (ON DELETE CASCADE): its members' roles change.
        members = await self.session.scalars(
            select(TeamMember.user_id).where(TeamMember.tenant_id == obj.id)
        )
        note_principal_change(self.session, *members.all())
        await super().delete(obj)


class MemberRepository(TenantRepository[TeamMember]):
    """Members of one workspace, each with their account (email and name are shown and sorted
    on, so the user is joined in every query)."""

    model = TeamMember
    noun = "Member"
    eager_load = ("user",)
    # `joined_at` is the membership's creation; email and name are the account's.
    _user_sort_columns: ClassVar[dict[str, Any]] = {"email": User.email, "name": User.name}

    def _select(self) -> Select[Any]:
        return super()._select().join(TeamMember.user)

    def _sort_column(self, sorting: Sorting) -> Any:
        name = sorting.sort_by
        column: Any
        if name in self._user_sort_columns:
            column = self._user_sort_columns[name]
        elif name == "joined_at":
            column = TeamMember.created_at
        else:
            return super()._sort_column(sorting)
        return column.asc() if sorting.sort_order == "asc" else column.desc()

    # Every change of a membership changes that user's roles: noted for the principal cache.
    async def create(self, **values: Any) -> TeamMember:
        member = await super().create(**values)
        note_principal_change(self.session, member.user_id)
        return member

    async def update(self, obj: TeamMember, **values: Any) -> TeamMember:
        member = await super().update(obj, **values)
        note_principal_change(self.session, member.user_id)
        return member

    async def delete(self, obj: TeamMember) -> None:
        user_id = obj.user_id
        await super().delete(obj)
        note_principal_change(self.session, user_id)

    async def get_by_user(self, user_id: uuid.UUID) -> TeamMember | None:
        return await self.find_one(user_id=user_id)

    async def lock_owners(self, tenant_id: uuid.UUID) -> list[uuid.UUID]:
        """The owners' user ids, their rows locked until the transaction ends (PostgreSQL).

        Two owners demoting each other at once must not both succeed and leave the workspace
        ownerless: the second waits for the first and then counts one owner. (SQLite has one
        writer at a time, so it needs no lock.)
        """
        rows = await self.session.execute(
            select(TeamMember.user_id)
            .where(TeamMember.tenant_id == tenant_id, TeamMember.role == Role.OWNER)
            .with_for_update()
        )
        return list(rows.scalars().all())


class InvitationRepository(TenantRepository[Invitation]):
    """A workspace's invitations; with ``pending_only``, just those that can still be accepted."""

    model = Invitation
    noun = "Invitation"

    def __init__(
        self,
        session: AsyncSession,
        tenant_ids: uuid.UUID | Iterable[uuid.UUID],
        *,
        pending_only: bool = False,
    ) -> None:
        super().__init__(session, tenant_ids)
        self.pending_only = pending_only

    def _select(self) -> Select[Any]:
        query = super()._select()
        if self.pending_only:
            query = query.where(
                Invitation.accepted_at.is_(None), Invitation.expires_at > datetime.now(UTC)
            )
        return query


async def find_invitation_by_hash(session: AsyncSession, token_hash: str) -> Invitation | None:
    """An invitation by its token's hash, in any workspace: the token itself is the credential."""
    invitation: Invitation | None = await session.scalar(
        select(Invitation).where(Invitation.token_hash == token_hash)
    )
    return invitation


async def mark_invitation_accepted(
    session: AsyncSession, invitation_id: uuid.UUID, *, at: datetime
) -> bool:
    """Consume an invitation exactly once: False when another request already did.

    A conditional UPDATE rather than read-then-write, so two concurrent accepts of the same
    token cannot both succeed.
    """
    result = await session.execute(
        update(Invitation)
        .where(Invitation.id == invitation_id, Invitation.accepted_at.is_(None))
        .values(accepted_at=at, updated_at=at)
        .execution_options(synchronize_session="fetch")
    )
    return int(getattr(result, "rowcount", 0) or 0) == 1
