"""The `caboose` command against the real platform: log in, init, deploy a sample app, and run
the commands a Railway user reaches for; and the interactive `link` in a real terminal.

The ``platform`` fixture is the backend's end-to-end harness (``caboosed up`` with its Redis, PM2,
Traefik, Celery worker and API on loopback; see ``conftest.py``). What the tests use of it:

- ``url``: the platform's URL through the edge router, given to ``caboose login --host``;
- ``email`` / ``password``: an existing account to log in with (else one is registered through
  ``POST /api/v1/auth/register``);
- ``fetch(url) -> (status, body)``: fetch a deployed app's URL through the router (generated
  ``*.localhost`` hostnames may not resolve on every machine, so the harness knows best).

The CLI runs as a real subprocess (``python -m caboose_cli``) with its own config directory.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.terminal import Terminal

SAMPLE_APP = Path(__file__).resolve().parents[3] / "backend/tests/fixtures/apps/flask-gunicorn"
DEPLOY_TIMEOUT = 600

# Several deploys in a test: more than the suite's default timeout (a deadline, not a threshold).
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(DEPLOY_TIMEOUT)]


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

    def login(self, platform: Any, email: str, password: str) -> None:
        logged_in = self(
            "login",
            "--host",
            platform.url,
            "--email",
            email,
            "--password-stdin",
            input=password + "\n",
        )
        assert logged_in.returncode == 0
        assert self.json("whoami")["email"] == email


def _account(platform: Any, *, own: bool = False) -> tuple[str, str]:
    """The platform's account, or (``own``, or when it has none) a new one."""
    email = getattr(platform, "email", None)
    password = getattr(platform, "password", None)
    if email and password and not own:
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


