"""Pages serialised straight from rows write the very bytes the response model would."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from pydantic import TypeAdapter

from caboose.schemas.common import PageOf
from caboose.schemas.projects import PROJECT_PAGE_JSON, ProjectPublic, ProjectRow


def _row(index: int, *, microsecond: int) -> ProjectRow:
    return {
        "id": uuid.uuid4(),
        "created_at": datetime(2026, 11, 21, 23, 5, index % 60, microsecond, tzinfo=UTC),
        "updated_at": datetime(2026, 11, 22, 0, 0, 0, 0, tzinfo=UTC),
        "workspace_id": uuid.uuid4(),
        "name": f"p-{index:03d}",
        "description": 'Ünïcode, "quotes", \\ and a\nline break' if index % 2 else "",
        "preview_environments": bool(index % 3),
    }


def test_project_rows_serialise_like_the_response_model() -> None:
    rows = [_row(i, microsecond=(i * 37_123) % 1_000_000) for i in range(50)]
    rows.append(_row(51, microsecond=0))
    page = {"items": rows, "total": 120, "skip": 20, "limit": 51, "has_more": True}
    model = PageOf[ProjectPublic](
        items=[ProjectPublic.model_validate(row) for row in rows],
        total=120,
        skip=20,
        limit=51,
        has_more=True,
    )
    # What FastAPI does with a response_model: dump_json through the model's TypeAdapter.
    expected = TypeAdapter(PageOf[ProjectPublic]).dump_json(model, by_alias=True)
    assert PROJECT_PAGE_JSON.dump_json(page) == expected  # type: ignore[arg-type]


def test_project_row_has_the_public_fields_in_order() -> None:
    assert list(ProjectRow.__annotations__) == list(ProjectPublic.model_fields)
