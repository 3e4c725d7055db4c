"""Routes: a deployment's logs — history over HTTP, history then live over a WebSocket.

``GET /deployments/{id}/logs`` pages through everything stored (archive and Redis alike).
``WS /deployments/{id}/logs/ws?since=`` sends, in order:

1. ``{"type": "status", "deployment_id", "status", "status_reason", "at"}`` — the current one;
2. history: everything after ``since``, or the last ``log_ws_history_lines`` lines without it;
3. live lines as they are stored, and a new ``status`` message whenever the status changes;
   ``{"type": "ping"}`` every ``log_ws_ping_seconds``.

Lines travel in ``{"type": "logs", "items": [{id, ts, stream, replica, line}, ...]}`` messages:
one frame per batch rather than per line, so a deployment printing 10 000 lines a second to a
hundred viewers is a few hundred frames a second, not a million. A client keeps the last ``id``
it saw and reconnects with ``?since=<id>``: it gets exactly the lines it missed.

Once the deployment reaches a final status and every stored line has been sent, the server
closes with 1000. Other close codes: see :mod:`caboose.api.ws_auth`; 4408 means the client read
too slowly to keep up (reconnect with ``since``).

The WebSocket is a plain Starlette route (``add_websocket_route``): the API router's
dependencies (the per-request rate limit) are written for HTTP requests and do not apply to a
connection, which the per-deployment connection cap limits instead.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.websockets import WebSocket

from caboose.api.deps import Access, DeploymentAccess, load_deployment
from caboose.api.live import (
    ClientGoneError,
    LiveConnection,
    claim_slot,
    close_quietly,
    dumps,
    limiter_for,
    serve_refusing,
)
from caboose.api.ws_auth import (
    CLOSE_BAD_REQUEST,
    CLOSE_NORMAL,
    CLOSE_TOO_SLOW,
    WebSocketRefusalError,
    authenticate_websocket,
    load_with_access,
    parse_uuid,
    with_session,
)
from caboose.core.errors import FieldError, ValidationError
from caboose.core.permissions import Permission
from caboose.logs.config import archive_root, live_settings
from caboose.logs.entries import ID_PATTERN, STREAMS, LogEntry, is_valid_id, iso_ms, parse_id
from caboose.logs.events import decode_event, events_key, iso
from caboose.logs.hub import Batch, GapFiller, StreamHub, Subscription, hub_for
from caboose.logs.store import KEY_PREFIX, LogStore, stream_key
from caboose.logs.streams import RawEntry
from caboose.models import Deployment, DeploymentStatus, Service
from caboose.schemas.logs import LogEntryPublic, LogPagePublic

router = APIRouter(tags=["logs"])

_HISTORY_MESSAGE_LINES = 500


def store_for(state: Any) -> LogStore:
    """The API process's (read-mostly) log store, kept on ``app.state``."""
    config = live_settings(state)
    store = getattr(state, "log_store", None)
    if (
        isinstance(store, LogStore)
        and store.redis is state.redis
        and (store.max_lines, store.chunk_lines)
        == (config.log_stream_max_lines, config.log_archive_chunk_lines)
        and store.archive_root == archive_root(state.settings)
    ):
        return store
    store = LogStore(
        state.redis,
        archive_root(state.settings),
        max_lines=config.log_stream_max_lines,
        chunk_lines=config.log_archive_chunk_lines,
    )
    state.log_store = store
    return store


def _archive_filler(state: Any) -> GapFiller:
    """How the hub recovers lines trimmed (archived) before it read them: from the store."""

    async def fill(key: str, after: str) -> AsyncIterator[list[RawEntry]]:
        store = store_for(state)
        deployment_id = key.removeprefix(KEY_PREFIX)
        since: str | None = after
        while True:
            page = await store.read(deployment_id, since=since, limit=1_000)
            if page.items:
                yield [(entry.id, entry.fields()) for entry in page.items]
                since = page.items[-1].id
            if page.next is None:
                return

    return fill


def log_hub(state: Any) -> StreamHub:
    hub = hub_for(state)
    hub.fillers.setdefault(KEY_PREFIX, _archive_filler(state))
    return hub


def _streams(values: list[str] | None) -> list[str] | None:
    """``?stream=stdout&stream=stderr`` or ``?stream=stdout,stderr``."""
    if not values:
        return None
    streams = [part.strip() for value in values for part in value.split(",") if part.strip()]
    unknown = sorted(set(streams) - STREAMS)
    if unknown:
        raise ValidationError(
            f"Unknown log stream: {', '.join(unknown)}",
            errors=[
                FieldError(
                    "stream", f"must be one of {', '.join(sorted(STREAMS))}", "invalid_stream"
                )
            ],
        )
    return streams or None


