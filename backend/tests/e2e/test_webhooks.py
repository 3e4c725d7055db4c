"""Git webhooks for real, on the platform ``caboosed up`` runs: a bare repository served over
smart HTTP on loopback is the service's source; signed GitHub deliveries go through Traefik to
the API, the Celery worker deploys, and the app answers through Traefik.

- a push delivery deploys the pushed commit, and the app sees its resolved variables
  (``${{shared.KEY}}`` and ``${{<service>.KEY}}`` references expanded), while the SQLite file
  never holds one of those values in clear;
- a pull request delivery brings ``pr-<n>`` up at its own hostname (with the base environment's
  variables), and closing the pull request takes it down: processes, route and environment.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path
from typing import Any

import psutil
import pytest

from caboose.webhooks.signatures import github_signature
from tests.e2e.conftest import Platform
from tests.e2e.test_deploys import (  # the deploy tests' client and git server
    Api,
    GitServer,
    Target,
    fetch,
    git_server,
    wait_for,
)

pytestmark = pytest.mark.e2e

__all__ = ["git_server"]  # a fixture, used by name

TIMEOUT_S = 300.0
DB_PASSWORD = f"db-password-{uuid.uuid4().hex}"
SHARED_VALUE = f"shared-value-{uuid.uuid4().hex}"
SHOP_REPO = {"id": 7, "full_name": "acme/shop"}

ENV_APP = """\
import json, os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NAMES = ["GREETING", "DB_PASS", "FROM_SHARED", "CABOOSE_ENVIRONMENT_NAME"]


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        seen = {name: os.environ.get(name) for name in NAMES}
        body = json.dumps({"text": "{text}", "sha": os.environ.get("CABOOSE_GIT_COMMIT_SHA"),
                           "env": seen}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


ThreadingHTTPServer(("0.0.0.0", int(os.environ["PORT"])), Handler).serve_forever()
"""


def app_source(text: str) -> dict[str, str]:
    return {"main.py": ENV_APP.replace("{text}", text)}


@pytest.fixture(scope="module")
def api(platform: Platform) -> Any:
    client = Api(platform)
    yield client
    client.http.close()


class Hook:
    """A service's GitHub webhook, delivering signed payloads through Traefik."""

    def __init__(self, platform: Platform, api: Api, target: Target) -> None:
        self.platform = platform
        created = api.call("POST", f"/services/{target.service_id}/webhooks", json={}, expect=201)
        self.id, self.secret = created["id"], created["secret"]
        assert created["url"].endswith(f"/api/v1/hooks/github/{self.id}")

    def send(self, event: str, payload: dict[str, Any]) -> dict[str, Any]:
        body = json.dumps(payload).encode()
        response = self.platform.request(
            "POST",
            f"/api/v1/hooks/github/{self.id}",
            content=body,
            headers={
                "Content-Type": "application/json",
                "X-GitHub-Event": event,
                "X-GitHub-Delivery": str(uuid.uuid4()),
                "X-Hub-Signature-256": github_signature(self.secret, body),
            },
        )
        assert response.status_code in (200, 202), response.text
        answer: dict[str, Any] = response.json()
        return answer


def git(work: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Ada",
        "GIT_AUTHOR_EMAIL": "ada@example.com",
        "GIT_COMMITTER_NAME": "Ada",
        "GIT_COMMITTER_EMAIL": "ada@example.com",
    }
    done = subprocess.run(
        ["git", *args], cwd=work, check=True, env=env, capture_output=True, text=True
    )
    return done.stdout.strip()


def push_payload(sha: str, message: str) -> dict[str, Any]:
    commit = {
        "id": sha,
        "message": message,
        "author": {"name": "Ada", "email": "ada@example.com"},
        "added": [],
        "modified": ["main.py"],
        "removed": [],
    }
    return {
        "ref": "refs/heads/main",
        "before": "0" * 39 + "1",
        "after": sha,
        "created": False,
        "deleted": False,
        "forced": False,
        "commits": [commit],
        "head_commit": commit,
    }


def pr_payload(number: int, action: str, sha: str, branch: str) -> dict[str, Any]:
    return {
        "action": action,
        "number": number,
        "pull_request": {
            "number": number,
            "title": "A preview",
            "user": {"login": "ada"},
            "head": {"sha": sha, "ref": branch, "repo": SHOP_REPO},
            "base": {"ref": "main", "repo": SHOP_REPO},
        },
    }


def deployment_of(
    api: Api, target: Target, sha: str, environment_id: str | None = None
) -> dict[str, Any] | None:
    query = f"?environment_id={environment_id}" if environment_id else ""
    listed = api.call("GET", f"/services/{target.service_id}/deployments{query}")
    found = [d for d in listed["items"] if d["commit_sha"] == sha]
    return found[0] if found else None


def wait_deployed(
    api: Api, target: Target, sha: str, environment_id: str | None = None
) -> dict[str, Any]:
    wait_for(
        lambda: deployment_of(api, target, sha, environment_id) is not None,
        60,
        f"a deployment of {sha[:12]}",
    )
    found = deployment_of(api, target, sha, environment_id)
    assert found is not None
    return api.wait(found["id"], {"ACTIVE"}, timeout_s=TIMEOUT_S)


def set_variables(api: Api, target: Target) -> None:
    """A shared variable, another service's variable, and references to both."""
    api.call(
        "PUT",
        f"/environments/{target.environment_id}/shared-variables",
        json={"variables": {"SHARED_KEY": SHARED_VALUE}},
    )
    db = api.call("POST", f"/projects/{target.project_id}/services", json={"name": "db"})
    api.call(
        "PUT",
        f"/services/{db['id']}/variables?environment_id={target.environment_id}",
        json={"variables": {"PASSWORD": DB_PASSWORD}, "sealed": ["PASSWORD"]},
    )
    api.call(
        "PUT",
        f"/services/{target.service_id}/variables?environment_id={target.environment_id}",
        json={
            "variables": {
                "GREETING": "hello",
                "DB_PASS": "${{db.PASSWORD}}",
                "FROM_SHARED": "${{shared.SHARED_KEY}}!",
            }
        },
    )


def test_a_signed_push_deploys_the_commit_with_resolved_variables(
    platform: Platform, api: Api, git_server: GitServer
) -> None:
    git_server.commit(app_source("first"), "First version")
    target = api.target("hook-push", repo_url=git_server.url, branch="main")
    set_variables(api, target)
    hook = Hook(platform, api, target)
    assert hook.send("ping", {"zen": "Design for failure."})["action"] == "pong"

    sha = git_server.commit(app_source("pushed"), "Pushed version\n\nwith a body")
    answer = hook.send("push", push_payload(sha, "Pushed version\n\nwith a body"))
    assert answer["action"] == "queued", answer
    deployment = wait_deployed(api, target, sha)
    assert deployment["commit_message"].startswith("Pushed version")
    assert deployment["commit_author"] == "Ada <ada@example.com>"

    served = fetch(platform, api.hostname(target)).json()
    assert served["text"] == "pushed" and served["sha"] == sha
    assert served["env"] == {
        "GREETING": "hello",
        "DB_PASS": DB_PASSWORD,
        "FROM_SHARED": f"{SHARED_VALUE}!",
        "CABOOSE_ENVIRONMENT_NAME": "production",
    }
    assert DB_PASSWORD not in api.log_text(deployment["id"])

    # Another branch changes nothing.
    ignored = hook.send("push", {**push_payload(sha, "x"), "ref": "refs/heads/other"})
    assert ignored["action"] == "ignored"

    # The database file (and its write-ahead log) never held a value in clear.
    files = [p for p in platform.data_dir.glob("caboose.db*") if p.is_file()]
    assert files, list(platform.data_dir.iterdir())
    for path in files:
        raw = path.read_bytes()
        for secret in (DB_PASSWORD, SHARED_VALUE, hook.secret):
            assert secret.encode() not in raw, f"{secret[:8]}… in clear in {path.name}"


def test_a_pull_request_gets_a_preview_that_closing_takes_down(
    platform: Platform, api: Api, git_server: GitServer
) -> None:
    main_sha = git_server.commit(app_source("main"), "Main version")
    target = api.target("hook-pr", repo_url=git_server.url, branch="main")
    api.call("PATCH", f"/projects/{target.project_id}", json={"preview_environments": True})
    set_variables(api, target)
    hook = Hook(platform, api, target)

    work = git_server.work
    git(work, "checkout", "-q", "-b", "feature/preview")
    for name, text in app_source("preview").items():
        (work / name).write_text(text)
    git(work, "commit", "-q", "-am", "Preview version")
    git(work, "push", "-q", str(git_server.bare), "feature/preview")
    head = git(work, "rev-parse", "HEAD")
    assert head != main_sha

    answer = hook.send("pull_request", pr_payload(3, "opened", head, "feature/preview"))
    assert answer["action"] == "queued", answer

    def preview_environment() -> dict[str, Any] | None:
        listed = api.call("GET", f"/projects/{target.project_id}/environments?name=pr-3")
        return listed["items"][0] if listed["items"] else None

    wait_for(lambda: preview_environment() is not None, 60, "environment pr-3")
    environment = preview_environment()
    assert environment is not None and environment["is_preview"] is True
    deployment = wait_deployed(api, target, head, environment["id"])
    domains = api.call(
        "GET", f"/services/{target.service_id}/domains?environment_id={environment['id']}"
    )
    [hostname] = [d["hostname"] for d in domains["items"]]
    assert hostname.startswith("web-hook-pr-") and "-pr-3" in hostname
    served = fetch(platform, hostname).json()
    assert served["text"] == "preview" and served["sha"] == head
    assert served["env"]["DB_PASS"] == DB_PASSWORD  # copied from production, references work
    assert served["env"]["FROM_SHARED"] == f"{SHARED_VALUE}!"
    assert served["env"]["CABOOSE_ENVIRONMENT_NAME"] == "pr-3"
    pid = deployment["replicas"][0]["pid"]

    answer = hook.send("pull_request", pr_payload(3, "closed", head, "feature/preview"))
    assert answer["action"] == "queued", answer
    wait_for(lambda: preview_environment() is None, 120, "environment pr-3 removed")
    wait_for(lambda: fetch(platform, hostname).status_code == 404, 60, "the preview unrouted")
    wait_for(lambda: not psutil.pid_exists(pid), 60, "the preview's process stopped")
    assert api.call("GET", f"/deployments/{deployment['id']}", expect=404)
