"""Every error leaves the API as RFC 7807 ``application/problem+json``.

Our own ``AppError``s, FastAPI's request validation (422, or 400 for a body that is not JSON at
all), Starlette's routing errors (unknown route 404, wrong method 405) and anything unexpected
(500, or 503 with Retry-After when Redis is unreachable or its pool stays busy: see
``middleware/request_context.py``, which catches it so the request id is kept, also for errors
raised in middleware).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

from caboose.core.errors import (
    AppError,
    AuthenticationError,
    AuthorizationError,
    BadRequestError,
    FieldError,
    InternalError,
    MethodNotAllowedError,
    NotFoundError,
    PayloadTooLargeError,
    ServiceUnavailableError,
    UnsupportedMediaTypeError,
    ValidationError,
)

logger = logging.getLogger("caboose.errors")

PROBLEM_JSON = "application/problem+json"

_BY_STATUS: dict[int, type[AppError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: AuthorizationError,
    404: NotFoundError,
    405: MethodNotAllowedError,
    413: PayloadTooLargeError,
    415: UnsupportedMediaTypeError,
    422: ValidationError,
    503: ServiceUnavailableError,
}


def problem_body(
    error: AppError, *, instance: str | None, request_id: str | None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": error.type_uri,
        "title": error.title,
        "status": error.status,
        "detail": error.detail,
        "instance": instance,
        "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "request_id": request_id,
    }
    if error.errors or isinstance(error, ValidationError):
        body["errors"] = [field.to_dict() for field in error.errors]
    body.update(error.extra)
    return body


def problem_response(
    error: AppError, *, instance: str | None, request_id: str | None
) -> JSONResponse:
    return JSONResponse(
        problem_body(error, instance=instance, request_id=request_id),
        status_code=error.status,
        media_type=PROBLEM_JSON,
        headers=error.headers,
    )


def _request_id(request: Request) -> str | None:
    value = getattr(request.state, "request_id", None)
    return str(value) if value else None


def _render(request: Request, error: AppError) -> JSONResponse:
    return problem_response(error, instance=request.url.path, request_id=_request_id(request))


def _field_name(location: tuple[Any, ...] | list[Any]) -> str:
    # ("body", "name") -> "name"; ("query", "limit") -> "limit"; nested -> "items.0.key"
    parts = [str(part) for part in location]
    if len(parts) > 1 and parts[0] in {"body", "query", "path", "header", "cookie"}:
        parts = parts[1:]
    return ".".join(parts) or "body"


def validation_error_from(exc: RequestValidationError) -> AppError:
    raw = exc.errors()
    if any(err.get("type") == "json_invalid" for err in raw):
        return BadRequestError("The request body is not valid JSON")
    fields = [
        FieldError(
            field=_field_name(err.get("loc", ())),
            message=str(err.get("msg", "invalid value")),
            code=str(err.get("type", "invalid")),
        )
        for err in raw
    ]
    summary = "; ".join(f"{f.field}: {f.message}" for f in fields[:3])
    return ValidationError(f"Invalid request: {summary}" if summary else None, errors=fields)


async def handle_app_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    if exc.status >= 500:
        logger.error("%s: %s", type(exc).__name__, exc.detail)
    return _render(request, exc)


async def handle_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return _render(request, validation_error_from(exc))


async def handle_http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    fallback = InternalError if exc.status_code >= 500 else BadRequestError
    error_class = _BY_STATUS.get(exc.status_code, fallback)
    if exc.status_code == 404:
        detail = f"No route matches {request.method} {request.url.path}"
    elif exc.status_code == 405:
        detail = f"{request.method} is not allowed on {request.url.path}"
    else:
        detail = str(exc.detail) if exc.detail else error_class.title
    error = error_class(detail, headers=dict(exc.headers or {}))
    error.status = exc.status_code
    return _render(request, error)


def install_exception_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, handle_app_error)
    app.add_exception_handler(RequestValidationError, handle_validation_error)
    app.add_exception_handler(StarletteHTTPException, handle_http_exception)
