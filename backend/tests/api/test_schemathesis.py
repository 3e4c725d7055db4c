"""Property-based fuzzing of every documented operation: no input may produce a 5xx.

The API runs as a real server (uvicorn, a temporary data dir: SQLite + embedded Redis, rate limits
off) and schemathesis generates requests from its OpenAPI document, signed in as a real user who
owns a workspace with a project, an environment and a service (so ids in paths sometimes hit).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

pytestmark = pytest.mark.e2e

VENV_BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def live_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    data_dir = tmp_path_factory.mktemp("schemathesis-data")
    port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CABOOSE_")},
        "CABOOSE_DATA_DIR": str(data_dir),
        "CABOOSE_RATE_LIMITS_ENABLED": "false",
        "CABOOSE_LOG_LEVEL": "WARNING",
    }
    subprocess.run(
        [str(VENV_BIN / "caboosed"), "migrate"], env=env, check=True, capture_output=True
    )
    log = (data_dir / "api.log").open("wb")
    server = subprocess.Popen(
        [str(VENV_BIN / "caboosed"), "api", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None, (data_dir / "api.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "the API did not become ready"
            time.sleep(0.1)
        with httpx.Client(base_url=base, timeout=30) as http:
            credentials = {
                "email": "fuzz@example.com",
                "password": "schemathesis may try anything 42",
            }
            http.post(
                "/api/v1/auth/register", json={**credentials, "name": "Fuzz"}
            ).raise_for_status()
            token = http.post("/api/v1/auth/login", json=credentials).json()["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            http.cookies.clear()
            workspace = http.get("/api/v1/me", headers=headers).json()["workspaces"][0]["id"]
            project = http.post(
                f"/api/v1/workspaces/{workspace}/projects", json={"name": "fuzz"}, headers=headers
            ).json()
            http.post(
                f"/api/v1/projects/{project['id']}/services", json={"name": "web"}, headers=headers
            )
        yield base, headers
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
        errors = (data_dir / "api.log").read_text()
        assert "Traceback" not in errors, errors[-4000:]


def test_no_input_causes_a_server_error(live_api: tuple[str, dict[str, str]]) -> None:
    # Operations are driven one by one with Hypothesis (schemathesis's pytest plugin does not yet
    # support this pytest): every failure is collected, so one run reports them all.
    base, headers = live_api
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path == "/api/v1/auth/logout":
            continue  # would end the session the rest of the run signs in with
        operations += 1

        @settings(
            max_examples=25,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        @given(case=operation.as_strategy())
        def check(case: schemathesis.Case) -> None:
            response = case.call(base_url=base, headers=headers, timeout=30)
            if response.status_code >= 500:
                failures.append(
                    f"{case.method} {case.formatted_path} -> {response.status_code}: "
                    f"{response.text[:300]}"
                )

        check()
    assert operations > 20
    assert not failures, "\n".join(failures[:20])
