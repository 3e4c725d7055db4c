"""Shapes every noun's schemas share: list pages, list parameters, validated names."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from fastapi import Depends, Query
from pydantic import AfterValidator, BaseModel, ConfigDict

from caboose.repositories.base import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Page, Pagination, Sorting

ItemT = TypeVar("ItemT")


class StrictModel(BaseModel):
    """Request bodies: unknown fields are an error (a typo must not be silently ignored)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class PublicModel(BaseModel):
    """Response bodies, read from ORM objects."""

    model_config = ConfigDict(from_attributes=True)


class TimestampedPublic(PublicModel):
    id: uuid.UUID
    created_at: datetime
    updated_at: datetime


class PageOf(BaseModel, Generic[ItemT]):
    """``{"items": [...], "total": n, "skip": s, "limit": l, "has_more": bool}``"""

    items: list[ItemT]
    total: int
    skip: int
    limit: int
    has_more: bool

    @classmethod
    def from_page(cls, page: Page[Any], items: list[ItemT]) -> PageOf[ItemT]:
        return cls(
            items=items, total=page.total, skip=page.skip, limit=page.limit, has_more=page.has_more
        )


class ListParams:
    """``skip``, ``limit`` (≤ 1000), ``sort_by``, ``sort_order``: the same on every list."""

    __slots__ = ("pagination", "sorting")

    def __init__(self, pagination: Pagination, sorting: Sorting) -> None:
        self.pagination = pagination
        self.sorting = sorting


async def list_params(
    skip: Annotated[int, Query(ge=0, le=1_000_000_000, description="Items to skip.")] = 0,
    limit: Annotated[
        int, Query(ge=1, le=MAX_PAGE_SIZE, description="Page size (at most 1000).")
    ] = DEFAULT_PAGE_SIZE,
    sort_by: Annotated[
        str | None,
        Query(max_length=64, description="A column; unknown ones fall back to created_at."),
    ] = None,
    sort_order: Annotated[Literal["asc", "desc"], Query()] = "desc",
) -> ListParams:
    # A coroutine, not the class itself as the dependency: FastAPI runs a class's (synchronous)
    # constructor in its thread pool, a thread hand-off on every list request.
    return ListParams(
        Pagination(skip=skip, limit=limit), Sorting(sort_by=sort_by, sort_order=sort_order)
    )


ListParamsDep = Annotated[ListParams, Depends(list_params)]

# Names ---------------------------------------------------------------------------------------

_DNS_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


def _dns_label(value: str) -> str:
    if not _DNS_LABEL.match(value):
        raise ValueError(
            "must be a DNS label: lowercase letters, digits and hyphens, 1-63 characters, "
            "starting and ending with a letter or digit"
        )
    return value


# Projects, environments and services are named like hosts: their names end up in domains.
DnsLabel = Annotated[str, AfterValidator(_dns_label)]
