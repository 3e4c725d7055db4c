"""Webhooks: managing them (secret shown once and stored encrypted, the role matrix, other
workspaces are 404s) and receiving deliveries (signature, replay, malformed and truncated
bodies, unknown ids, other branches, watch patterns, previews) — and what the worker then makes
of an accepted one (``webhooks.processing``), on the real database and Redis."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from caboose.config import Settings
from caboose.core.keys import platform_keys
from caboose.core.secret_fields import webhook_secret_aad
from caboose.deploys.actions import Outbox
from caboose.models import (
    Deployment,
    DeploymentTrigger,
    Environment,
    Project,
    Role,
    Service,
    Webhook,
)
from caboose.variables.store import (
    load_plaintext_variables,
    service_scope,
    shared_scope,
    write_variables,
)
from caboose.webhooks.payloads import event_from_dict
from caboose.webhooks.processing import DELIVER_TASK, FORK_REASON, Outcome, handle_event
from caboose.webhooks.signatures import github_signature
from tests.api.workspace_helpers import API, assert_problem
from tests.conftest import Caller, MakeCaller
from tests.factories import EnvironmentFactory, ProjectFactory, ServiceFactory, persist

HEAD = "c0ffee" + "0" * 34
BEFORE = "b" * 40
SHOP_REPO = {"id": 7, "full_name": "acme/shop"}


@dataclass
class Sent:
    tasks: list[tuple[str, list[str]]] = field(default_factory=list)

    def __call__(self, name: str, args: list[str], task_id: str) -> None:
        self.tasks.append((name, args))

    def named(self, name: str) -> list[list[str]]:
        return [args for task, args in self.tasks if task == name]


@pytest.fixture
def sent(app: FastAPI) -> Sent:
    recorder = Sent()
    app.state.task_sender = recorder
    return recorder


@dataclass
class Hooked:
    project: Project
    environment: Environment
    service: Service
    webhook_id: str
    secret: str
    url: str


async def make_hooked(
    client: httpx.AsyncClient,
    session: AsyncSession,
    caller: Caller,
    *,
    provider: str = "github",
    preview: bool = False,
    watch_patterns: list[str] | None = None,
) -> Hooked:
    project = ProjectFactory.build(
        tenant=caller.workspace, name=f"shop-{uuid.uuid4().hex[:6]}", preview_environments=preview
    )
    environment = EnvironmentFactory.build(project=project, name="production")
    service = ServiceFactory.build(
        project=project,
        name="web",
        repo_url="https://example.com/acme/shop.git",
        branch="main",
        watch_patterns=watch_patterns,
    )
    await persist(session, project, environment, service)
    response = await client.post(
        f"{API}/services/{service.id}/webhooks",
        json={"provider": provider},
        headers=caller.headers,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return Hooked(project, environment, service, body["id"], body["secret"], body["url"])


@pytest.fixture
async def hooked(client: httpx.AsyncClient, db_session: AsyncSession, owner: Caller) -> Hooked:
    return await make_hooked(client, db_session, owner)


def push_payload(
    *,
    branch: str = "main",
    files: list[str] | None = None,
    created: bool = False,
    message: str = "Fix the checkout\n\nwith details",
) -> dict[str, Any]:
    commit = {
        "id": HEAD,
        "message": message,
        "author": {"name": "Ada Lovelace", "email": "ada@example.com", "username": "ada"},
        "added": [],
        "modified": files if files is not None else ["app.py"],
        "removed": [],
    }
    return {
        "ref": f"refs/heads/{branch}",
        "before": BEFORE,
        "after": HEAD,
        "created": created,
        "deleted": False,
        "forced": False,
        "commits": [commit],
        "head_commit": commit,
    }


def pr_payload(number: int, action: str, sha: str = HEAD) -> dict[str, Any]:
    return {
        "action": action,
        "number": number,
        "pull_request": {
            "number": number,
            "title": "New checkout",
            "user": {"login": "ada"},
            "head": {"sha": sha, "ref": "feature/checkout", "repo": SHOP_REPO},
            "base": {"ref": "main", "repo": SHOP_REPO},
        },
    }


async def deliver(
    client: httpx.AsyncClient,
    hooked: Hooked,
    payload: dict[str, Any] | bytes,
    *,
    event: str = "push",
    delivery: str | None = None,
    secret: str | None = None,
    signature: str | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    sent_headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "X-Hub-Signature-256": signature or github_signature(secret or hooked.secret, body),
        **(headers or {}),
    }
    return await client.post(
        f"{API}/hooks/github/{hooked.webhook_id}", content=body, headers=sent_headers
    )


async def deployments_of(session: AsyncSession, service: Service) -> list[Deployment]:
    rows = await session.scalars(
        select(Deployment)
        .where(Deployment.service_id == service.id)
        .order_by(Deployment.created_at)
    )
    return list(rows.all())


async def work(
    session: AsyncSession, settings: Settings, sent: Sent, *, index: int = -1
) -> tuple[Outcome, Outbox]:
    """What the worker does with the ``index``-th delivery the API queued."""
    webhook_id, payload = sent.named(DELIVER_TASK)[index]
    outbox = Outbox()
    outcome = await handle_event(
        session,
        outbox,
        webhook_id=uuid.UUID(webhook_id),
        event=event_from_dict(json.loads(payload)),
        keys=platform_keys(settings),
        base_domain="localhost",
    )
    await session.commit()
    return outcome, outbox


# Managing -----------------------------------------------------------------------------------


async def test_the_secret_is_shown_once_and_stored_encrypted(
    client: httpx.AsyncClient,
    db_session: AsyncSession,
    owner: Caller,
    hooked: Hooked,
    settings: Settings,
) -> None:
    assert len(hooked.secret) >= 40
    assert hooked.url == f"http://localhost:8080/api/v1/hooks/github/{hooked.webhook_id}"
    listed = await client.get(f"{API}/services/{hooked.service.id}/webhooks", headers=owner.headers)
    assert listed.status_code == 200
    [item] = listed.json()["items"]
    assert item["id"] == hooked.webhook_id and item["provider"] == "github"
    assert "secret" not in item and hooked.secret not in listed.text
    raw = (await db_session.execute(text("SELECT * FROM webhook"))).all()
    assert raw and all(hooked.secret not in str(value) for row in raw for value in row)
    stored = await db_session.get(Webhook, uuid.UUID(hooked.webhook_id), populate_existing=True)
    assert stored is not None and stored.secret_encrypted.startswith("encrypted:v1:")
    keyring = platform_keys(settings).webhook_secrets
    aad = webhook_secret_aad(stored.id)
    assert keyring.decrypt(stored.secret_encrypted, aad=aad) == hooked.secret


async def test_a_webhook_can_target_another_environment_of_the_project(
    client: httpx.AsyncClient, db_session: AsyncSession, owner: Caller, hooked: Hooked
) -> None:
    staging = EnvironmentFactory.build(project=hooked.project, name="staging")
    other = EnvironmentFactory.build(project=ProjectFactory.build(tenant=owner.workspace))
    await persist(db_session, staging, other)
    url = f"{API}/services/{hooked.service.id}/webhooks"
    body = {"environment_id": str(staging.id)}
    response = await client.post(url, json=body, headers=owner.headers)
    assert response.status_code == 201
    assert response.json()["environment_id"] == str(staging.id)
    wrong = await client.post(url, json={"environment_id": str(other.id)}, headers=owner.headers)
    assert_problem(wrong, 422)
    bad = await client.post(url, json={"provider": "bitbucket"}, headers=owner.headers)
    assert_problem(bad, 422)


@pytest.mark.parametrize("role", [Role.MEMBER, Role.ADMIN])
async def test_managing_needs_the_admin_role(
    client: httpx.AsyncClient,
    db_session: AsyncSession,
    owner: Caller,
    make_caller: MakeCaller,
    hooked: Hooked,
    role: Role,
) -> None:
    caller = await make_caller(role=role, workspace=owner.workspace)
    url = f"{API}/services/{hooked.service.id}/webhooks"
    listed = await client.get(url, headers=caller.headers)
    assert listed.status_code == 200 and listed.json()["total"] == 1
    created = await client.post(url, json={}, headers=caller.headers)
    deleted = await client.delete(f"{API}/webhooks/{hooked.webhook_id}", headers=caller.headers)
    count = await db_session.scalar(select(func.count()).select_from(Webhook))
    if role == Role.MEMBER:
        assert_problem(created, 403)
        assert_problem(deleted, 403)
        assert count == 1
    else:
        assert created.status_code == 201
        assert deleted.status_code == 204
        assert count == 1  # one created, one deleted


async def test_another_workspace_gets_404s(
    client: httpx.AsyncClient, make_caller: MakeCaller, hooked: Hooked, db_session: AsyncSession
) -> None:
    stranger = await make_caller()
    url = f"{API}/services/{hooked.service.id}/webhooks"
    assert_problem(await client.get(url, headers=stranger.headers), 404)
    assert_problem(await client.post(url, json={}, headers=stranger.headers), 404)
    deleted = await client.delete(f"{API}/webhooks/{hooked.webhook_id}", headers=stranger.headers)
    assert_problem(deleted, 404)
    assert await db_session.get(Webhook, uuid.UUID(hooked.webhook_id)) is not None


async def test_a_deleted_webhook_refuses_deliveries(
    client: httpx.AsyncClient, owner: Caller, hooked: Hooked, sent: Sent
) -> None:
    deleted = await client.delete(f"{API}/webhooks/{hooked.webhook_id}", headers=owner.headers)
    assert deleted.status_code == 204
    assert_problem(await deliver(client, hooked, push_payload()), 404)
    assert sent.tasks == []


# Receiving: refused deliveries ------------------------------------------------------------------


async def assert_nothing_happened(session: AsyncSession, hooked: Hooked, sent: Sent) -> None:
    assert sent.tasks == []
    assert await deployments_of(session, hooked.service) == []
    webhook = await session.get(Webhook, uuid.UUID(hooked.webhook_id), populate_existing=True)
    assert webhook is not None and webhook.last_delivery_at is None


async def test_a_missing_or_wrong_signature_is_401(
    client: httpx.AsyncClient, db_session: AsyncSession, hooked: Hooked, sent: Sent
) -> None:
    payload = push_payload()
    body = json.dumps(payload).encode()
    url = f"{API}/hooks/github/{hooked.webhook_id}"
    unsigned = await client.post(
        url,
        content=body,
        headers={"X-GitHub-Event": "push", "X-GitHub-Delivery": str(uuid.uuid4())},
    )
    assert "not signed" in assert_problem(unsigned, 401)["detail"]
    wrong_secret = await deliver(client, hooked, payload, secret="not-the-secret")
    assert "does not match" in assert_problem(wrong_secret, 401)["detail"]
    other_body = await deliver(
        client, hooked, payload, signature=github_signature(hooked.secret, body + b" ")
    )
    assert_problem(other_body, 401)
    garbage = await deliver(client, hooked, payload, signature="sha256=zz")
    assert_problem(garbage, 401)
    sha1 = await deliver(client, hooked, payload, signature="sha1=" + "0" * 40)
    assert_problem(sha1, 401)
    await assert_nothing_happened(db_session, hooked, sent)


async def test_a_replayed_delivery_is_409(
    client: httpx.AsyncClient, hooked: Hooked, sent: Sent
) -> None:
    delivery = str(uuid.uuid4())
    first = await deliver(client, hooked, push_payload(), delivery=delivery)
    assert first.status_code == 202, first.text
    again = await deliver(client, hooked, push_payload(), delivery=delivery)
    assert "replays are refused" in assert_problem(again, 409)["detail"]
    assert len(sent.named(DELIVER_TASK)) == 1


async def test_a_bad_signature_does_not_use_up_the_delivery_id(
    client: httpx.AsyncClient, hooked: Hooked, sent: Sent
) -> None:
    delivery = str(uuid.uuid4())
    forged = await deliver(client, hooked, push_payload(), delivery=delivery, secret="guess")
    assert_problem(forged, 401)
    real = await deliver(client, hooked, push_payload(), delivery=delivery)
    assert real.status_code == 202


@pytest.mark.parametrize(
    "body",
    [
        json.dumps(push_payload()).encode()[:-20],  # truncated
        b"",
        b"not json",
        b"[1, 2, 3]",
        b"\xff\xfe{}",
        json.dumps({**push_payload(), "after": "not-a-sha"}).encode(),
        json.dumps({**push_payload(), "commits": "many"}).encode(),
    ],
    ids=["truncated", "empty", "not-json", "array", "not-utf8", "bad-sha", "bad-commits"],
)
async def test_a_signed_but_malformed_body_is_400(
    client: httpx.AsyncClient, db_session: AsyncSession, hooked: Hooked, sent: Sent, body: bytes
) -> None:
    response = await deliver(client, hooked, body)
    assert_problem(response, 400)
    await assert_nothing_happened(db_session, hooked, sent)


async def test_missing_event_or_delivery_headers_are_400(
    client: httpx.AsyncClient, db_session: AsyncSession, hooked: Hooked, sent: Sent
) -> None:
    body = json.dumps(push_payload()).encode()
    url = f"{API}/hooks/github/{hooked.webhook_id}"
    signature = github_signature(hooked.secret, body)
    no_event = await client.post(
        url,
        content=body,
        headers={"X-Hub-Signature-256": signature, "X-GitHub-Delivery": "d-1"},
    )
    assert_problem(no_event, 400)
    no_delivery = await client.post(
        url, content=body, headers={"X-Hub-Signature-256": signature, "X-GitHub-Event": "push"}
    )
    assert_problem(no_delivery, 400)
    await assert_nothing_happened(db_session, hooked, sent)


async def test_unknown_webhooks_are_404(
    client: httpx.AsyncClient, hooked: Hooked, sent: Sent
) -> None:
    body = json.dumps(push_payload()).encode()
    headers = {
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": str(uuid.uuid4()),
        "X-Hub-Signature-256": github_signature(hooked.secret, body),
    }
    for path in (f"github/{uuid.uuid4()}", "github/not-a-uuid", f"gitlab/{hooked.webhook_id}"):
        response = await client.post(f"{API}/hooks/{path}", content=body, headers=headers)
        assert_problem(response, 404)
    assert sent.tasks == []


async def test_a_body_over_the_limit_is_413(
    client: httpx.AsyncClient, hooked: Hooked, sent: Sent
) -> None:
    body = b"{" + b" " * (5 * 1024 * 1024) + b"}"
    response = await deliver(client, hooked, body)
    assert_problem(response, 413)
    assert sent.tasks == []


# Receiving: accepted deliveries ----------------------------------------------------------------


async def test_ping_is_answered(
    client: httpx.AsyncClient, db_session: AsyncSession, hooked: Hooked, sent: Sent
) -> None:
    response = await deliver(client, hooked, {"zen": "Keep it simple.", "hook_id": 1}, event="ping")
    assert response.status_code == 200, response.text
    assert response.json()["action"] == "pong"
    assert sent.tasks == []
    webhook = await db_session.get(Webhook, uuid.UUID(hooked.webhook_id), populate_existing=True)
    assert webhook is not None and webhook.last_delivery_status == "pong"


async def test_a_push_to_the_branch_deploys_that_commit(
    client: httpx.AsyncClient,
    db_session: AsyncSession,
    hooked: Hooked,
    sent: Sent,
    settings: Settings,
) -> None:
    response = await deliver(client, hooked, push_payload())
    assert response.status_code == 202, response.text
    assert response.json() == {
        "delivery_id": response.json()["delivery_id"],
        "event": "push",
        "action": "queued",
        "reason": None,
    }
    assert await deployments_of(db_session, hooked.service) == []  # the worker's job
    outcome, outbox = await work(db_session, settings, sent)
    assert outcome.action == "deployed"
    [deployment] = await deployments_of(db_session, hooked.service)
    assert str(deployment.id) == outcome.deployment_id
    assert deployment.environment_id == hooked.environment.id
    assert deployment.trigger == DeploymentTrigger.WEBHOOK
    assert deployment.commit_sha == HEAD
    assert deployment.commit_message == "Fix the checkout\n\nwith details"
    assert deployment.commit_author == "Ada Lovelace <ada@example.com>"
    assert [(name, args) for name, args, _ in outbox.tasks] == [
        ("deployments.build", [str(deployment.id)])
    ]
    # The same commit delivered to the worker again (at-least-once): no second deployment.
    outcome, _ = await work(db_session, settings, sent)
    assert outcome.action == "ignored"
    assert len(await deployments_of(db_session, hooked.service)) == 1


async def test_pushes_to_other_branches_and_tags_are_ignored(
    client: httpx.AsyncClient, db_session: AsyncSession, hooked: Hooked, sent: Sent
) -> None:
    other = await deliver(client, hooked, push_payload(branch="feature/x"))
    assert other.status_code == 202
    assert other.json()["action"] == "ignored"
    assert "feature/x" in other.json()["reason"]
    tag = await deliver(client, hooked, {**push_payload(), "ref": "refs/tags/v1.0"})
    assert tag.json()["action"] == "ignored"
    deleted = await deliver(client, hooked, {**push_payload(), "deleted": True, "after": "0" * 40})
    assert deleted.json()["action"] == "ignored"
    unused = await deliver(client, hooked, {"action": "created"}, event="issues")
    assert unused.status_code == 202 and unused.json()["action"] == "ignored"
    assert sent.tasks == []
    assert await deployments_of(db_session, hooked.service) == []
    webhook = await db_session.get(Webhook, uuid.UUID(hooked.webhook_id), populate_existing=True)
    assert webhook is not None and webhook.last_delivery_status.startswith("ignored")


async def test_watch_patterns_skip_pushes_that_change_nothing_watched(
    client: httpx.AsyncClient,
    db_session: AsyncSession,
    owner: Caller,
    sent: Sent,
    settings: Settings,
) -> None:
    hooked = await make_hooked(
        client, db_session, owner, watch_patterns=["backend/**", "!backend/**/*.md"]
    )
    docs = await deliver(client, hooked, push_payload(files=["docs/guide.md", "backend/N.md"]))
    assert docs.json()["action"] == "queued"
    outcome, outbox = await work(db_session, settings, sent)
    assert outcome.action == "skipped"
    assert outcome.reason == "no changed file matches the watch patterns"
    assert outbox.tasks == []
    assert await deployments_of(db_session, hooked.service) == []
    webhook = await db_session.get(Webhook, uuid.UUID(hooked.webhook_id), populate_existing=True)
    assert webhook is not None
    assert webhook.last_delivery_status == "queued"  # the worker records "skipped" (task)

    # A new branch's push does not list every changed file: it deploys.
    await deliver(client, hooked, push_payload(files=["docs/guide.md"], created=True))
    outcome, _ = await work(db_session, settings, sent)
    assert outcome.action == "deployed"
    code = await deliver(client, hooked, push_payload(files=["backend/app/main.py"]))
    assert code.json()["action"] == "queued"
    outcome, _ = await work(db_session, settings, sent)
    assert outcome.action in {"deployed", "ignored"}  # same commit as above: already deploying


# GitLab ----------------------------------------------------------------------------------------


def gitlab_push(branch: str = "main") -> dict[str, Any]:
    return {
        "object_kind": "push",
        "ref": f"refs/heads/{branch}",
        "before": BEFORE,
        "after": HEAD,
        "total_commits_count": 1,
        "commits": [
            {
                "id": HEAD,
                "message": "GitLab commit\n",
                "author": {"name": "Grace Hopper", "email": "grace@example.com"},
                "added": ["a.py"],
                "modified": [],
                "removed": [],
            }
        ],
    }


async def test_gitlab_pushes_with_the_token(
    client: httpx.AsyncClient,
    db_session: AsyncSession,
    owner: Caller,
    sent: Sent,
    settings: Settings,
) -> None:
    hooked = await make_hooked(client, db_session, owner, provider="gitlab")
    assert hooked.url.endswith(f"/api/v1/hooks/gitlab/{hooked.webhook_id}")
    url = f"{API}/hooks/gitlab/{hooked.webhook_id}"
    body = json.dumps(gitlab_push()).encode()
    event_uuid = str(uuid.uuid4())
    headers = {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Event-UUID": event_uuid}
    wrong = await client.post(url, content=body, headers={**headers, "X-Gitlab-Token": "nope"})
    assert_problem(wrong, 401)
    missing = await client.post(url, content=body, headers=headers)
    assert_problem(missing, 401)
    good = {**headers, "X-Gitlab-Token": hooked.secret}
    truncated = await client.post(url, content=body[:-3], headers=good)
    assert_problem(truncated, 400)
    accepted = await client.post(url, content=body, headers=good)
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["action"] == "queued"
    replay = await client.post(url, content=body, headers=good)
    assert_problem(replay, 409)
    outcome, _ = await work(db_session, settings, sent)
    assert outcome.action == "deployed"
    [deployment] = await deployments_of(db_session, hooked.service)
    assert deployment.commit_sha == HEAD
    assert deployment.commit_message == "GitLab commit\n"
    assert deployment.commit_author == "Grace Hopper <grace@example.com>"
    github_path = await client.post(
        f"{API}/hooks/github/{hooked.webhook_id}", content=body, headers=good
    )
    assert_problem(github_path, 404)


# Previews --------------------------------------------------------------------------------------


async def test_pull_requests_are_ignored_while_previews_are_off(
    client: httpx.AsyncClient, db_session: AsyncSession, hooked: Hooked, sent: Sent
) -> None:
    response = await deliver(client, hooked, pr_payload(7, "opened"), event="pull_request")
    assert response.status_code == 202
    assert response.json()["action"] == "ignored"
    assert "preview environments are off" in response.json()["reason"]
    assert sent.tasks == []
    # Closing still reaches the worker: a preview made before they were switched off goes.
    closed = await deliver(client, hooked, pr_payload(7, "closed"), event="pull_request")
    assert closed.json()["action"] == "queued"


async def test_pull_requests_from_forks_get_no_preview(
    client: httpx.AsyncClient, db_session: AsyncSession, owner: Caller, sent: Sent
) -> None:
    hooked = await make_hooked(client, db_session, owner, preview=True)
    payload = pr_payload(8, "opened")
    payload["pull_request"]["head"]["repo"] = {"id": 99, "full_name": "mallory/shop"}
    response = await deliver(client, hooked, payload, event="pull_request")
    assert response.status_code == 202
    assert response.json() == {**response.json(), "action": "ignored", "reason": FORK_REASON}
    assert sent.tasks == []


async def test_switching_previews_on_through_the_project_settings(
    client: httpx.AsyncClient, owner: Caller, make_caller: MakeCaller, hooked: Hooked
) -> None:
    url = f"{API}/projects/{hooked.project.id}"
    member = await make_caller(role=Role.MEMBER, workspace=owner.workspace)
    denied = await client.patch(url, json={"preview_environments": True}, headers=member.headers)
    assert_problem(denied, 403)
    response = await client.patch(url, json={"preview_environments": True}, headers=owner.headers)
    assert response.status_code == 200
    assert response.json()["preview_environments"] is True


async def test_a_pull_request_gets_its_own_environment_with_copied_variables(
    client: httpx.AsyncClient,
    db_session: AsyncSession,
    owner: Caller,
    sent: Sent,
    settings: Settings,
) -> None:
    hooked = await make_hooked(client, db_session, owner, preview=True)
    keys = platform_keys(settings)
    base = service_scope(hooked.service.id, hooked.environment.id)
    await write_variables(
        db_session,
        keys.variables,
        base,
        values={"DATABASE_URL": "postgres://db/shop", "TOKEN": "sealed-token"},
        sealed=["TOKEN"],
    )
    await write_variables(
        db_session, keys.variables, shared_scope(hooked.environment.id), values={"S": "shared"}
    )
    await db_session.commit()

    opened = await deliver(client, hooked, pr_payload(7, "opened"), event="pull_request")
    assert opened.json()["action"] == "queued"
    outcome, _ = await work(db_session, settings, sent)
    assert outcome.action == "preview", outcome
    preview = await db_session.scalar(
        select(Environment).where(
            Environment.project_id == hooked.project.id, Environment.name == "pr-7"
        )
    )
    assert preview is not None and preview.is_preview and preview.pr_number == 7
    copied = await load_plaintext_variables(
        db_session, keys.variables, service_scope(hooked.service.id, preview.id)
    )
    assert copied == {
        "DATABASE_URL": ("postgres://db/shop", False),
        "TOKEN": ("sealed-token", True),
    }
    shared = await load_plaintext_variables(db_session, keys.variables, shared_scope(preview.id))
    assert shared == {"S": ("shared", False)}
    [deployment] = await deployments_of(db_session, hooked.service)
    assert deployment.environment_id == preview.id
    assert deployment.trigger == DeploymentTrigger.PREVIEW
    assert deployment.commit_sha == HEAD

    # New commits on the pull request deploy again, into the same environment.
    newer = "d" * 40
    synced = await deliver(
        client, hooked, pr_payload(7, "synchronize", sha=newer), event="pull_request"
    )
    assert synced.json()["action"] == "queued"
    outcome, _ = await work(db_session, settings, sent)
    assert outcome.action == "preview"
    deployments = await deployments_of(db_session, hooked.service)
    assert [d.commit_sha for d in deployments] == [HEAD, newer]
    assert {d.environment_id for d in deployments} == {preview.id}
    environments = await db_session.scalar(
        select(func.count())
        .select_from(Environment)
        .where(Environment.project_id == hooked.project.id)
    )
    assert environments == 2

    labelled = await deliver(client, hooked, pr_payload(7, "labeled"), event="pull_request")
    assert labelled.json()["action"] == "ignored"
    closed = await deliver(client, hooked, pr_payload(7, "closed"), event="pull_request")
    assert closed.json()["action"] == "queued"  # taken down by the worker (see the e2e test)


async def test_gitlab_merge_requests_drive_previews(
    client: httpx.AsyncClient,
    db_session: AsyncSession,
    owner: Caller,
    sent: Sent,
    settings: Settings,
) -> None:
    hooked = await make_hooked(client, db_session, owner, provider="gitlab", preview=True)
    url = f"{API}/hooks/gitlab/{hooked.webhook_id}"
    payload = {
        "object_kind": "merge_request",
        "user": {"name": "Grace"},
        "object_attributes": {
            "iid": 4,
            "action": "open",
            "source_branch": "feature",
            "target_branch": "main",
            "last_commit": {"id": HEAD},
            "source_project_id": 11,
            "target_project_id": 11,
        },
    }
    headers = {"X-Gitlab-Event": "Merge Request Hook", "X-Gitlab-Token": hooked.secret}
    body = json.dumps(payload).encode()
    no_id = await client.post(url, content=body, headers=headers)
    assert_problem(no_id, 400)
    keyed = await client.post(url, content=body, headers={**headers, "Idempotency-Key": "k-1"})
    assert keyed.status_code == 202, keyed.text
    assert keyed.json()["action"] == "queued"
    outcome, _ = await work(db_session, settings, sent)
    assert outcome.action == "preview"
    [deployment] = await deployments_of(db_session, hooked.service)
    environment = await db_session.get(Environment, deployment.environment_id)
    assert environment is not None and environment.name == "pr-4" and environment.is_preview
    edited = {**payload, "object_attributes": {**payload["object_attributes"], "action": "update"}}
    answer = await client.post(
        url,
        content=json.dumps(edited).encode(),
        headers={**headers, "X-Gitlab-Event-UUID": str(uuid.uuid4())},
    )
    assert answer.json()["action"] == "ignored"  # a title edit: no new commits
