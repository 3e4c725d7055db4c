"""A workspace's project list served from ``core/read_cache`` without running the route.

Pure ASGI, inside the metrics, request-id and body-limit layers (a page served from memory is
counted, logged and carries its request id like any other answer) and in front of FastAPI's
routing and dependency resolution, which cost more than the page itself.

Checked on every request, as the route would: the session token (signature, expiry, not
revoked), the caller's role in the workspace (the principal cache, valid for the user's
generation), the read rate limit. The caller's generation, the revocation keys and the
workspace's generation come back in one ``MGET``. Skipped: routing, dependencies, the database.

Anything else goes on to the route, which answers as it always does: no session token (API
tokens are not served here: a project-scoped token sees another list), no role in the
workspace, Redis failing. A page not kept, or a caller whose roles are not remembered yet, goes
through the route too, and its answer is kept (200, no cookie set: the page of the workspace,
whoever asked), tagged with the generation read before the route ran.
"""

from __future__ import annotations

import uuid
from typing import Any

from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from caboose.api.deps import budget_key, check_session, session_token
from caboose.core.errors import AuthenticationError, RateLimitedError
from caboose.core.permissions import Permission, has_permission
from caboose.core.rate_limit import RateLimiter
from caboose.core.read_cache import (
    Headers,
    ReadCache,
    current_generation,
    workspace_generation_key,
)
from caboose.middleware.exception_handlers import problem_response


class CachedReadsMiddleware:
    def __init__(self, app: ASGIApp, *, path: str, cache: ReadCache) -> None:
        """``path``: the list route's template, with a ``{workspace_id}`` parameter."""
        self.app = app
        self.cache = cache
        self.path_regex, _, _ = compile_path(path)
        # The route object FastAPI resolves for this path, learnt from the first miss: hits
        # put it in the scope, where the metrics and logs look for the route's name.
        self.route: Any = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        match = self.path_regex.match(scope["path"])
        if match is None:
            await self.app(scope, receive, send)
            return
        if not await self._answer(scope, receive, send, match["workspace_id"]):
            await self.app(scope, receive, send)

    async def _answer(self, scope: Scope, receive: Receive, send: Send, raw_id: str) -> bool:
        """Answer from the cache, or through the route keeping its page; False: the route's
        to answer as usual."""
        try:
            workspace_id = uuid.UUID(raw_id)
        except ValueError:
            return False
        found = session_token(Request(scope))
        if found is None:
            return False
        state = scope["app"].state
        generation_key = workspace_generation_key(workspace_id)
        try:
            checked = await check_session(state, found[0], generation_key)
            generation = await current_generation(state.redis, generation_key, checked.also[0])
        except (AuthenticationError, ValueError, RedisError):
            return False  # the route says why (401), or fails as it would have
        key = (workspace_id, scope["query_string"])
        if checked.roles is None:
            # Roles not remembered: the route checks them; a 200 is the workspace's page (it
            # does not depend on who asked), kept like any other.
            page = None
        else:
            role = checked.roles.get(workspace_id)
            if role is None or not has_permission(role, Permission.PROJECT_READ):
                return False  # the route's 404 or 403
            page = self.cache.get(key, generation)
        if page is None or self.route is None:
            await self.app(scope, receive, self._keeping(scope, send, key, generation))
            return True
        scope["route"] = self.route
        scope.setdefault("state", {})["user_id"] = str(checked.user_id)
        limiter: RateLimiter | None = getattr(state, "rate_limiter", None)
        if limiter is not None:
            try:
                await limiter.hit(limiter.policy.reads, budget_key(True, f"user:{checked.user_id}"))
            except RateLimitedError as exc:
                request_id = scope["state"].get("request_id")
                response = problem_response(exc, instance=scope["path"], request_id=request_id)
                await response(scope, receive, send)
                return True
        await send({"type": "http.response.start", "status": 200, "headers": page.headers})
        await send({"type": "http.response.body", "body": page.body})
        return True

    def _keeping(self, scope: Scope, send: Send, key: Any, generation: str) -> Send:
        headers: Headers | None = None
        chunks: list[bytes] = []

        async def keep(message: Message) -> None:
            nonlocal headers
            if message["type"] == "http.response.start":
                raw = list(message.get("headers", []))
                if message["status"] == 200 and not any(k == b"set-cookie" for k, _ in raw):
                    headers = raw
            elif message["type"] == "http.response.body" and headers is not None:
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    self.cache.put(key, generation, headers, b"".join(chunks))
                    self.route = scope.get("route", self.route)
            await send(message)

        return keep
