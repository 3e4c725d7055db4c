"""Helpers shared by the workspace, member, project, environment and service API tests."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from caboose.config import Settings
from caboose.core.api_tokens import generate_api_token, hash_api_token, token_prefix
from caboose.core.keys import platform_keys
from caboose.models import ApiToken, Project, User
from tests.factories import persist

API = "/api/v1"


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """An RFC 7807 answer with ``status``; returns its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


def assert_invalid(response: httpx.Response, *fields: str) -> dict[str, Any]:
    """A 422 whose ``errors`` name each of ``fields`` (or an item of it: ``watch_patterns.0``)."""
    body = assert_problem(response, 422)
    named = {error["field"] for error in body["errors"]}
    for field in fields:
        assert any(n == field or n.startswith(f"{field}.") for n in named), (field, body["errors"])
    return body


async def fresh(session: AsyncSession, model: type[Any], id: uuid.UUID | str) -> Any:
    """The row as stored now (not the test session's cached copy), or None if it is gone."""
    return await session.get(model, uuid.UUID(str(id)), populate_existing=True)


async def count(session: AsyncSession, model: type[Any], **where: Any) -> int:
    query = select(func.count()).select_from(model)
    for name, value in where.items():
        query = query.where(getattr(model, name) == value)
    return int(await session.scalar(query) or 0)


async def project_token(
    session: AsyncSession, settings: Settings, user: User, project: Project
) -> dict[str, str]:
    """Headers of an API token of ``user`` limited to ``project``."""
    secret = generate_api_token()
    token = ApiToken(
        user_id=user.id,
        name="ci",
        token_hash=hash_api_token(secret, secret=platform_keys(settings).token_hmac_secret),
        prefix=token_prefix(secret),
        project_id=project.id,
    )
    await persist(session, token)
    return {"Authorization": f"Bearer {secret}"}
