"""``TenantRepository[Model]``: every query scoped to the workspaces the caller may see.

A model either carries ``tenant_id`` itself (Project) or reaches it through relationships
(Service → Project → Tenant; Deployment → Service → Project → Tenant). ``tenant_path`` lists
those relationships; the scope is applied to every read, so an id from another workspace is
simply not found — a 404, never a 403 that would confirm it exists.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any, ClassVar

from sqlalchemy import Select, false
from sqlalchemy.ext.asyncio import AsyncSession

from caboose.repositories.base import BaseRepository, ModelT


class TenantRepository(BaseRepository[ModelT]):
    # Relationship attributes leading from the model to an entity with `tenant_id`, in order.
    tenant_path: ClassVar[tuple[Any, ...]] = ()

    def __init__(self, session: AsyncSession, tenant_ids: uuid.UUID | Iterable[uuid.UUID]) -> None:
        super().__init__(session)
        ids = [tenant_ids] if isinstance(tenant_ids, uuid.UUID) else list(tenant_ids)
        self.tenant_ids: frozenset[uuid.UUID] = frozenset(ids)

    @classmethod
    def _tenant_owner(cls) -> type[Any]:
        if not cls.tenant_path:
            return cls.model
        owner: type[Any] = cls.tenant_path[-1].property.mapper.class_
        return owner

    def _select(self) -> Select[Any]:
        query = super()._select()
        for relationship in self.tenant_path:
            query = query.join(relationship)
        owner = self._tenant_owner()
        if not self.tenant_ids:
            return query.where(false())  # no workspace: nothing is visible
        return query.where(owner.tenant_id.in_(self.tenant_ids))

    async def create(self, **values: Any) -> ModelT:
        """Create a row; for direct-tenant models the tenant must be one of the scope's."""
        if not self.tenant_path:
            tenant_id = values.get("tenant_id")
            if tenant_id not in self.tenant_ids:
                raise ValueError("tenant_id outside this repository's scope")
        return await super().create(**values)
