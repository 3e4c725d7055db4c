"""The live WebSockets, over a real uvicorn server and a real WebSocket client.

httpx cannot speak WebSocket, so the app under test (with the test's database session and
Redis) is served by uvicorn on a free loopback port, in the test's own event loop, and the
``websockets`` client connects to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from caboose.api.logs import store_for
from caboose.api.ws_auth import QueryTokenFilter
from caboose.config import Settings
from caboose.logs.config import LiveSettings, archive_root
from caboose.logs.entries import LogLine
from caboose.logs.events import deployment_event, publish_event, service_event
from caboose.logs.store import LogStore
from caboose.models import Deployment, DeploymentStatus
from tests.conftest import Caller, MakeCaller
from tests.factories import DeploymentFactory, persist

API = "/api/v1"
TIMEOUT = 10.0


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:  # the test runner owns the signals
        yield


@dataclass
class Live:
    app: FastAPI
    base: str
    store: LogStore

    def configure(self, **settings: Any) -> None:
        self.app.state.live_settings = LiveSettings(**settings)

    def url(self, path: str, **query: str) -> str:
        suffix = "&".join(f"{key}={value}" for key, value in query.items())
        return f"{self.base}{API}{path}" + (f"?{suffix}" if suffix else "")


@pytest.fixture
async def live(app: FastAPI, redis: Redis) -> AsyncIterator[Live]:
    app.state.live_settings = LiveSettings(log_ws_ping_seconds=30.0)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(256)
    port = listener.getsockname()[1]
    config = uvicorn.Config(
        app,
        lifespan="off",
        log_level="warning",
        ws="websockets-sansio",
        timeout_graceful_shutdown=2,
    )
    server = _Server(config)
    task = asyncio.create_task(server.serve(sockets=[listener]))
    store = store_for(app.state)
    try:
        yield Live(app, f"ws://127.0.0.1:{port}", store)
    finally:
        server.should_exit = True
        await task
        listener.close()
        await store.aclose()
        del app.state.live_settings  # the app is shared by every test


@pytest.fixture
async def deployment(db_session: AsyncSession, owner: Caller) -> Deployment:
    deployment: Deployment = DeploymentFactory.build(
        service__project__tenant=owner.workspace, status=DeploymentStatus.DEPLOYING
    )
    await persist(db_session, deployment)
    return deployment


def logs_path(deployment: Deployment) -> str:
    return f"/deployments/{deployment.id}/logs/ws"


async def append(live: Live, deployment: Deployment, *texts: str) -> None:
    await live.store.append(
        str(deployment.id), [LogLine.now("stdout", text, replica=0) for text in texts]
    )


async def publish_status(
    redis: Redis, deployment: Deployment, status: DeploymentStatus, reason: str | None = None
) -> None:
    await publish_event(
        redis,
        deployment.service.project_id,
        deployment_event(
            deployment_id=deployment.id,
            service_id=deployment.service_id,
            environment_id=deployment.environment_id,
            status=status,
            status_reason=reason,
        ),
    )


async def receive(ws: ClientConnection) -> dict[str, Any]:
    message = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
    assert isinstance(message, dict)
    return message


async def lines_until(ws: ClientConnection, count: int) -> list[str]:
    """Log lines received until ``count`` have come (other messages are skipped)."""
    lines: list[str] = []
    while len(lines) < count:
        message = await receive(ws)
        if message["type"] == "logs":
            lines += [item["line"] for item in message["items"]]
    return lines


async def until_closed(ws: ClientConnection) -> tuple[list[dict[str, Any]], int, str]:
    """Every message until the server closes, with its close code and reason."""
    messages: list[dict[str, Any]] = []
    with pytest.raises(ConnectionClosed):
        while True:
            messages.append(await receive(ws))
    assert ws.close_code is not None
    return messages, ws.close_code, ws.close_reason or ""


async def refused(url: str, **options: Any) -> tuple[int, str]:
    async with connect(url, open_timeout=TIMEOUT, **options) as ws:
        _, code, reason = await until_closed(ws)
    return code, reason


async def test_history_then_live_lines_then_status_and_a_clean_close(
    live: Live, owner: Caller, deployment: Deployment, redis: Redis
) -> None:
    await append(live, deployment, "\x1b[33mbooting\x1b[0m", "listening on 3000")
    url = live.url(logs_path(deployment), token=owner.access_token)
    async with connect(url, open_timeout=TIMEOUT) as ws:
        status = await receive(ws)
        assert status == {
            "type": "status",
            "deployment_id": str(deployment.id),
            "status": "DEPLOYING",
            "status_reason": None,
            "at": status["at"],
        }
        history = await receive(ws)
        assert history["type"] == "logs"
        assert [i["line"] for i in history["items"]] == [
            "\x1b[33mbooting\x1b[0m",
            "listening on 3000",
        ]
        assert set(history["items"][0]) == {"id", "ts", "stream", "replica", "line"}
        await append(live, deployment, "GET / 200")
        assert await lines_until(ws, 1) == ["GET / 200"]
        await publish_status(redis, deployment, DeploymentStatus.ACTIVE)
        active = await receive(ws)
        assert (active["type"], active["status"]) == ("status", "ACTIVE")
        await append(live, deployment, "SIGTERM received", "bye")
        await publish_status(redis, deployment, DeploymentStatus.CRASHED, "exited with 1")
        messages, code, reason = await until_closed(ws)
    lines = [item["line"] for m in messages if m["type"] == "logs" for item in m["items"]]
    assert lines == ["SIGTERM received", "bye"]
    final = [m for m in messages if m["type"] == "status"]
    assert [(m["status"], m["status_reason"]) for m in final] == [("CRASHED", "exited with 1")]
    assert code == 1000 and reason


async def test_resuming_with_since_repeats_and_misses_nothing(
    live: Live, owner: Caller, deployment: Deployment
) -> None:
    await append(live, deployment, *[f"line {n}" for n in range(5)])
    async with connect(live.url(logs_path(deployment), token=owner.access_token)) as ws:
        await receive(ws)  # status
        history = await receive(ws)
        last = history["items"][-1]["id"]
    await append(live, deployment, *[f"line {n}" for n in range(5, 9)])
    url = live.url(logs_path(deployment), token=owner.access_token, since=last)
    async with connect(url) as ws:
        await receive(ws)
        assert await lines_until(ws, 4) == [f"line {n}" for n in range(5, 9)]
        await append(live, deployment, "line 9")
        assert await lines_until(ws, 1) == ["line 9"]


async def test_a_follower_that_falls_behind_the_trimming_gets_every_line(
    live: Live, owner: Caller, deployment: Deployment, redis_url: str, settings: Settings
) -> None:
    live.configure(log_stream_max_lines=10, log_archive_chunk_lines=5)
    live.store = store_for(live.app.state)
    await append(live, deployment, "line 0")
    url = live.url(logs_path(deployment), token=owner.access_token)

    def flood() -> None:
        """Another process's shipper: 60 lines, mostly archived and trimmed at once."""

        async def main() -> None:
            client = Redis.from_url(redis_url, decode_responses=True)
            store = LogStore(client, archive_root(settings), max_lines=10, chunk_lines=5)
            for n in range(1, 61):
                await store.append(str(deployment.id), [LogLine.now("stdout", f"line {n}")])
            await store.aclose()
            await store.archive_overflow(str(deployment.id))
            await client.aclose()

        asyncio.run(main())

    async with connect(url) as ws:
        await receive(ws)  # status: following from here
        assert await lines_until(ws, 1) == ["line 0"]
        # Block this event loop (the server's too) while the lines are written and trimmed:
        # when the server reads again, lines 1.. are in the archive, not in Redis.
        writer = threading.Thread(target=flood)
        writer.start()
        writer.join()
        assert await redis_xlen(live, deployment) < 20
        assert await lines_until(ws, 60) == [f"line {n}" for n in range(1, 61)]


