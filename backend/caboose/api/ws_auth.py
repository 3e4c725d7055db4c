"""Authentication and access checks for WebSockets, with the same rules as ``api/deps.py``.

A browser cannot set headers on a WebSocket, so a connection proves who it is in one of three
ways, tried in this order: ``?token=`` (a JWT access token or an API token), the
``caboose_access`` cookie, or a first message ``{"type": "auth", "token": "..."}`` sent within a
few seconds of connecting. The token is then checked exactly as for a request (the same
revocation list, the same API-token lookup).

Cookies need one more check than on HTTP. A cross-site page cannot read a WebSocket's answer
through the same-origin policy — there is none for WebSockets — and browsers send cookies on the
handshake, so any page could open one in the user's name (cross-site WebSocket hijacking).
Cookie-authenticated connections are therefore accepted only from the platform's own origin (or
a configured CORS origin); tokens are not ambient, so they need no such check.

Failures close the connection with a code the dashboard can act on: 4401 (sign in again), 1008
(not found or not yours — the same for both, so ids of other tenants reveal nothing), 4403 (your
role does not allow this), 1013 (too many clients: try again later).

Sessions: routes declared with FastAPI dependencies would hold their database session for the
connection's whole life (minutes). Here a session is opened for each check and closed at once,
through the app's own session provider (``get_session``, or its override in tests).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Final, TypeVar
from urllib.parse import urlsplit

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.websockets import WebSocket, WebSocketDisconnect

from caboose.api.auth_cookies import ACCESS_COOKIE
from caboose.api.deps import (
    Access,
    AuthMethod,
    Principal,
    _from_api_token,
    _roles_of,
    get_session,
    session_policy,
)
from caboose.config import Settings
from caboose.core.api_tokens import looks_like_api_token
from caboose.core.errors import AuthenticationError, NotFoundError
from caboose.core.keys import platform_keys
from caboose.core.permissions import Permission
from caboose.core.sessions import check_access_token
from caboose.database import session_scope
from caboose.models import User

CLOSE_NORMAL: Final = 1000
CLOSE_GOING_AWAY: Final = 1001
CLOSE_POLICY: Final = 1008
CLOSE_TRY_LATER: Final = 1013
CLOSE_BAD_REQUEST: Final = 4400
CLOSE_UNAUTHENTICATED: Final = 4401
CLOSE_FORBIDDEN: Final = 4403
CLOSE_TOO_SLOW: Final = 4408

NOT_FOUND_REASON: Final = "Not found"

T = TypeVar("T")

_QUERY_TOKEN = re.compile(r"([?&]token=)[^&\s\"']+")


def redact_query_tokens(text: str) -> str:
    return _QUERY_TOKEN.sub(r"\1[redacted]", text)


class QueryTokenFilter(logging.Filter):
    """Blanks ``?token=…`` in log records: uvicorn logs each WebSocket's path *with* its query
    string when it is accepted, and a token in a log is a leaked token."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "token=" in message:
            record.msg, record.args = redact_query_tokens(message), None
        return True


# Installed here, where query tokens are accepted, so it is in force as soon as the route
# exists; configure_logging is the better home for it (idempotent either way).
_uvicorn_logger = logging.getLogger("uvicorn.error")
if not any(isinstance(f, QueryTokenFilter) for f in _uvicorn_logger.filters):
    _uvicorn_logger.addFilter(QueryTokenFilter())