@router.get("/deployments/{deployment_id}/logs", response_model=LogPagePublic)
async def list_logs(
    access: DeploymentAccess,
    request: Request,
    stream: Annotated[list[str] | None, Query(description="build, stdout, stderr, system")] = None,
    since: Annotated[str | None, Query(pattern=ID_PATTERN, description="a line id")] = None,
    limit: Annotated[int, Query(ge=1, le=5_000)] = 1_000,
    search: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
) -> LogPagePublic:
    """Lines after ``since`` (oldest first), filtered by stream and a case-insensitive
    substring; ``next`` continues the listing."""
    access.require(Permission.LOGS_READ)
    page = await store_for(request.app.state).read(
        str(access.obj.id), since=since, limit=limit, streams=_streams(stream), search=search
    )
    return LogPagePublic(
        items=[LogEntryPublic.model_validate(entry.to_public()) for entry in page.items],
        next=page.next,
    )


# The WebSocket -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Target:
    deployment_id: str
    project_id: str


async def _target(session: AsyncSession, access: Access[Any]) -> _Target:
    deployment: Deployment = access.obj
    project_id = await session.scalar(
        select(Service.project_id).where(Service.id == deployment.service_id)
    )
    return _Target(str(deployment.id), str(project_id))


def _status_message(deployment_id: str, status: str, reason: str | None, at: str | None) -> str:
    return dumps(
        {
            "type": "status",
            "deployment_id": deployment_id,
            "status": status,
            "status_reason": reason,
            "at": at,
        }
    )


def _logs_message(entries: list[LogEntry]) -> str:
    return dumps({"type": "logs", "items": [entry.to_public() for entry in entries]})


def _encode_batch(raw: list[RawEntry]) -> str:
    """The live message for a batch: the hot path of a busy deployment, so no intermediate
    objects, and one time formatting per distinct timestamp (a batch mostly shares one)."""
    items: list[dict[str, Any]] = []
    last_ts, last_iso = "", ""
    for entry_id, fields in raw:
        ts = fields.get("ts") or "0"
        if ts != last_ts:
            last_ts, last_iso = ts, iso_ms(int(ts))
        replica = fields.get("replica")
        items.append(
            {
                "id": entry_id,
                "ts": last_iso,
                "stream": fields.get("stream", "system"),
                "replica": int(replica) if replica else None,
                "line": fields.get("line", ""),
            }
        )
    return dumps({"type": "logs", "items": items})


def _is_final(status: str) -> bool:
    try:
        return DeploymentStatus(status).is_final
    except ValueError:
        return False


class _LogsSession:
    """One client following one deployment (the steps of the module docstring)."""

    def __init__(
        self,
        websocket: WebSocket,
        connection: LiveConnection,
        target: _Target,
        store: LogStore,
        *,
        history_lines: int,
    ) -> None:
        self.websocket = websocket
        self.connection = connection
        self.target = target
        self.store = store
        self.history_lines = history_lines
        self.last_id: str | None = None
        self.status: str | None = None
        # Held while sending lines, so the final drain and the live feed never interleave.
        self.lines_lock = asyncio.Lock()

    async def send_entries(self, entries: list[LogEntry]) -> None:
        for start in range(0, len(entries), _HISTORY_MESSAGE_LINES):
            chunk = entries[start : start + _HISTORY_MESSAGE_LINES]
            await self.connection.send(_logs_message(chunk))
            self.last_id = chunk[-1].id

    async def send_status(self, status: str, reason: str | None, at: str | None) -> None:
        self.status = status
        await self.connection.send(_status_message(self.target.deployment_id, status, reason, at))

    async def send_history(self, since: str | None) -> None:
        if since is None:
            await self.send_entries(
                await self.store.tail(self.target.deployment_id, lines=self.history_lines)
            )
            return
        self.last_id = since
        await self.drain()

    async def drain(self) -> None:
        """Send everything stored after the last line sent."""
        while True:
            page = await self.store.read(
                self.target.deployment_id, since=self.last_id, limit=_HISTORY_MESSAGE_LINES * 4
            )
            await self.send_entries(page.items)
            if page.next is None:
                return

    async def follow_lines(self, subscription: Subscription) -> None:
        while True:
            if subscription.overflowed and subscription.queue.empty():
                self.connection.end(
                    CLOSE_TOO_SLOW, f"Too slow to follow; reconnect with since={self.last_id}"
                )
                return
            batch = await subscription.get()
            async with self.lines_lock:
                if batch.gap:  # (the hub recovers log lines itself; this is a last resort)
                    await self.drain()
                if batch.entries:
                    await self._send_batch(batch)

    async def _send_batch(self, batch: Batch) -> None:
        last = parse_id(self.last_id) if self.last_id else None
        if last is None or parse_id(batch.entries[0][0]) > last:
            await self.connection.send(batch.cached("logs", _encode_batch))
            self.last_id = batch.last_id
            return
        fresh = [(i, f) for i, f in batch.entries if parse_id(i) > last]
        if fresh:
            await self.connection.send(_encode_batch(fresh))
            self.last_id = fresh[-1][0]

    async def follow_events(self, subscription: Subscription) -> None:
        while True:
            batch = await subscription.get()
            for event in batch.cached("events", _decode_events):
                if (
                    event.get("type") != "deployment"
                    or event.get("deployment_id") != self.target.deployment_id
                ):
                    continue
                status = str(event.get("status"))
                if status != self.status:
                    await self.send_status(status, event.get("status_reason"), event.get("at"))
                if _is_final(status):
                    async with self.lines_lock:
                        await self.drain()
                    self.connection.end(CLOSE_NORMAL, "The deployment has ended")
                    return


