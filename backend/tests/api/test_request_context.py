"""Request ids: generated or honoured, echoed, in error bodies and in every log line."""

from __future__ import annotations

import logging
import re

import httpx
import pytest

from caboose.core.logging import KeyValueFormatter, RequestIdFilter


async def test_a_request_id_is_generated_and_echoed(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])
    assert response.headers["x-process-time"].endswith("ms")


async def test_a_client_request_id_is_honoured(client: httpx.AsyncClient) -> None:
    response = await client.get("/health", headers={"X-Request-ID": "cli-1234.abc"})
    assert response.headers["x-request-id"] == "cli-1234.abc"


async def test_a_hostile_request_id_is_replaced(client: httpx.AsyncClient) -> None:
    response = await client.get("/health", headers={"X-Request-ID": 'x" injected=1 ' + "a" * 300})
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])


async def test_the_request_id_is_in_problem_bodies(client: httpx.AsyncClient) -> None:
    response = await client.get("/nope", headers={"X-Request-ID": "trace-42"})
    assert response.json()["request_id"] == "trace-42"


async def test_log_lines_carry_the_request_id(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.handler.addFilter(RequestIdFilter())
    with caplog.at_level(logging.INFO, logger="caboose.http"):
        await client.get("/health", headers={"X-Request-ID": "trace-log-1"})
    records = [r for r in caplog.records if r.name == "caboose.http"]
    assert records and records[-1].request_id == "trace-log-1"  # type: ignore[attr-defined]
    assert "[trace-log-1]" in KeyValueFormatter().format(records[-1])
