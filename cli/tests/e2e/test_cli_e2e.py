"""The `caboose` command against the real platform: log in, init, deploy a sample app, and run
the commands a Railway user reaches for.

Needs a ``platform`` fixture (the engine's end-to-end harness, provided by a conftest the lead adds)
with at least ``url``: the base URL the API is reached on through the edge router, e.g.
``http://127.0.0.1:18080``. Optional extras the tests use when present:

- ``email`` / ``password``: an existing account to log in with (else one is registered through
  ``POST /api/v1/auth/register``);
- ``fetch(url) -> (status, body)``: fetch a deployed app's URL through the router (generated
  ``*.localhost`` hostnames may not resolve on every machine, so the harness knows best).

The CLI runs as a real subprocess (``python -m caboose_cli``) with its own config directory.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.e2e

SAMPLE_APP = Path(__file__).resolve().parents[3] / "backend/tests/fixtures/apps/flask-gunicorn"
DEPLOY_TIMEOUT = 600


@pytest.fixture
def caboose_platform(request: pytest.FixtureRequest) -> Any:
    try:
        return request.getfixturevalue("platform")
    except pytest.FixtureLookupError:
        pytest.skip(
            "needs the `platform` fixture (the engine's e2e harness: the API, worker, Redis, PM2 "
            "and Traefik running on loopback), which this checkout does not provide yet"
        )


@dataclass
class Caboose:
    """Runs the CLI like a user's shell would, in ``cwd``, with a private config directory."""

    cwd: Path
    config_home: Path

    def __call__(
        self, *args: str, input: str | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        environment = {
            key: value for key, value in os.environ.items() if not key.startswith("CABOOSE_")
        }
        environment |= {"XDG_CONFIG_HOME": str(self.config_home), "NO_COLOR": "1"}
        completed = subprocess.run(
            [sys.executable, "-m", "caboose_cli", *args],
            cwd=self.cwd,
            env=environment,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        # Shown by pytest when an assertion below fails.
        print(f"$ caboose {' '.join(args)}  → {completed.returncode}")
        print(completed.stdout[-4000:], completed.stderr[-4000:], sep="\n--- stderr ---\n")
        return completed

    def json(self, *args: str, timeout: float = 120) -> Any:
        completed = self(*args, "--json", timeout=timeout)
        assert completed.returncode == 0
        return json.loads(completed.stdout)


def _account(platform: Any) -> tuple[str, str]:
    email = getattr(platform, "email", None)
    password = getattr(platform, "password", None)
    if email and password:
        return str(email), str(password)
    email = f"cli-{uuid.uuid4().hex[:8]}@example.com"
    password = f"Cli-e2e-{uuid.uuid4().hex}"
    response = httpx.post(
        f"{platform.url}/api/v1/auth/register",
        json={"email": email, "password": password, "name": "CLI e2e"},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    return email, password


def _poll(check: Any, *, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def test_the_railway_workflow(caboose_platform: Any, tmp_path: Path) -> None:
    if not SAMPLE_APP.is_dir():
        pytest.skip(f"the sample app is missing: {SAMPLE_APP}")
    app = tmp_path / "hello-cli"
    shutil.copytree(SAMPLE_APP, app)
    caboose = Caboose(cwd=app, config_home=tmp_path / "config")
    email, password = _account(caboose_platform)

    # login
    logged_in = caboose(
        "login",
        "--host",
        caboose_platform.url,
        "--email",
        email,
        "--password-stdin",
        input=password + "\n",
    )
    assert logged_in.returncode == 0
    assert caboose.json("whoami")["email"] == email

    # init: a project with its production environment and a service, this folder linked
    project = f"cli-{uuid.uuid4().hex[:6]}"
    linked = caboose.json("init", "--name", project)
    assert (linked["project_name"], linked["environment_name"]) == (project, "production")

    # up: the build and deploy logs stream, then the URL; exit 0 once ACTIVE
    up = caboose("up", timeout=DEPLOY_TIMEOUT)
    assert up.returncode == 0
    output = up.stdout.strip().splitlines()
    assert len(output) >= 2, "the build log should have been printed before the URL"
    url = output[-1]
    assert url.startswith("http"), url
    first = caboose.json("deployments")[0]
    assert first["status"] == "ACTIVE" and first["url"] == url
    fetch = getattr(caboose_platform, "fetch", None)
    if fetch is not None:
        status, _ = fetch(url)
        assert status == 200

    # variables set, then run -- env sees the value
    assert caboose("variables", "set", "GREETING=hello-from-e2e", "--skip-deploys").returncode == 0
    listed = caboose("variables", "list", "--kv")
    assert "GREETING=" in listed.stdout and "hello-from-e2e" not in listed.stdout  # masked
    ran = caboose("run", "--", "env")
    assert ran.returncode == 0
    assert "GREETING=hello-from-e2e" in ran.stdout.splitlines()

    # logs --lines: the app's output (the shipper may lag a moment behind the deploy)
    def some_logs() -> list[str]:
        result = caboose("logs", "--lines", "3")
        assert result.returncode == 0
        return result.stdout.splitlines()

    lines = _poll(some_logs, timeout=30, what="runtime log lines")
    assert 1 <= len(lines) <= 3
    build_lines = caboose("logs", "--build", "--lines", "2").stdout.splitlines()
    assert 1 <= len(build_lines) <= 2

    # a second deployment, then rollback to the first one's build (no rebuild)
    (app / "VERSION").write_text("2\n")
    assert caboose("up", timeout=DEPLOY_TIMEOUT).returncode == 0
    second = caboose.json("deployments")[0]
    assert second["id"] != first["id"]
    rolled = caboose.json("rollback", "--wait", timeout=DEPLOY_TIMEOUT)
    assert rolled["status"] == "ACTIVE"
    if rolled.get("build_id") is not None:
        assert rolled["build_id"] == first["build_id"]
    history = caboose.json("deployments")
    assert history[0]["id"] == rolled["id"]
    assert {d["id"] for d in history} >= {first["id"], second["id"]}

    # down: the live deployment is removed
    assert caboose("down", "--yes").returncode == 0
    latest = _poll(
        lambda: (d := caboose.json("deployments")[0])["status"] == "REMOVED" and d,
        timeout=60,
        what="the deployment to be removed",
    )
    assert latest["id"] == rolled["id"]
    gone = caboose("down", "--yes")
    assert gone.returncode == 4