def _decode_events(raw: list[RawEntry]) -> list[dict[str, Any]]:
    return [decode_event(i, f) for i, f in raw]


async def _current_status(
    session: AsyncSession, deployment_id: str
) -> tuple[str, str | None, str | None]:
    row = (
        await session.execute(
            select(Deployment.status, Deployment.status_reason, Deployment.updated_at).where(
                Deployment.id == uuid.UUID(deployment_id)
            )
        )
    ).one()
    at = iso(row.updated_at) if row.updated_at is not None else None
    return str(row.status), row.status_reason, at


async def _serve_logs(websocket: WebSocket) -> None:
    state = websocket.app.state
    config = live_settings(state)
    deployment_uuid = parse_uuid(websocket.path_params["deployment_id"])
    since = websocket.query_params.get("since") or None
    if since is not None and not is_valid_id(since):
        raise WebSocketRefusalError(CLOSE_BAD_REQUEST, "since must be a line id (1700000000000-0)")
    principal = await authenticate_websocket(websocket, auth_timeout=config.ws_auth_timeout_seconds)
    target = await load_with_access(
        websocket, load_deployment, principal, deployment_uuid, Permission.LOGS_READ, _target
    )
    limiter = limiter_for(state)
    slot = await claim_slot(
        limiter, f"logs:{target.deployment_id}", config.log_ws_max_clients, "this deployment"
    )
    hub = log_hub(state)
    subscriptions: list[Subscription] = []
    try:
        # Subscribe before reading status and history: whatever happens from now on is queued.
        events = await hub.subscribe(events_key(target.project_id))
        subscriptions.append(events)
        lines = await hub.subscribe(
            stream_key(target.deployment_id), max_backlog=config.log_ws_max_backlog_lines
        )
        subscriptions.append(lines)
        connection = LiveConnection(
            websocket, ping_seconds=config.log_ws_ping_seconds, limiter=limiter, slot=slot
        )
        session = _LogsSession(
            websocket,
            connection,
            target,
            store_for(state),
            history_lines=config.log_ws_history_lines,
        )
        status, reason, at = await with_session(
            websocket, lambda s: _current_status(s, target.deployment_id)
        )
        await session.send_status(status, reason, at)
        await session.send_history(since)
        if _is_final(status):  # nothing live will come
            await close_quietly(websocket, CLOSE_NORMAL, "The deployment has ended")
            return
        await connection.run(
            lambda: session.follow_lines(lines), lambda: session.follow_events(events)
        )
    except ClientGoneError:
        pass
    finally:
        for subscription in subscriptions:
            await hub.unsubscribe(subscription)
        await limiter.release(slot)


async def deployment_logs_ws(websocket: WebSocket) -> None:
    await serve_refusing(websocket, lambda: _serve_logs(websocket))


router.add_websocket_route(
    "/deployments/{deployment_id}/logs/ws", deployment_logs_ws, name="deployment_logs_ws"
)
