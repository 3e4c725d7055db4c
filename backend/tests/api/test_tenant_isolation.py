"""The isolation walk: every route in the OpenAPI document, called by a user of workspace A with
the ids of workspace B. Nothing of B may be returned, confirmed or changed.

New routes are walked automatically; a route that takes an id this walk does not know fails the
test until the id is added to ``victim_ids`` (so isolation is never forgotten for a new noun).
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from caboose.models import Base, Role, Webhook, WebhookProvider
from tests.conftest import Caller, MakeCaller
from tests.factories import (
    BuildFactory,
    DeploymentFactory,
    EnvironmentFactory,
    ProjectFactory,
    ServiceFactory,
    persist,
)

# Routes that are public by design (no workspace data) or take no workspace-owned id.
PUBLIC_PREFIXES = ("/health", "/ready", "/metrics", "/api/v1/auth/", "/api/v1/hooks/")
PARAM = re.compile(r"\{([^}]+)\}")


async def _snapshot(session: AsyncSession) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, as comparable tuples: what "nothing changed" means."""
    session.expire_all()
    snapshot: dict[str, list[tuple[Any, ...]]] = {}
    for table in Base.metadata.sorted_tables:
        rows = (await session.execute(select(table))).all()
        snapshot[table.name] = sorted(tuple(str(v) for v in row) for row in rows)
    return snapshot


async def test_no_route_leaks_or_changes_another_workspace(
    app: FastAPI,
    client: httpx.AsyncClient,
    db_session: AsyncSession,
    make_caller: MakeCaller,
) -> None:
    attacker: Caller = await make_caller(role=Role.OWNER)
    victim: Caller = await make_caller(role=Role.OWNER)
    project = ProjectFactory.build(tenant=victim.workspace, name="victim-project")
    environment = EnvironmentFactory.build(project=project, name="production")
    service = ServiceFactory.build(project=project, name="victim-service")
    build = BuildFactory.build(service=service)
    deployment = DeploymentFactory.build(service=service, environment=environment, build=build)
    webhook = Webhook(
        service=service, provider=WebhookProvider.GITHUB, secret_encrypted="encrypted:v1:x"
    )
    await persist(db_session, project, environment, service, build, deployment, webhook)

    victim_ids: dict[str, uuid.UUID] = {
        "workspace_id": victim.workspace.id,
        "project_id": project.id,
        "environment_id": environment.id,
        "service_id": service.id,
        "deployment_id": deployment.id,
        "build_id": build.id,
        "user_id": victim.user.id,
        # Ids of nouns whose routes come with later issues: random ids still must be 404s.
        "token_id": uuid.uuid4(),
        "invitation_id": uuid.uuid4(),
        "domain_id": uuid.uuid4(),
        "webhook_id": webhook.id,
        "key": uuid.uuid4(),
    }
    secrets_of_victim = {
        str(v)
        for k, v in victim_ids.items()
        if k not in {"token_id", "invitation_id", "domain_id", "key"}
    }
    secrets_of_victim |= {"victim-project", "victim-service", victim.user.email}

    before = await _snapshot(db_session)
    walked: list[str] = []
    for path, methods in app.openapi()["paths"].items():
        if path.startswith(PUBLIC_PREFIXES):
            continue
        names = PARAM.findall(path)
        unknown = [n for n in names if n not in victim_ids]
        assert not unknown, f"{path}: add an id for {unknown} to the isolation walk"
        url = PARAM.sub(lambda m: str(victim_ids[m.group(1)]), path)
        for method in methods:
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            query = {"environment_id": str(victim_ids["environment_id"])}
            response = await client.request(
                method.upper(),
                url,
                params=query,
                json={} if method != "get" else None,
                headers=attacker.headers,
            )
            walked.append(f"{method.upper()} {path} -> {response.status_code}")
            if names:
                # The attacker may be refused for other reasons first (e.g. a body it can't parse
                # is never reached: ids are checked before bodies), but never with anything that
                # confirms the object: only 404.
                answered = f"{response.status_code}: {response.text[:300]}"
                assert response.status_code == 404, f"{method.upper()} {path} answered {answered}"
            body = response.text
            # An id the attacker sent may be echoed back ("Project <id> was not found"): that tells
            # nothing. Anything else of the victim's in a response is a leak.
            leaked = [s for s in secrets_of_victim if s in body and s not in url]
            assert not leaked, f"{method.upper()} {path} leaked {leaked}"

    assert await _snapshot(db_session) == before, "a request changed another workspace's data"
    assert len(walked) >= 10, walked
    # Sanity: the same walk with the victim's own credentials does reach the objects.
    own = await client.get(f"/api/v1/projects/{victim_ids['project_id']}", headers=victim.headers)
    assert own.status_code == 200, json.dumps(walked)