async def redis_xlen(live: Live, deployment: Deployment) -> int:
    return int(await live.app.state.redis.xlen(f"caboose:logs:{deployment.id}"))


async def test_a_finished_deployment_sends_its_history_and_closes(
    live: Live, owner: Caller, db_session: AsyncSession, deployment: Deployment
) -> None:
    deployment.status = DeploymentStatus.FAILED
    deployment.status_reason = "build failed"
    await persist(db_session, deployment)
    await append(live, deployment, "npm ERR! missing script: build")
    await live.store.archive_all(str(deployment.id))
    async with connect(live.url(logs_path(deployment), token=owner.access_token)) as ws:
        messages, code, _ = await until_closed(ws)
    assert messages[0]["status"] == "FAILED"
    assert messages[1]["items"][0]["line"] == "npm ERR! missing script: build"
    assert code == 1000


async def test_pings_come_at_the_configured_interval(
    live: Live, owner: Caller, deployment: Deployment
) -> None:
    live.configure(log_ws_ping_seconds=0.2)
    async with connect(live.url(logs_path(deployment), token=owner.access_token)) as ws:
        await receive(ws)  # status
        await receive(ws)  # (empty) history
        assert await receive(ws) == {"type": "ping"}
        assert await receive(ws) == {"type": "ping"}


async def test_the_cookie_authenticates_from_the_platforms_own_origin_only(
    live: Live, owner: Caller, deployment: Deployment
) -> None:
    url = live.url(logs_path(deployment))
    cookie = {"Cookie": f"caboose_access={owner.access_token}"}
    host = url.split("/")[2]
    async with connect(url, additional_headers=cookie, origin=f"http://{host}") as ws:  # type: ignore[arg-type]
        assert (await receive(ws))["type"] == "status"
    code, reason = await refused(
        url,
        additional_headers=cookie,
        origin="http://evil.example",
    )
    assert code == 1008 and "token" in reason