def _poll(check: Callable[[], Any], *, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def _with_version(app: Path, version: str) -> None:
    """The sample answers ``hello from flask-gunicorn (<version>)``: hard-code a version."""
    source = app / "app.py"
    text = source.read_text()
    original = 'VERSION = os.environ.get("APP_VERSION", "v1")'
    assert original in text
    source.write_text(text.replace(original, f"VERSION = {version!r}"))


def test_the_railway_workflow(caboose_platform: Any, tmp_path: Path) -> None:
    if not SAMPLE_APP.is_dir():
        pytest.skip(f"the sample app is missing: {SAMPLE_APP}")
    app = tmp_path / "hello-cli"
    shutil.copytree(SAMPLE_APP, app)
    caboose = Caboose(cwd=app, config_home=tmp_path / "config")
    fetch = getattr(caboose_platform, "fetch", None)

    def answer(url: str) -> str:
        if fetch is None:
            return ""
        status, body = fetch(url)
        assert status == 200, body
        return str(body)

    def wait_active(deployment_id: str) -> dict[str, Any]:
        def done() -> Any:
            found = next(d for d in caboose.json("deployments") if d["id"] == deployment_id)
            assert found["status"] not in {"FAILED", "CRASHED", "CANCELLED"}, found
            return found["status"] == "ACTIVE" and found

        return dict(_poll(done, timeout=DEPLOY_TIMEOUT, what=f"{deployment_id} to be ACTIVE"))

    # login
    caboose.login(caboose_platform, *_account(caboose_platform))

    # init: a project with its production environment and a service, this folder linked
    project = f"cli-{uuid.uuid4().hex[:6]}"
    linked = caboose.json("init", "--name", project)
    assert (linked["project_name"], linked["environment_name"]) == (project, "production")

    # up: the build and deploy logs stream, then the URL; exit 0 once ACTIVE
    up = caboose("up", timeout=DEPLOY_TIMEOUT)
    assert up.returncode == 0
    output = up.stdout.strip().splitlines()
    assert any(line.startswith("==> Build plan") for line in output), "no build log printed"
    assert any(line.startswith("==> Live:") for line in output), "no deploy log printed"
    assert "● ACTIVE" in up.stderr
    url = output[-1]
    assert url.startswith("http"), url
    first = caboose.json("deployments")[0]
    assert first["status"] == "ACTIVE" and first["url"] == url
    if fetch is not None:
        assert "hello from flask-gunicorn (v1)" in answer(url)

    # variables set, then run -- env sees the value
    assert caboose("variables", "set", "GREETING=hello-from-e2e", "--skip-deploys").returncode == 0
    listed = caboose("variables", "list", "--kv")
    assert "GREETING=" in listed.stdout and "hello-from-e2e" not in listed.stdout  # masked
    ran = caboose("run", "--", "env")
    assert ran.returncode == 0
    assert "GREETING=hello-from-e2e" in ran.stdout.splitlines()
    assert caboose.json("deployments")[0]["id"] == first["id"]  # --skip-deploys: no redeploy

    # variables set without --skip-deploys: redeployed, and the app sees the value
    changed = caboose.json("variables", "set", "APP_VERSION=from-variables")
    assert changed["deployment"] is not None
    with_variables = wait_active(changed["deployment"]["id"])
    if fetch is not None:
        assert "(from-variables)" in answer(with_variables["url"])

    # logs --lines: the app's output (the shipper may lag a moment behind the deploy)
    def some_logs() -> list[str]:
        result = caboose("logs", "--lines", "3")
        assert result.returncode == 0
        return result.stdout.splitlines()

    lines = _poll(some_logs, timeout=30, what="runtime log lines")
    assert 1 <= len(lines) <= 3
    # The build log: the platform's steps and the build output (a cache hit has no output).
    build_lines = caboose("logs", "--build", "--lines", "2").stdout.splitlines()
    assert len(build_lines) == 2
    assert "==> Build plan" in caboose("logs", "--build").stdout.splitlines()
    assert not any(line.startswith("==> ") for line in caboose("logs").stdout.splitlines())

    # a new version, then rollback to the previous deployment's build (no rebuild)
    _with_version(app, "two")
    assert caboose("up", timeout=DEPLOY_TIMEOUT).returncode == 0
    second = caboose.json("deployments")[0]
    assert second["id"] not in {first["id"], with_variables["id"]}
    if fetch is not None:
        assert "(two)" in answer(second["url"])
    rolled = caboose.json("rollback", "--wait", timeout=DEPLOY_TIMEOUT)
    assert rolled["status"] == "ACTIVE"
    assert rolled["build_id"] == with_variables["build_id"]
    if fetch is not None:
        assert "(from-variables)" in answer(rolled["url"])
    history = caboose.json("deployments")
    assert history[0]["id"] == rolled["id"]
    assert {d["id"] for d in history} >= {first["id"], with_variables["id"], second["id"]}

    # down: the live deployment is removed, and its URL no longer answers
    assert caboose("down", "--yes").returncode == 0
    latest = _poll(
        lambda: (d := caboose.json("deployments")[0])["status"] == "REMOVED" and d,
        timeout=60,
        what="the deployment to be removed",
    )
    assert latest["id"] == rolled["id"]
    if fetch is not None:
        _poll(lambda: fetch(url)[0] == 404, timeout=30, what="the route to be removed")
    gone = caboose("down", "--yes")
    assert gone.returncode == 4


def test_link_asks_in_a_terminal(caboose_platform: Any, tmp_path: Path, terminal: Terminal) -> None:
    """The interactive `caboose link` in a real terminal (tmux) against the real API."""
    # An account of its own, so that the prompts list exactly what this test made.
    config_home = tmp_path / "config"
    setup = Caboose(cwd=tmp_path, config_home=config_home)
    setup.login(caboose_platform, *_account(caboose_platform, own=True))
    shop = f"shop-{uuid.uuid4().hex[:6]}"
    billing = f"billing-{uuid.uuid4().hex[:6]}"
    for name in (shop, billing):
        folder = tmp_path / name
        folder.mkdir()
        assert Caboose(cwd=folder, config_home=config_home)("init", "--name", name).returncode == 0
    in_shop = Caboose(cwd=tmp_path / shop, config_home=config_home)
    assert in_shop("environment", "new", "staging").returncode == 0
    assert in_shop("service", "new", "worker").returncode == 0

    folder = tmp_path / "checkout"
    folder.mkdir()
    command = shlex.join(
        [
            "env",
            f"XDG_CONFIG_HOME={config_home}",
            "NO_COLOR=1",
            sys.executable,
            "-m",
            "caboose_cli",
            "link",
        ]
    )
    terminal.start(f'{command}; echo "[exit $?]"; sleep 60', cwd=folder)
    screen = terminal.wait_for("Project [1-2]", timeout=30)
    assert shop in screen and billing in screen
    terminal.type(shop)  # by name
    screen = terminal.wait_for("Environment [1-2]", timeout=30)
    assert "production" in screen and "staging" in screen
    terminal.type("staging")
    screen = terminal.wait_for("Service [1-2]", timeout=30)
    assert "worker" in screen
    terminal.type("3")  # out of range: asked again
    terminal.wait_for("Type a number from 1 to 2, or a name.")
    terminal.type("worker")
    screen = terminal.wait_for("[exit ", timeout=30)
    assert "[exit 0]" in screen, screen
    assert f"{shop} / staging / worker" in screen

    status = Caboose(cwd=folder, config_home=config_home).json("status")
    assert status["project"]["name"] == shop
    assert status["environment"]["name"] == "staging"
    assert status["service"]["name"] == "worker"
