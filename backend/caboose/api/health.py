"""Liveness and readiness, outside ``/api/v1`` so orchestrators and Traefik can probe them."""

from __future__ import annotations

import asyncio
from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text

from caboose.api.deps import DatabaseDep, RedisDep

router = APIRouter(tags=["health"])

_CHECK_TIMEOUT_SECONDS = 2.0


class HealthPublic(BaseModel):
    status: Literal["healthy"]


class ReadinessPublic(BaseModel):
    status: Literal["ready", "unavailable"]
    checks: dict[str, str]


@router.get("/health", response_model=HealthPublic)
async def health() -> HealthPublic:
    """The process is up and serving. Says nothing about its dependencies (see ``/ready``)."""
    return HealthPublic(status="healthy")


@router.get(
    "/ready",
    response_model=ReadinessPublic,
    responses={503: {"model": ReadinessPublic, "description": "A dependency does not answer"}},
)
async def ready(database: DatabaseDep, redis: RedisDep) -> JSONResponse:
    """200 when the database and Redis both answer; 503 naming what failed otherwise."""

    async def check_database() -> str:
        async with database.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        return "ok"

    async def check_redis() -> str:
        await redis.ping()
        return "ok"

    checks: dict[str, str] = {}
    for name, check in (("database", check_database), ("redis", check_redis)):
        try:
            checks[name] = await asyncio.wait_for(check(), _CHECK_TIMEOUT_SECONDS)
        except Exception as exc:  # any failure of a dependency is the answer, not an error
            checks[name] = f"error: {type(exc).__name__}: {str(exc)[:200]}"
    is_ready = all(value == "ok" for value in checks.values())
    body = ReadinessPublic(status="ready" if is_ready else "unavailable", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if is_ready else 503)
