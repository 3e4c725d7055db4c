"""The worker's side of webhooks, on the real database and Redis with the deploy tests' stand-in
for PM2 and Traefik: ``build.watchPatterns`` from ``railway.json`` skip a pushed build that
changes nothing watched (CANCELLED, with a ``system`` log line saying why), and a closed pull
request takes its preview down (processes, route, environment)."""

from __future__ import annotations

import json
import uuid

from sqlalchemy import select

from caboose.deploys import actions, executor
from caboose.deploys.actions import Outbox
from caboose.deploys.reporting import changed_files_key
from caboose.logs.events import read_events
from caboose.logs.store import decode_entries, stream_key
from caboose.models import (
    Build,
    BuildStatus,
    Deployment,
    DeploymentStatus,
    Domain,
    Environment,
    Webhook,
    WebhookProvider,
)
from caboose.webhooks.payloads import PullRequest, event_to_dict
from caboose.webhooks.processing import process_delivery
from tests.api.test_deploy_tasks import World, site, tarball, world
from tests.factories import persist

__all__ = ["world"]  # a fixture, used by name

WATCHED = {
    "index.html": "<h1>watched</h1>\n",
    "railway.json": json.dumps({"build": {"watchPatterns": ["backend/**", "!**/*.md"]}}),
}


async def log_lines(world: World, deployment_id: uuid.UUID) -> list[str]:
    raw = await world.redis.xrange(stream_key(str(deployment_id)))
    return [fields["line"] for _, fields in decode_entries(raw)]


async def pushed(world: World, files: dict[str, str], changed: list[str]) -> Deployment:
    """A deployment whose push changed ``changed`` (what ``webhooks.processing`` records)."""
    deployment = await world.upload(files)
    await world.redis.set(changed_files_key(deployment.id), json.dumps(changed), ex=60)
    return deployment


async def test_watch_patterns_of_railway_json_skip_the_build(world: World) -> None:
    deployment = await pushed(world, WATCHED, ["docs/guide.md", "backend/NOTES.md"])
    assert await executor.run_build(world.ctx, str(deployment.id)) == "skipped"
    skipped = await world.fresh(deployment.id)
    assert skipped.status == DeploymentStatus.CANCELLED
    assert skipped.status_reason is not None
    assert "none of the 2 changed file(s) matches the watch patterns" in skipped.status_reason
    assert "railway.json" in skipped.status_reason
    build = await world.session.get(Build, skipped.build_id, populate_existing=True)
    assert build is not None and build.status == BuildStatus.CANCELLED
    assert not (world.root / "artifacts").exists() or not any(
        (world.root / "artifacts").rglob("manifest.json")
    )
    assert any("==> Deployment skipped" in line for line in await log_lines(world, deployment.id))
    assert ("deployments.deploy", [str(deployment.id)]) not in world.sent.tasks


async def test_a_push_that_changes_a_watched_file_builds(world: World) -> None:
    deployment = await pushed(world, WATCHED, ["backend/app.py"])
    assert await executor.run_build(world.ctx, str(deployment.id)) == "built"
    # Unknown changed files (no key: a manual deploy, a new branch) never skip.
    manual = await world.upload(WATCHED)
    assert await executor.run_build(world.ctx, str(manual.id)) == "built"


async def test_closing_a_pull_request_takes_its_preview_down(world: World) -> None:
    preview = Environment(project_id=world.project.id, name="pr-9", is_preview=True, pr_number=9)
    webhook = Webhook(
        service_id=world.service.id,
        provider=WebhookProvider.GITHUB,
        secret_encrypted="encrypted:v1:unused",
    )
    await persist(world.session, preview, webhook)
    outbox = Outbox()
    archive = world.root / "preview.tar.gz"
    archive.write_bytes(tarball(site("preview")))
    deployment = await actions.deploy_upload(
        world.session,
        outbox,
        service=world.service,
        environment=preview,
        upload_path=archive,
        base_domain="localhost",
    )
    await world.session.commit()
    await outbox.flush(world.redis, world.sent)
    live = await world.ship(deployment)
    assert live.status == DeploymentStatus.ACTIVE
    assert world.runtime.states and world.router.routes
    hostname = await world.session.scalar(
        select(Domain.hostname).where(Domain.environment_id == preview.id)
    )
    assert hostname == f"site-{world.project.name}-pr-9.localhost"

    closed = PullRequest(
        number=9,
        action="close",
        head_sha="a" * 40,
        head_branch="feature",
        base_branch="main",
        title=None,
        author=None,
    )
    outcome = await process_delivery(world.ctx, str(webhook.id), event_to_dict(closed))
    assert outcome.action == "preview-removed"
    assert world.runtime.states == {}  # processes stopped
    assert world.router.routes == {}  # route removed
    gone = await world.session.scalar(select(Environment.id).where(Environment.id == preview.id))
    assert gone is None
    assert await world.session.scalar(select(Deployment.id).where(Deployment.id == live.id)) is None
    stored = await world.session.get(Webhook, webhook.id, populate_existing=True)
    assert stored is not None and stored.last_delivery_status == "preview-removed: pr-9 removed"
    events = await read_events(world.redis, world.project.id)
    assert any(e["type"] == "webhook" and e["action"] == "preview-removed" for e in events)

    again = await process_delivery(world.ctx, str(webhook.id), event_to_dict(closed))
    assert again.action == "ignored"  # nothing left: idempotent
