"""``GET /deployments/{id}/logs``: history across Redis and the archive, filters, cursor, access."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from caboose.api.logs import store_for
from caboose.config import Settings
from caboose.core.keys import platform_keys
from caboose.logs.config import LiveSettings
from caboose.logs.entries import LogLine
from caboose.logs.redaction import MASK
from caboose.logs.service import redactor_for_deployment
from caboose.logs.store import LogStore
from caboose.models import Deployment, Role
from tests.conftest import Caller, MakeCaller
from tests.factories import DeploymentFactory, persist

API = "/api/v1"


@pytest.fixture
def small_store_app(app: FastAPI) -> Iterator[FastAPI]:
    # Tiny streams, so a few dozen lines already span Redis and the archive.
    app.state.live_settings = LiveSettings(log_stream_max_lines=10, log_archive_chunk_lines=5)
    try:
        yield app
    finally:
        del app.state.live_settings  # the app is shared by every test


@pytest.fixture
async def deployment(db_session: AsyncSession, owner: Caller) -> AsyncIterator[Deployment]:
    deployment = DeploymentFactory.build(service__project__tenant=owner.workspace)
    await persist(db_session, deployment)
    yield deployment


@pytest.fixture
async def store(
    small_store_app: FastAPI, redis: Redis, deployment: Deployment
) -> AsyncIterator[LogStore]:
    store = store_for(small_store_app.state)
    try:
        yield store
    finally:
        await store.aclose()
        await store.delete(str(deployment.id))


async def fill(store: LogStore, deployment: Deployment, count: int) -> None:
    streams = ["build", "stdout", "stderr", "system"]
    for n in range(count):
        await store.append(
            str(deployment.id),
            [LogLine.now(streams[n % 4], f"\x1b[1mline {n}\x1b[0m", replica=n % 2 or None)],
        )
    await store.aclose()


async def test_history_spans_the_archive_and_redis_in_order(
    client: httpx.AsyncClient, owner: Caller, deployment: Deployment, store: LogStore
) -> None:
    await fill(store, deployment, 40)
    assert (store.archive_dir(str(deployment.id))).exists()
    response = await client.get(f"{API}/deployments/{deployment.id}/logs", headers=owner.headers)
    assert response.status_code == 200
    body = response.json()
    assert body["next"] is None
    assert [item["line"] for item in body["items"]] == [
        f"\x1b[1mline {n}\x1b[0m" for n in range(40)
    ]
    first = body["items"][0]
    assert set(first) == {"id", "ts", "stream", "replica", "line"}
    assert (first["stream"], first["replica"]) == ("build", None)
    assert first["ts"].endswith("Z")


async def test_the_cursor_pages_without_gaps_or_repeats(
    client: httpx.AsyncClient, owner: Caller, deployment: Deployment, store: LogStore
) -> None:
    await fill(store, deployment, 33)
    seen: list[str] = []
    params: dict[str, str | int] = {"limit": 4}
    while True:
        response = await client.get(
            f"{API}/deployments/{deployment.id}/logs", params=params, headers=owner.headers
        )
        assert response.status_code == 200
        body = response.json()
        seen += [item["line"] for item in body["items"]]
        if body["next"] is None:
            break
        params["since"] = body["next"]
    assert seen == [f"\x1b[1mline {n}\x1b[0m" for n in range(33)]


async def test_filters_by_stream_and_search(
    client: httpx.AsyncClient, owner: Caller, deployment: Deployment, store: LogStore
) -> None:
    await fill(store, deployment, 24)
    url = f"{API}/deployments/{deployment.id}/logs"
    response = await client.get(url, params={"stream": "stderr"}, headers=owner.headers)
    assert {item["stream"] for item in response.json()["items"]} == {"stderr"}
    assert len(response.json()["items"]) == 6
    response = await client.get(
        url, params=[("stream", "build"), ("stream", "system")], headers=owner.headers
    )
    assert len(response.json()["items"]) == 12
    response = await client.get(url, params={"stream": "stdout,stderr"}, headers=owner.headers)
    assert len(response.json()["items"]) == 12
    response = await client.get(url, params={"search": "LINE 1"}, headers=owner.headers)
    assert [item["line"] for item in response.json()["items"]] == [
        f"\x1b[1mline {n}\x1b[0m" for n in (1, *range(10, 20))
    ]


@pytest.mark.parametrize(
    "params",
    [{"stream": "stdin"}, {"since": "yesterday"}, {"limit": 0}, {"limit": 5001}, {"search": ""}],
)
async def test_bad_parameters_are_422(
    client: httpx.AsyncClient, owner: Caller, deployment: Deployment, params: dict[str, str]
) -> None:
    response = await client.get(
        f"{API}/deployments/{deployment.id}/logs", params=params, headers=owner.headers
    )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_members_read_logs_and_other_tenants_get_404(
    client: httpx.AsyncClient,
    owner: Caller,
    make_caller: MakeCaller,
    deployment: Deployment,
    store: LogStore,
) -> None:
    await fill(store, deployment, 3)
    member = await make_caller(role=Role.MEMBER, workspace=owner.workspace)
    url = f"{API}/deployments/{deployment.id}/logs"
    response = await client.get(url, headers=member.headers)
    assert response.status_code == 200 and len(response.json()["items"]) == 3
    stranger = await make_caller()
    response = await client.get(url, headers=stranger.headers)
    assert response.status_code == 404
    assert "line" not in response.text
    missing = await client.get(
        f"{API}/deployments/00000000-0000-0000-0000-000000000000/logs", headers=stranger.headers
    )
    assert missing.status_code == 404
    assert response.json()["detail"].replace(str(deployment.id), "X") == missing.json()[
        "detail"
    ].replace("00000000-0000-0000-0000-000000000000", "X")
    assert (await client.get(url)).status_code == 401


async def test_an_empty_deployment_has_no_lines(
    client: httpx.AsyncClient, owner: Caller, deployment: Deployment
) -> None:
    response = await client.get(f"{API}/deployments/{deployment.id}/logs", headers=owner.headers)
    assert response.json() == {"items": [], "next": None}


async def test_the_shipper_redacts_with_the_services_current_values(
    client: httpx.AsyncClient,
    owner: Caller,
    deployment: Deployment,
    db_session: AsyncSession,
    settings: Settings,
) -> None:
    response = await client.put(
        f"{API}/services/{deployment.service_id}/variables",
        params={"environment_id": str(deployment.environment_id)},
        json={"variables": {"DATABASE_PASSWORD": "hunter2-hunter2", "DEBUG": "true"}},
        headers=owner.headers,
    )
    assert response.status_code == 200, response.text
    redactor = await redactor_for_deployment(
        db_session, platform_keys(settings), str(deployment.id)
    )
    assert redactor("pw=hunter2-hunter2 debug=true") == f"pw={MASK} debug=true"
    gone = await redactor_for_deployment(db_session, platform_keys(settings), str(uuid.uuid4()))
    assert gone.is_empty
