"""Every error leaves the API as RFC 7807 problem+json, with the request id and no traceback."""

from __future__ import annotations

import logging

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field

from caboose.core.errors import (
    AuthenticationError,
    AuthorizationError,
    BadRequestError,
    ConflictError,
    InternalError,
    NotFoundError,
    RateLimitedError,
    ValidationError,
)
from caboose.main import api_redis
from tests.conftest import Caller

PROBLEM_KEYS = {"type", "title", "status", "detail", "instance", "timestamp", "request_id"}


class Widget(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=10)
    size: int = Field(ge=0)


@pytest.fixture
def error_app(app: FastAPI) -> FastAPI:
    errors = {
        "not-found": NotFoundError("Widget 1 was not found"),
        "validation": ValidationError("bad"),
        "authentication": AuthenticationError(),
        "authorization": AuthorizationError(),
        "conflict": ConflictError("Widget already exists"),
        "bad-request": BadRequestError("nope"),
        "rate-limited": RateLimitedError("slow down", retry_after=42),
        "internal": InternalError(),
    }

    @app.get("/_test/raise/{kind}")
    async def raise_error(kind: str) -> None:
        raise errors[kind]

    @app.post("/_test/widgets")
    async def create_widget(widget: Widget) -> Widget:
        return widget

    @app.get("/_test/crash")
    async def crash() -> None:
        raise RuntimeError("secret internals: password=hunter2")

    return app


def assert_problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, object] = response.json()
    assert body.keys() >= PROBLEM_KEYS
    assert body["status"] == status
    assert body["request_id"] == response.headers["x-request-id"]
    assert str(body["type"]).startswith("https://")
    return body


@pytest.mark.parametrize(
    ("kind", "status", "title"),
    [
        ("not-found", 404, "Not found"),
        ("validation", 422, "Request validation failed"),
        ("authentication", 401, "Authentication required"),
        ("authorization", 403, "Forbidden"),
        ("conflict", 409, "Conflict"),
        ("bad-request", 400, "Bad request"),
        ("rate-limited", 429, "Too many requests"),
        ("internal", 500, "Internal server error"),
    ],
)
async def test_app_errors_render_as_problems(
    error_app: FastAPI, client: httpx.AsyncClient, kind: str, status: int, title: str
) -> None:
    response = await client.get(f"/_test/raise/{kind}")
    body = assert_problem(response, status)
    assert body["title"] == title
    assert body["instance"] == f"/_test/raise/{kind}"


async def test_authentication_error_names_the_scheme(
    error_app: FastAPI, client: httpx.AsyncClient
) -> None:
    response = await client.get("/_test/raise/authentication")
    assert response.headers["www-authenticate"] == "Bearer"


async def test_rate_limited_says_when_to_retry(
    error_app: FastAPI, client: httpx.AsyncClient
) -> None:
    response = await client.get("/_test/raise/rate-limited")
    body = assert_problem(response, 429)
    assert response.headers["retry-after"] == "42"
    assert body["retry_after"] == 42


async def test_request_validation_lists_each_field(
    error_app: FastAPI, client: httpx.AsyncClient
) -> None:
    response = await client.post(
        "/_test/widgets", json={"name": "", "size": "big", "colour": "red"}
    )
    body = assert_problem(response, 422)
    errors = body["errors"]
    assert isinstance(errors, list)
    by_field = {e["field"]: e for e in errors}
    assert set(by_field) == {"name", "size", "colour"}
    assert by_field["name"]["code"] == "string_too_short"
    assert by_field["size"]["code"] == "int_parsing"
    assert by_field["colour"]["code"] == "extra_forbidden"
    assert all(e["message"] for e in errors)


async def test_malformed_json_is_a_bad_request(
    error_app: FastAPI, client: httpx.AsyncClient
) -> None:
    response = await client.post(
        "/_test/widgets", content=b'{"name": "x",', headers={"content-type": "application/json"}
    )
    body = assert_problem(response, 400)
    assert "JSON" in str(body["detail"])


async def test_unknown_route_is_a_problem(client: httpx.AsyncClient) -> None:
    body = assert_problem(await client.get("/api/v1/no-such-thing"), 404)
    assert "/api/v1/no-such-thing" in str(body["detail"])


async def test_wrong_method_is_a_problem(client: httpx.AsyncClient) -> None:
    assert_problem(await client.delete("/health"), 405)


async def test_unexpected_error_never_leaks_a_traceback(
    error_app: FastAPI, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="caboose.errors"):
        response = await client.get("/_test/crash")
    body = assert_problem(response, 500)
    assert "hunter2" not in response.text
    assert "Traceback" not in response.text
    assert "RuntimeError" not in response.text
    assert body["title"] == "Internal server error"
    # ...but the operator's log has it, with the request id to find it by.
    assert any("Traceback" in (r.exc_text or "") or r.exc_info for r in caplog.records)


async def test_oversized_body_is_refused_before_parsing(
    error_app: FastAPI, client: httpx.AsyncClient
) -> None:
    big = b'{"name": "' + b"x" * 2_000_000 + b'", "size": 1}'
    response = await client.post(
        "/_test/widgets", content=big, headers={"content-type": "application/json"}
    )
    assert_problem(response, 413)


async def test_oversized_chunked_body_is_refused(
    error_app: FastAPI, client: httpx.AsyncClient
) -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        yield b'{"name": "'
        for _ in range(40):
            yield b"x" * 65536
        yield b'", "size": 1}'

    response = await client.post(
        "/_test/widgets", content=chunks(), headers={"content-type": "application/json"}
    )
    assert_problem(response, 413)


async def test_redis_unreachable_is_a_503_with_retry_after(
    app: FastAPI, client: httpx.AsyncClient, owner: Caller
) -> None:
    # Every authenticated request checks its session in Redis: with Redis gone (nothing listens
    # on port 1), the request may succeed in a moment, which is what 503 + Retry-After say.
    unreachable = api_redis("redis://127.0.0.1:1/0", 10)
    app.state.redis = unreachable
    try:
        response = await client.get("/api/v1/me", headers=owner.headers)
    finally:
        await unreachable.aclose()
    body = assert_problem(response, 503)
    assert response.headers["retry-after"] == "5"
    assert body["title"] == "Service unavailable"
    assert "Redis" in str(body["detail"])
    assert "127.0.0.1:1" not in response.text  # no connection details to the client