class WebSocketRefusalError(Exception):
    """Close the connection with ``code`` and ``reason`` (a short text, ≤ 123 bytes)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@asynccontextmanager
async def connection_session(websocket: WebSocket) -> AsyncIterator[AsyncSession]:
    """A short database session, from the same provider as request sessions: ``get_session``'s
    own scope, or whatever overrides it (tests), given the connection as its request."""
    provider = websocket.app.dependency_overrides.get(get_session)
    if provider is None:
        async with session_scope(websocket.app.state.database.sessionmaker) as session:
            yield session
        return
    arguments = (websocket,) if inspect.signature(provider).parameters else ()
    async with asynccontextmanager(provider)(*arguments) as session:
        yield session


async def with_session(websocket: WebSocket, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    async with connection_session(websocket) as session:
        return await work(session)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def origin_allowed(websocket: WebSocket, settings: Settings) -> bool:
    """Whether a cookie-authenticated handshake comes from a page of the platform itself."""
    origin = websocket.headers.get("origin")
    if origin is None:
        return True  # not a browser: it holds the cookie itself, nothing ambient is abused
    origin = origin.lower()
    if origin == "null":
        return False
    allowed = {_origin(settings.resolved_public_url), *(_origin(o) for o in settings.cors_origins)}
    if origin in allowed:
        return True
    host = websocket.headers.get("host", "").lower()
    return bool(host) and urlsplit(origin).netloc == host


async def _first_message_token(websocket: WebSocket, seconds: float) -> str:
    try:
        message = await asyncio.wait_for(websocket.receive_text(), seconds)
    except TimeoutError:
        raise WebSocketRefusalError(
            CLOSE_UNAUTHENTICATED, "Authenticate: ?token=, the cookie, or an auth message"
        ) from None
    except (WebSocketDisconnect, KeyError, RuntimeError):
        raise WebSocketRefusalError(CLOSE_GOING_AWAY, "Disconnected") from None
    try:
        payload = json.loads(message)
    except json.JSONDecodeError:
        payload = None
    token = payload.get("token") if isinstance(payload, dict) else None
    if not isinstance(payload, dict) or payload.get("type") != "auth" or not isinstance(token, str):
        raise WebSocketRefusalError(
            CLOSE_UNAUTHENTICATED, 'The first message must be {"type": "auth", "token": "..."}'
        )
    return token


async def _principal_from_token(websocket: WebSocket, token: str, method: AuthMethod) -> Principal:
    settings: Settings = websocket.app.state.settings
    redis: Redis = websocket.app.state.redis

    async def resolve(session: AsyncSession) -> Principal:
        if looks_like_api_token(token):
            result = await _from_api_token(session, platform_keys(settings), token)
            if isinstance(result, str):
                raise WebSocketRefusalError(CLOSE_UNAUTHENTICATED, result)
            return result
        try:
            claims = await check_access_token(redis, session_policy(websocket.app.state), token)
            user_id = uuid.UUID(claims.subject)
        except AuthenticationError as exc:
            raise WebSocketRefusalError(CLOSE_UNAUTHENTICATED, exc.detail[:120]) from None
        except ValueError:
            raise WebSocketRefusalError(CLOSE_UNAUTHENTICATED, "Invalid access token") from None
        user = await session.get(User, user_id)
        if user is None or not user.is_active:
            raise WebSocketRefusalError(CLOSE_UNAUTHENTICATED, "This account is disabled")
        return Principal(user_id=user.id, method=method, roles=await _roles_of(session, user.id))

    return await with_session(websocket, resolve)


async def authenticate_websocket(websocket: WebSocket, *, auth_timeout: float) -> Principal:
    """Who is on this (accepted) connection; raises :class:`WebSocketRefusalError` if nobody."""
    settings: Settings = websocket.app.state.settings
    query_token = websocket.query_params.get("token")
    if query_token:
        return await _principal_from_token(websocket, query_token, "bearer")
    cookie = websocket.cookies.get(ACCESS_COOKIE)
    if cookie:
        if not origin_allowed(websocket, settings):
            raise WebSocketRefusalError(CLOSE_POLICY, "Cross-origin connections need a token")
        return await _principal_from_token(websocket, cookie, "cookie")
    token = await _first_message_token(websocket, auth_timeout)
    return await _principal_from_token(websocket, token, "bearer")


def parse_uuid(value: str) -> uuid.UUID:
    """A path id; anything malformed is "not found", like a missing object."""
    try:
        return uuid.UUID(value)
    except ValueError:
        raise WebSocketRefusalError(CLOSE_POLICY, NOT_FOUND_REASON) from None


async def load_with_access(
    websocket: WebSocket,
    loader: Callable[[AsyncSession, Principal, uuid.UUID], Awaitable[Access[Any]]],
    principal: Principal,
    object_id: uuid.UUID,
    permission: Permission,
    extract: Callable[[AsyncSession, Access[Any]], Awaitable[T]],
) -> T:
    """Load an object with the same tenant check as HTTP routes, then read what the
    connection needs from it (``extract``) before the session closes."""

    async def work(session: AsyncSession) -> T:
        try:
            access = await loader(session, principal, object_id)
        except NotFoundError:
            raise WebSocketRefusalError(CLOSE_POLICY, NOT_FOUND_REASON) from None
        if not access.can(permission):
            reason = f"Your role does not allow {permission.value}"
            raise WebSocketRefusalError(CLOSE_FORBIDDEN, reason)
        return await extract(session, access)

    return await with_session(websocket, work)
