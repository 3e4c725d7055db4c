"""Following a deployment's logs over the WebSocket: resume, close codes, the HTTP fallback."""

from __future__ import annotations

import time
from typing import Any

import pytest

from caboose_cli.client import Client, resolve_auth
from caboose_cli.config import Credentials, save_credentials
from caboose_cli.errors import CliError, ExitCode, NotFoundError
from caboose_cli.statuses import FINAL_STATUSES, UP_DONE_STATUSES
from caboose_cli.streaming import LogFollower, fetch_history
from tests.standin import EMAIL, StandIn


@pytest.fixture
def client(standin: StandIn) -> Client:
    tokens = standin.world.issue_session(standin.world.users[EMAIL]["id"])
    save_credentials(
        Credentials(
            host=standin.url,
            access_token=tokens["access_token"],
            refresh_token=tokens["refresh_token"],
        )
    )
    return Client(resolve_auth())


@pytest.fixture
def deployment_id(standin: StandIn) -> str:
    world = standin.world
    project_id = world.add_project(next(iter(world.workspaces)), "shop", services=("web",))
    service_id = next(s for s, v in world.services.items() if v["project_id"] == project_id)
    environment_id = next(e for e, v in world.environments.items() if v["project_id"] == project_id)
    return world.start_deployment(service_id, environment_id, lines=6).id


def follow(client: Client, deployment_id: str, **options: Any) -> tuple[list[str], list[str], Any]:
    lines: list[str] = []
    statuses: list[str] = []
    follower = LogFollower(
        client,
        deployment_id,
        on_log=lambda message: lines.append(message["line"]),
        on_status=lambda status, message: statuses.append(status),
        reconnect_delay=0.01,
        **options,
    )
    return lines, statuses, follower.run()


EXPECTED = [
    *(f"build step {n}" for n in range(1, 7)),
    "listening on [::]:8000",
    "==> Live: 1 replica(s) healthy",
]


@pytest.mark.parametrize("batches", [True, False], ids=["logs batches", "one log per message"])
def test_follows_logs_and_statuses_until_active(
    client: Client, deployment_id: str, standin: StandIn, batches: bool
) -> None:
    standin.world.ws_batches = batches
    lines, statuses, result = follow(client, deployment_id, stop_on=UP_DONE_STATUSES)
    assert lines == EXPECTED
    assert statuses == ["BUILDING", "DEPLOYING", "ACTIVE"]
    assert result.status == "ACTIVE"
    assert result.last_id is not None


def test_joining_after_the_end_still_gets_every_line(
    client: Client, deployment_id: str, standin: StandIn
) -> None:
    time.sleep(0.6)  # the scripted deployment is ACTIVE: its status comes before the history
    lines, statuses, _ = follow(client, deployment_id, stop_on=UP_DONE_STATUSES)
    assert lines == EXPECTED
    assert statuses == ["ACTIVE"]


def test_a_drop_resumes_from_the_last_id_seen(
    client: Client, deployment_id: str, standin: StandIn
) -> None:
    standin.world.ws_drop_after = 3
    lines, _, _ = follow(client, deployment_id, stop_on=UP_DONE_STATUSES)
    assert lines == EXPECTED  # every line once
    first, second = standin.world.ws_queries
    assert first == {"since": "0-0"}  # from the very first line, not just the last few hundred
    third_id = fetch_history(client, deployment_id)[2]["id"]
    assert second == {"since": third_id}


def test_an_inclusive_since_does_not_repeat_a_line(
    client: Client, deployment_id: str, standin: StandIn
) -> None:
    standin.world.ws_since_inclusive = True
    script = standin.world.deployments[deployment_id].script
    second_id = [event["id"] for _, event in script if event["type"] == "log"][1]
    lines, _, _ = follow(client, deployment_id, stop_on=UP_DONE_STATUSES, since=second_id)
    assert lines == EXPECTED[2:]


def test_a_refused_token_is_refreshed_once(
    client: Client, deployment_id: str, standin: StandIn
) -> None:
    standin.world.ws_close_code = 4401
    lines, _, _ = follow(client, deployment_id, stop_on=UP_DONE_STATUSES)
    assert lines == EXPECTED
    assert standin.world.ws_connections == 2


@pytest.mark.parametrize(
    ("code", "error", "exit_code"),
    [
        (1008, NotFoundError, ExitCode.NOT_FOUND),
        (4403, CliError, ExitCode.FORBIDDEN),
        (1013, CliError, ExitCode.FAILURE),
    ],
)
def test_refusals_are_reported_not_retried(
    client: Client,
    deployment_id: str,
    standin: StandIn,
    code: int,
    error: type[CliError],
    exit_code: ExitCode,
) -> None:
    standin.world.ws_close_code = code
    with pytest.raises(error) as caught:
        follow(client, deployment_id)
    assert caught.value.exit_code == exit_code
    assert "refused by the test" in caught.value.message
    assert standin.world.ws_connections == 1


def test_without_a_websocket_the_history_is_polled(
    client: Client, deployment_id: str, standin: StandIn
) -> None:
    standin.world.ws_enabled = False
    lines, _, result = follow(client, deployment_id, stop_on=UP_DONE_STATUSES, poll_interval=0.02)
    assert lines == EXPECTED
    assert result.status == "ACTIVE"


def test_the_stream_ends_when_the_server_closes_after_a_final_status(
    client: Client, standin: StandIn
) -> None:
    world = standin.world
    world.outcome = "FAILED"
    project_id = world.add_project(next(iter(world.workspaces)), "x", services=("web",))
    service_id = next(s for s, v in world.services.items() if v["project_id"] == project_id)
    environment_id = next(e for e, v in world.environments.items() if v["project_id"] == project_id)
    failed = world.start_deployment(service_id, environment_id)
    lines, _, result = follow(client, failed.id, stop_on=FINAL_STATUSES)
    assert result.status == "FAILED"
    assert lines[-1].endswith("error: the build failed\x1b[0m")


def test_history_follows_the_next_cursor(
    client: Client, deployment_id: str, standin: StandIn
) -> None:
    time.sleep(0.6)  # let the scripted deployment write all its lines
    items = fetch_history(client, deployment_id, page_size=2)
    assert [i["line"] for i in items] == EXPECTED
    pages = [q for _, path, q in standin.world.requests if path.endswith("/logs")]
    assert len(pages) == 4
