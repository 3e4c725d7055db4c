"""Routes: a project's live events, for the dashboard (``WS /projects/{id}/events/ws``).

The first message is ``{"type": "ready", "id"}``: from then on every event reaches the client,
and ``id`` is a valid ``since`` for a reconnect. Then each message is one event of
:mod:`caboose.logs.events` with its stream ``id`` added (``{"id", "type": "deployment", ...}`` or
``{"id", "type": "service", "action", ...}``), plus ``{"type": "ping"}`` every
``log_ws_ping_seconds``. With ``?since=<id>`` the events after that id (those still kept) are
sent first, so a dashboard that lost its connection misses nothing. ``{"type": "resync"}`` means
events were missed (the feed keeps the last 1 000): reload the project's state.
Authentication, access (``project:read``) and close codes as for deployment logs; at most
``log_ws_max_clients`` connections per project.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.websockets import WebSocket

from caboose.api.deps import Access, load_project
from caboose.api.live import LiveConnection, claim_slot, dumps, limiter_for, serve_refusing
from caboose.api.ws_auth import (
    CLOSE_BAD_REQUEST,
    WebSocketRefusalError,
    authenticate_websocket,
    load_with_access,
    parse_uuid,
)
from caboose.core.permissions import Permission
from caboose.logs.config import live_settings
from caboose.logs.entries import is_valid_id, parse_id
from caboose.logs.events import decode_event, events_key, read_events
from caboose.logs.hub import Subscription, hub_for
from caboose.logs.streams import RawEntry

router = APIRouter(tags=["events"])


async def _project_id(session: AsyncSession, access: Access[Any]) -> uuid.UUID:
    project_id: uuid.UUID = access.obj.id
    return project_id


def _encode(raw: list[RawEntry]) -> list[str]:
    return [dumps(decode_event(i, f)) for i, f in raw]


async def _serve_events(websocket: WebSocket) -> None:
    state = websocket.app.state
    config = live_settings(state)
    project_uuid = parse_uuid(websocket.path_params["project_id"])
    since = websocket.query_params.get("since") or None
    if since is not None and not is_valid_id(since):
        raise WebSocketRefusalError(CLOSE_BAD_REQUEST, "since must be an event id")
    principal = await authenticate_websocket(websocket, auth_timeout=config.ws_auth_timeout_seconds)
    project_id = await load_with_access(
        websocket, load_project, principal, project_uuid, Permission.PROJECT_READ, _project_id
    )
    limiter = limiter_for(state)
    slot = await claim_slot(
        limiter, f"events:{project_id}", config.log_ws_max_clients, "this project"
    )
    hub = hub_for(state)
    subscription: Subscription | None = None
    try:
        subscription = await hub.subscribe(events_key(project_id))
        connection = LiveConnection(
            websocket, ping_seconds=config.log_ws_ping_seconds, limiter=limiter, slot=slot
        )
        # Tells the client the feed is live from here (and gives a ``since`` for a reconnect
        # even if no event comes).
        await connection.send(dumps({"type": "ready", "id": since or subscription.start}))
        last = parse_id(since) if since else None
        if since is not None:
            for event in await read_events(state.redis, project_id, since=since):
                await connection.send(dumps(event))
                last = parse_id(event["id"])
        followed = subscription

        async def follow() -> None:
            nonlocal last
            while True:
                batch = await followed.get()
                if batch.gap:  # the client fell more than the feed's length behind
                    await connection.send(dumps({"type": "resync"}))
                texts = batch.cached("events-json", _encode)
                for (entry_id, _), text in zip(batch.entries, texts, strict=True):
                    key = parse_id(entry_id)
                    if last is not None and key <= last:
                        continue
                    await connection.send(text)
                    last = key

        await connection.run(follow)
    finally:
        if subscription is not None:
            await hub.unsubscribe(subscription)
        await limiter.release(slot)


async def project_events_ws(websocket: WebSocket) -> None:
    await serve_refusing(websocket, lambda: _serve_events(websocket))


router.add_websocket_route(
    "/projects/{project_id}/events/ws", project_events_ws, name="project_events_ws"
)
