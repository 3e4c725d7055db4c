"""Request id and timing, as pure ASGI middleware (cheap, and transparent to WebSockets).

``X-Request-ID`` from the client is honoured when it looks like an id (so a trace can cross the
edge router and the CLI), otherwise one is generated; it is echoed on the response, set in the
logging context, and put in every problem+json body.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from caboose.core.errors import AppError, InternalError, ServiceUnavailableError
from caboose.core.logging import request_id_var
from caboose.middleware.exception_handlers import problem_response

logger = logging.getLogger("caboose.http")
error_logger = logging.getLogger("caboose.errors")

# Redis unreachable, or every connection of the pool busy for its whole wait (main.api_redis):
# the request may well succeed in a moment, so 503 with Retry-After rather than 500.
_REDIS_UNAVAILABLE = (RedisConnectionError, RedisTimeoutError)
REDIS_RETRY_AFTER_S = 5

# Anything else a client sends is replaced, so a header can't inject into log lines.
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        incoming = _header(scope, b"x-request-id")
        request_id = (
            incoming if incoming and _VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        )
        scope.setdefault("state", {})["request_id"] = request_id
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status_code = 0

        async def send_with_headers(message: Message) -> None:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = message["status"]
                elapsed_ms = (time.perf_counter() - started) * 1000
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                headers.append((b"x-process-time", f"{elapsed_ms:.2f}ms".encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception as exc:
            # Caught here rather than by Starlette's outermost error middleware, so the 500 still
            # carries the request id (header, body, log line). Never the traceback to the client.
            if scope["type"] != "http" or status_code:
                raise
            error_logger.exception("unhandled error on %s %s", scope.get("method"), scope["path"])
            error: AppError
            if isinstance(exc, _REDIS_UNAVAILABLE):
                error = ServiceUnavailableError(
                    "The platform's Redis is unreachable or busy; try again in a few seconds",
                    headers={"Retry-After": str(REDIS_RETRY_AFTER_S)},
                )
            else:
                error = InternalError(
                    "An unexpected error occurred; the request id identifies it in the logs"
                )
            response = problem_response(error, instance=scope["path"], request_id=request_id)
            await response(scope, receive, send_with_headers)
        finally:
            if scope["type"] == "http":
                logger.info(
                    "%s %s %s %.1fms",
                    scope.get("method"),
                    scope.get("path"),
                    status_code,
                    (time.perf_counter() - started) * 1000,
                )
            request_id_var.reset(token)