async def test_a_first_auth_message_authenticates(
    live: Live, owner: Caller, deployment: Deployment, client: httpx.AsyncClient
) -> None:
    url = live.url(logs_path(deployment))
    async with connect(url) as ws:
        await ws.send(json.dumps({"type": "auth", "token": owner.access_token}))
        assert (await receive(ws))["type"] == "status"
    # An API token works the same way (and in the query).
    created = await client.post(f"{API}/tokens", json={"name": "ci"}, headers=owner.headers)
    api_token = created.json()["token"]
    async with connect(live.url(logs_path(deployment), token=api_token)) as ws:
        assert (await receive(ws))["type"] == "status"
    async with connect(url) as ws:
        await ws.send(json.dumps({"type": "auth", "token": "cb_not-a-real-token"}))
        _, code, _ = await until_closed(ws)
        assert code == 4401


async def test_unauthenticated_connections_are_refused(live: Live, deployment: Deployment) -> None:
    live.configure(ws_auth_timeout_seconds=0.3)
    url = live.url(logs_path(deployment))
    assert (await refused(url))[0] == 4401  # said nothing in time
    async with connect(url) as ws:
        await ws.send("hello")
        _, code, reason = await until_closed(ws)
    assert code == 4401 and "auth" in reason
    assert (await refused(live.url(logs_path(deployment), token="garbage")))[0] == 4401


async def test_another_tenants_deployment_is_refused_like_a_missing_one(
    live: Live, make_caller: MakeCaller, deployment: Deployment
) -> None:
    stranger = await make_caller()
    theirs = await refused(live.url(logs_path(deployment), token=stranger.access_token))
    missing = await refused(
        live.url(f"/deployments/{uuid.uuid4()}/logs/ws", token=stranger.access_token)
    )
    malformed = await refused(live.url("/deployments/nope/logs/ws", token=stranger.access_token))
    assert theirs == missing == malformed == (1008, "Not found")


async def test_the_101st_client_is_refused_and_a_freed_slot_is_reused(
    live: Live, owner: Caller, deployment: Deployment
) -> None:
    url = live.url(logs_path(deployment), token=owner.access_token)
    async with contextlib.AsyncExitStack() as stack:
        clients = []
        for _ in range(100):
            ws = await stack.enter_async_context(connect(url, open_timeout=TIMEOUT))
            await receive(ws)  # admitted: its status came
            clients.append(ws)
        code, reason = await refused(url)
        assert code == 1013 and "100" in reason
        await clients[0].close()
        await clients[0].wait_closed()

        async def admitted() -> bool:
            async with connect(url) as ws:
                return bool((await receive(ws))["type"] == "status")

        # The server frees the slot when it sees the close: poll with a deadline.
        deadline = asyncio.get_running_loop().time() + TIMEOUT
        while True:
            try:
                if await admitted():
                    break
            except ConnectionClosed:
                pass
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.05)


async def test_project_events_follow_deployments_and_services(
    live: Live, owner: Caller, deployment: Deployment, redis: Redis, make_caller: MakeCaller
) -> None:
    project_id = deployment.service.project_id
    url = live.url(f"/projects/{project_id}/events/ws", token=owner.access_token)
    async with connect(url) as ws:
        ready = await receive(ws)
        assert ready["type"] == "ready"
        await publish_status(redis, deployment, DeploymentStatus.ACTIVE)
        event = await receive(ws)
        assert event["type"] == "deployment"
        assert (event["deployment_id"], event["status"]) == (str(deployment.id), "ACTIVE")
        await publish_event(
            redis,
            project_id,
            service_event(action="updated", service_id=deployment.service_id, name="web"),
        )
        updated = await receive(ws)
        assert (updated["type"], updated["action"], updated["name"]) == (
            "service",
            "updated",
            "web",
        )
    # Resume after the first event: only the second comes again.
    async with connect(
        live.url(f"/projects/{project_id}/events/ws", token=owner.access_token, since=event["id"])
    ) as ws:
        assert await receive(ws) == {"type": "ready", "id": event["id"]}
        again = await receive(ws)
        assert again["id"] == updated["id"]
    stranger = await make_caller()
    denied = await refused(
        live.url(f"/projects/{project_id}/events/ws", token=stranger.access_token)
    )
    assert denied == (1008, "Not found")


def test_query_tokens_never_reach_the_logs() -> None:
    record = logging.LogRecord(
        "uvicorn.error",
        logging.INFO,
        __file__,
        1,
        '%s - "WebSocket %s" [accepted]',
        ("127.0.0.1:50000", "/api/v1/deployments/x/logs/ws?since=1-0&token=eyJhbGc.secret"),
        None,
    )
    QueryTokenFilter().filter(record)
    assert record.getMessage() == (
        '127.0.0.1:50000 - "WebSocket /api/v1/deployments/x/logs/ws?since=1-0&token=[redacted]"'
        " [accepted]"
    )
