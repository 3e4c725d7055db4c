"""A workspace's project list is served from memory between changes, and never after one.

The pages are kept per API process (``core/read_cache.py``, ``middleware/cached_reads.py``):
each test shows a page being served without its route running, then that the change in
question — by this process or another — or the loss of access, is seen by the very next request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncConnection

from caboose.api.auth_cookies import ACCESS_COOKIE
from caboose.api.deps import get_session
from caboose.config import Settings
from caboose.core.rate_limit import RateLimiter, RateLimitPolicy
from caboose.database import Database
from caboose.main import create_app
from caboose.models import Role
from caboose.monitoring.prometheus import HTTP_REQUESTS
from caboose.repositories.projects import ProjectRepository
from tests.api.workspace_helpers import API, assert_problem
from tests.conftest import Caller, MakeCaller, _request_session_override

LIST_ROUTE = "/api/v1/workspaces/{workspace_id}/projects"


def projects_url(caller: Caller) -> str:
    return f"{API}/workspaces/{caller.workspace.id}/projects"


@pytest.fixture
def route_runs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """One entry per time the list route read the database."""
    runs: list[int] = []
    original = ProjectRepository.list_rows

    async def counted(self: ProjectRepository, *args: Any, **kwargs: Any) -> Any:
        runs.append(1)
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(ProjectRepository, "list_rows", counted)
    return runs


async def names(client: httpx.AsyncClient, caller: Caller, query: str = "") -> list[str]:
    response = await client.get(projects_url(caller) + query, headers=caller.headers)
    assert response.status_code == 200, response.text
    return [p["name"] for p in response.json()["items"]]


async def create(client: httpx.AsyncClient, caller: Caller, name: str) -> dict[str, Any]:
    response = await client.post(projects_url(caller), json={"name": name}, headers=caller.headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def test_a_repeated_list_is_served_without_running_the_route(
    owner: Caller, client: httpx.AsyncClient, route_runs: list[int]
) -> None:
    await create(client, owner, "api")
    first = await client.get(projects_url(owner), headers=owner.headers)
    counted = HTTP_REQUESTS.labels("GET", LIST_ROUTE, "200")._value.get()
    second = await client.get(projects_url(owner), headers=owner.headers)
    assert len(route_runs) == 1
    assert second.status_code == 200
    assert second.content == first.content
    assert second.headers["content-type"] == first.headers["content-type"] == "application/json"
    assert second.headers["content-length"] == first.headers["content-length"]
    assert second.headers["x-request-id"] != first.headers["x-request-id"]
    # Counted under the route's name, like an answer of the route itself.
    assert HTTP_REQUESTS.labels("GET", LIST_ROUTE, "200")._value.get() == counted + 1


async def test_creating_renaming_and_deleting_a_project_show_at_once(
    owner: Caller, client: httpx.AsyncClient, route_runs: list[int]
) -> None:
    assert await names(client, owner) == []
    assert await names(client, owner) == []
    created = await create(client, owner, "api")
    assert await names(client, owner) == ["api"]
    assert await names(client, owner) == ["api"]
    renamed = await client.patch(
        f"{API}/projects/{created['id']}", json={"name": "web"}, headers=owner.headers
    )
    assert renamed.status_code == 200
    assert await names(client, owner) == ["web"]
    assert await names(client, owner) == ["web"]
    deleted = await client.delete(f"{API}/projects/{created['id']}", headers=owner.headers)
    assert deleted.status_code == 204
    assert await names(client, owner) == []
    assert len(route_runs) == 4  # once after each change, and at first


async def test_each_query_is_a_page_of_its_own(owner: Caller, client: httpx.AsyncClient) -> None:
    for name in ("a-one", "b-two", "c-three"):
        await create(client, owner, name)
    for _ in range(2):
        assert await names(client, owner) == ["c-three", "b-two", "a-one"]  # newest first
        assert await names(client, owner, "?limit=1") == ["c-three"]
        by_name = await names(client, owner, "?sort_by=name&sort_order=asc")
        assert by_name == ["a-one", "b-two", "c-three"]
        assert await names(client, owner, "?name=b-two") == ["b-two"]
    bad = await client.get(projects_url(owner) + "?limit=0", headers=owner.headers)
    assert_problem(bad, 422)


@pytest.fixture
def other_process(
    app: FastAPI,
    settings: Settings,
    database: Database,
    redis: Redis,
    db_connection: AsyncConnection,
) -> Iterator[FastAPI]:
    """A second API process: its own principal and read caches, the same database and Redis."""
    other = create_app(settings)
    other.dependency_overrides[get_session] = _request_session_override
    other.state.database = database
    other.state.redis = redis
    other.state.rate_limiter = None
    other.state.test_connection = db_connection
    yield other


@pytest.fixture
async def other_client(other_process: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=other_process, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


async def test_a_change_made_through_another_process_shows_at_once(
    owner: Caller,
    client: httpx.AsyncClient,
    other_client: httpx.AsyncClient,
    route_runs: list[int],
) -> None:
    await create(client, owner, "api")
    assert await names(other_client, owner) == ["api"]
    assert await names(other_client, owner) == ["api"]
    assert len(route_runs) == 1
    await create(client, owner, "web")
    assert await names(other_client, owner) == ["web", "api"]


async def test_a_signed_out_session_gets_401_not_the_page(
    owner: Caller, client: httpx.AsyncClient
) -> None:
    await create(client, owner, "api")
    await names(client, owner)
    await names(client, owner)
    assert (await client.post(f"{API}/auth/logout", headers=owner.headers)).status_code == 204
    assert_problem(await client.get(projects_url(owner), headers=owner.headers), 401)


async def test_a_removed_member_gets_404_not_the_page(
    owner: Caller, make_caller: MakeCaller, client: httpx.AsyncClient
) -> None:
    member = await make_caller(role=Role.MEMBER, workspace=owner.workspace)
    await create(client, owner, "api")
    assert await names(client, member) == ["api"]
    assert await names(client, member) == ["api"]
    removed = await client.delete(
        f"{API}/workspaces/{owner.workspace.id}/members/{member.user.id}", headers=owner.headers
    )
    assert removed.status_code == 204
    assert_problem(await client.get(projects_url(owner), headers=member.headers), 404)
    stranger = await make_caller()
    assert_problem(await client.get(projects_url(owner), headers=stranger.headers), 404)


async def test_a_project_scoped_token_sees_only_its_project_after_a_full_page(
    owner: Caller, client: httpx.AsyncClient
) -> None:
    mine = await create(client, owner, "api")
    await create(client, owner, "web")
    assert await names(client, owner) == ["web", "api"]
    assert await names(client, owner) == ["web", "api"]
    token = await client.post(
        f"{API}/tokens", json={"name": "ci", "project_id": mine["id"]}, headers=owner.headers
    )
    assert token.status_code == 201
    scoped = {"Authorization": f"Bearer {token.json()['token']}"}
    for _ in range(2):
        response = await client.get(projects_url(owner), headers=scoped)
        assert [p["name"] for p in response.json()["items"]] == ["api"]


async def test_a_cookie_session_is_served_too(
    owner: Caller, client: httpx.AsyncClient, route_runs: list[int]
) -> None:
    await create(client, owner, "api")
    cookie = {"Cookie": f"{ACCESS_COOKIE}={owner.access_token}"}
    for _ in range(3):
        response = await client.get(projects_url(owner), headers=cookie)
        assert [p["name"] for p in response.json()["items"]] == ["api"]
    assert len(route_runs) == 1


async def test_pages_served_from_memory_count_against_the_read_budget(
    app: FastAPI, redis: Redis, redis_url: str, owner: Caller, client: httpx.AsyncClient
) -> None:
    async for key in redis.scan_iter("caboose:ratelimit*"):
        await redis.delete(key)
    app.state.rate_limiter = RateLimiter(
        redis_url, RateLimitPolicy.parse(reads="4/minute", writes="30/minute", auth="5/minute")
    )
    statuses = [
        (await client.get(projects_url(owner), headers=owner.headers)).status_code for _ in range(5)
    ]
    assert statuses == [200] * 4 + [429]
    refused = await client.get(projects_url(owner), headers=owner.headers)
    assert_problem(refused, 429)
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["x-request-id"]
