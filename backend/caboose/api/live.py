"""What every live WebSocket of the API does besides its own messages.

A :class:`LiveConnection` sends through one lock (frames never interleave), pings every
``ping_seconds`` (proxies drop idle connections, and the client learns that a silent server is
gone), keeps its connection slot alive (see :mod:`caboose.logs.connections`), listens for the
client going away, and runs the endpoint's own workers. The first of all these to finish ends
the connection; the others are cancelled, and the slot is released whatever happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Final

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from caboose.api.ws_auth import CLOSE_NORMAL, CLOSE_TRY_LATER, WebSocketRefusalError
from caboose.logs.connections import ConnectionLimiter, Slot

logger = logging.getLogger("caboose.ws")

PING: Final = json.dumps({"type": "ping"})
Worker = Callable[[], Coroutine[Any, Any, None]]


class ClientGoneError(Exception):
    """The client went away while we were sending."""


def dumps(message: dict[str, Any]) -> str:
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"))


def limiter_for(state: Any) -> ConnectionLimiter:
    """The process's limiter, kept on ``app.state`` (its Lua scripts are loaded once)."""
    limiter = getattr(state, "connection_limiter", None)
    if isinstance(limiter, ConnectionLimiter) and limiter.redis is state.redis:
        return limiter
    limiter = ConnectionLimiter(state.redis)
    state.connection_limiter = limiter
    return limiter


async def claim_slot(
    limiter: ConnectionLimiter, key: str, max_clients: int, following: str
) -> Slot:
    """One of the ``max_clients`` connection slots of ``key``, or a refusal (1013) saying that
    too many clients follow ``following`` ("this project", "this deployment")."""
    slot = await limiter.acquire(key, max_clients)
    if slot is None:
        raise WebSocketRefusalError(
            CLOSE_TRY_LATER, f"Too many clients follow {following} (at most {max_clients})"
        )
    return slot


class LiveConnection:
    def __init__(
        self,
        websocket: WebSocket,
        *,
        ping_seconds: float,
        limiter: ConnectionLimiter,
        slot: Slot,
    ) -> None:
        self.websocket = websocket
        self.ping_seconds = ping_seconds
        self.limiter = limiter
        self.slot = slot
        self.close_code = CLOSE_NORMAL
        self.close_reason = ""
        self._send_lock = asyncio.Lock()

    async def send(self, text: str) -> None:
        async with self._send_lock:
            try:
                await self.websocket.send_text(text)
            except (WebSocketDisconnect, RuntimeError, OSError) as exc:
                raise ClientGoneError from exc

    def end(self, code: int, reason: str = "") -> None:
        """Say how the connection will close once the worker calling this returns."""
        self.close_code, self.close_reason = code, reason

    async def _pinger(self) -> None:
        while True:
            await asyncio.sleep(self.ping_seconds)
            await self.send(PING)

    async def _slot_keeper(self) -> None:
        while True:
            await asyncio.sleep(self.limiter.refresh_interval)
            await self.limiter.refresh(self.slot)

    async def _listener(self) -> None:
        """Wait for the client to leave; what it sends (pongs, anything) is ignored."""
        while True:
            message = await self.websocket.receive()
            if message["type"] == "websocket.disconnect":
                raise ClientGoneError

    async def run(self, *workers: Worker) -> None:
        tasks: list[asyncio.Task[None]] = [
            asyncio.create_task(coroutine())
            for coroutine in (self._listener, self._pinger, self._slot_keeper, *workers)
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for task in done:
            error = task.exception()
            if error is None or isinstance(error, ClientGoneError):
                continue
            if isinstance(error, WebSocketRefusalError):
                self.end(error.code, error.reason)
                continue
            raise error
        await close_quietly(self.websocket, self.close_code, self.close_reason)


async def close_quietly(websocket: WebSocket, code: int, reason: str = "") -> None:
    if websocket.application_state == WebSocketState.DISCONNECTED:
        return
    if websocket.client_state == WebSocketState.DISCONNECTED:
        return
    with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
        await websocket.close(code, reason[:120])


async def serve_refusing(websocket: WebSocket, serve: Callable[[], Awaitable[None]]) -> None:
    """Accept, run ``serve``, and turn a :class:`WebSocketRefusalError` into its close frame."""
    await websocket.accept()
    try:
        await serve()
    except WebSocketRefusalError as refusal:
        await close_quietly(websocket, refusal.code, refusal.reason)
    except ClientGoneError:
        pass
