"""``BaseRepository[Model]``: the queries every noun needs, written once.

Repositories build queries and ``flush``; they never commit (the request's session dependency
does, or the Celery task that opened the session). Integrity errors become ``ConflictError`` so a
duplicate name is a 409, not a 500.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Literal, TypeVar

from sqlalchemy import RowMapping, Select, func, inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from caboose.core.errors import ConflictError, not_found
from caboose.models.base import Base

ModelT = TypeVar("ModelT", bound=Base)
ItemT = TypeVar("ItemT")

MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100

SortOrder = Literal["asc", "desc"]


@dataclass(frozen=True, slots=True)
class Pagination:
    """``skip``/``limit`` as clients send them, clamped: 1 ≤ limit ≤ 1000, skip ≥ 0."""

    skip: int = 0
    limit: int = DEFAULT_PAGE_SIZE

    def __post_init__(self) -> None:
        object.__setattr__(self, "skip", max(0, self.skip))
        object.__setattr__(self, "limit", min(max(1, self.limit), MAX_PAGE_SIZE))


@dataclass(frozen=True, slots=True)
class Sorting:
    sort_by: str | None = None
    sort_order: SortOrder = "desc"


@dataclass(frozen=True, slots=True)
class Page(Generic[ItemT]):
    items: list[ItemT]
    total: int
    skip: int
    limit: int

    @property
    def has_more(self) -> bool:
        return self.skip + len(self.items) < self.total


class BaseRepository(Generic[ModelT]):
    """CRUD and listing for one model.

    Subclasses set ``model``; ``eager_load`` names relationships loaded with every query
    (``selectinload``, so an API response never lazy-loads in an async session);
    ``noun`` is how the model is named in error messages.
    """

    model: ClassVar[type[Any]]
    noun: ClassVar[str] = "Object"
    eager_load: ClassVar[tuple[str, ...]] = ()
    default_sort: ClassVar[str] = "created_at"
    # Columns a client may sort by; None: any column of the model.
    sortable: ClassVar[frozenset[str] | None] = None

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # Query building -------------------------------------------------------------------------

    def _select(self) -> Select[Any]:
        """The query every read starts from. Tenant repositories narrow it to their tenant."""
        query: Select[Any] = select(self.model)
        for name in self.eager_load:
            query = query.options(selectinload(getattr(self.model, name)))
        return query

    def _column(self, name: str) -> Any:
        columns = inspect(self.model).columns
        if name not in columns:
            raise ValueError(f"{self.model.__name__} has no column {name!r}")
        return getattr(self.model, name)

    def _filtered(self, query: Select[Any], filters: Mapping[str, Any] | None) -> Select[Any]:
        for name, value in (filters or {}).items():
            column = self._column(name)
            if value is None:
                query = query.where(column.is_(None))
            elif isinstance(value, list | tuple | set | frozenset):
                query = query.where(column.in_(list(value)))
            else:
                query = query.where(column == value)
        return query

    def _sort_column(self, sorting: Sorting) -> Any:
        """The requested column if it is sortable, else the default: never an error, never
        an arbitrary attribute (sort_by comes straight from the query string)."""
        columns = inspect(self.model).columns
        allowed = self.sortable if self.sortable is not None else frozenset(columns.keys())
        requested = sorting.sort_by
        name = requested if requested is not None and requested in allowed else self.default_sort
        if name not in columns:
            name = "id"
        column = getattr(self.model, name)
        return column.asc() if sorting.sort_order == "asc" else column.desc()

    # Reads ----------------------------------------------------------------------------------

    async def get(self, id: uuid.UUID) -> ModelT | None:
        query = self._select().where(self.model.id == id)
        result = await self.session.execute(query)
        obj: ModelT | None = result.scalars().first()
        return obj

    async def get_or_raise(self, id: uuid.UUID) -> ModelT:
        obj = await self.get(id)
        if obj is None:
            raise not_found(self.noun, id)
        return obj

    async def find_one(self, **filters: Any) -> ModelT | None:
        result = await self.session.execute(self._filtered(self._select(), filters).limit(1))
        obj: ModelT | None = result.scalars().first()
        return obj

    async def list(
        self,
        *,
        filters: Mapping[str, Any] | None = None,
        pagination: Pagination | None = None,
        sorting: Sorting | None = None,
    ) -> Page[ModelT]:
        pagination = pagination or Pagination()
        sorting = sorting or Sorting()
        query = self._filtered(self._select(), filters)
        total = await self.session.scalar(
            select(func.count()).select_from(query.order_by(None).subquery())
        )
        # `id` breaks ties so pages never overlap or skip rows with equal sort keys.
        page_query = (
            query.order_by(self._sort_column(sorting), self.model.id.asc())
            .offset(pagination.skip)
            .limit(pagination.limit)
        )
        items = list((await self.session.execute(page_query)).scalars().all())
        return Page(
            items=items, total=int(total or 0), skip=pagination.skip, limit=pagination.limit
        )

    async def list_rows(
        self,
        columns: Sequence[Any],
        *,
        filters: Mapping[str, Any] | None = None,
        pagination: Pagination | None = None,
        sorting: Sorting | None = None,
    ) -> Page[RowMapping]:
        """:meth:`list` as plain rows of ``columns``, the total in the same query (a window
        count): no ORM instances, one round trip. For read-only pages of models without eager
        loads."""
        if self.eager_load:
            raise TypeError(f"{type(self).__name__} eager-loads relationships: use list()")
        pagination = pagination or Pagination()
        sorting = sorting or Sorting()
        total_column = func.count().over().label("_total")
        query = (
            self._filtered(self._select(), filters)
            .with_only_columns(*columns, total_column)
            .order_by(self._sort_column(sorting), self.model.id.asc())
            .offset(pagination.skip)
            .limit(pagination.limit)
        )
        rows = (await self.session.execute(query)).mappings().all()
        if rows:
            total = int(rows[0]["_total"])
        elif pagination.skip:
            total = await self.count(**(filters or {}))  # past the end: the count alone
        else:
            total = 0
        return Page(items=list(rows), total=total, skip=pagination.skip, limit=pagination.limit)

    async def list_all(self, **filters: Any) -> Sequence[ModelT]:
        result = await self.session.execute(self._filtered(self._select(), filters))
        objects: Sequence[ModelT] = result.scalars().all()
        return objects

    async def exists(self, **filters: Any) -> bool:
        query = self._filtered(self._select(), filters).limit(1)
        result = await self.session.execute(select(query.exists()))
        return bool(result.scalar())

    async def count(self, **filters: Any) -> int:
        query = self._filtered(self._select(), filters)
        total = await self.session.scalar(
            select(func.count()).select_from(query.order_by(None).subquery())
        )
        return int(total or 0)

    # Writes ---------------------------------------------------------------------------------

    async def create(self, **values: Any) -> ModelT:
        obj: ModelT = self.model(**values)
        await self._flush(f"{self.noun} already exists", adding=obj)
        return obj

    async def update(self, obj: ModelT, **values: Any) -> ModelT:
        columns = inspect(self.model).columns
        for name, value in values.items():
            if name not in columns or name in {"id", "created_at"}:
                raise ValueError(f"{self.model.__name__}.{name} cannot be updated")
            setattr(obj, name, value)
        await self._flush(f"{self.noun} conflicts with an existing one")
        return obj

    async def delete(self, obj: ModelT) -> None:
        await self.session.delete(obj)
        await self.session.flush()

    async def _flush(self, conflict_message: str, *, adding: Base | None = None) -> None:
        try:
            # A savepoint: a unique violation rolls back only this write (and forgets the object
            # that caused it), not the whole request's work.
            async with self.session.begin_nested():
                if adding is not None:
                    self.session.add(adding)
                await self.session.flush()
        except IntegrityError as exc:
            raise ConflictError(conflict_message) from exc
