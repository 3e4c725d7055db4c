"""The one exception hierarchy of the platform, rendered as RFC 7807 problem details.

Code raises the most specific ``AppError``; ``middleware/exception_handlers.py`` turns it (and
FastAPI's own errors, and anything unexpected) into ``application/problem+json``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PROBLEM_TYPE_BASE = "https://caboose.dev/problems/"


@dataclass(frozen=True, slots=True)
class FieldError:
    """One invalid field of a request: where, what is wrong, and a machine-readable code."""

    field: str
    message: str
    code: str

    def to_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message, "code": self.code}


class AppError(Exception):
    """Base of every error the API reports on purpose."""

    # Class-level defaults; an instance may override ``status`` (e.g. mapping a framework error).
    status: int = 500
    slug: str = "internal-error"
    title: str = "Internal server error"

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.detail = detail or self.title
        self.errors = errors or []
        self.headers = headers or {}
        self.extra = extra or {}
        super().__init__(self.detail)

    @property
    def type_uri(self) -> str:
        return PROBLEM_TYPE_BASE + self.slug


class BadRequestError(AppError):
    status = 400
    slug = "bad-request"
    title = "Bad request"


class AuthenticationError(AppError):
    status = 401
    slug = "authentication-required"
    title = "Authentication required"

    def __init__(self, detail: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(detail, **kwargs)


class AuthorizationError(AppError):
    status = 403
    slug = "forbidden"
    title = "Forbidden"


class NotFoundError(AppError):
    status = 404
    slug = "not-found"
    title = "Not found"


class MethodNotAllowedError(AppError):
    status = 405
    slug = "method-not-allowed"
    title = "Method not allowed"


class ConflictError(AppError):
    status = 409
    slug = "conflict"
    title = "Conflict"


class PayloadTooLargeError(AppError):
    status = 413
    slug = "payload-too-large"
    title = "Payload too large"


class UnsupportedMediaTypeError(AppError):
    status = 415
    slug = "unsupported-media-type"
    title = "Unsupported media type"


class ValidationError(AppError):
    status = 422
    slug = "validation-error"
    title = "Request validation failed"


class RateLimitedError(AppError):
    status = 429
    slug = "rate-limited"
    title = "Too many requests"

    def __init__(self, detail: str | None = None, *, retry_after: int, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"Retry-After": str(retry_after)})
        kwargs.setdefault("extra", {"retry_after": retry_after})
        super().__init__(detail, **kwargs)
        self.retry_after = retry_after


class InternalError(AppError):
    status = 500
    slug = "internal-error"
    title = "Internal server error"


class ServiceUnavailableError(AppError):
    status = 503
    slug = "service-unavailable"
    title = "Service unavailable"


def not_found(noun: str, identifier: object) -> NotFoundError:
    """The one wording of a missing object, also used for other tenants' objects (no leak)."""
    return NotFoundError(f"{noun} {identifier} was not found")
