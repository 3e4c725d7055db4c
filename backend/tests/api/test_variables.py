"""Variables: who sees what (the role matrix), sealed values never read back, writes all or
nothing (422 naming the variable, nothing changed), merge vs replace, delete, ``.env`` import,
shared variables, and rows that never hold a plaintext."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from caboose.config import Settings
from caboose.core.encryption import Keyring
from caboose.core.keys import platform_keys
from caboose.models import (
    BuildStatus,
    Deployment,
    DeploymentStatus,
    DeploymentTrigger,
    Domain,
    DomainKind,
    Environment,
    Project,
    Role,
    Service,
    SharedVariable,
    SourceType,
    Variable,
)
from caboose.variables.names import MASK, MAX_VALUE_BYTES
from caboose.variables.store import (
    UndecryptableVariableError,
    VariableReferenceError,
    load_plaintext_variables,
    load_resolved_environment,
    secret_values_for_redaction,
    service_scope,
)
from tests.api.workspace_helpers import API, assert_invalid, assert_problem
from tests.conftest import Caller, MakeCaller
from tests.factories import (
    BuildFactory,
    DeploymentFactory,
    EnvironmentFactory,
    ProjectFactory,
    ServiceFactory,
    persist,
)

SECRET = "s3cr3t-database-password"


@dataclass
class Stack:
    project: Project
    environment: Environment
    service: Service
    session: AsyncSession

    @property
    def url(self) -> str:
        return f"{API}/services/{self.service.id}/variables"

    @property
    def params(self) -> dict[str, str]:
        return {"environment_id": str(self.environment.id)}

    @property
    def shared_url(self) -> str:
        return f"{API}/environments/{self.environment.id}/shared-variables"


@pytest.fixture
async def stack(owner: Caller, db_session: AsyncSession) -> Stack:
    project = ProjectFactory.build(tenant=owner.workspace, name="shop")
    environment = EnvironmentFactory.build(project=project, name="production")
    service = ServiceFactory.build(project=project, name="api")
    await persist(db_session, project, environment, service)
    return Stack(project, environment, service, db_session)


@dataclass
class Sent:
    """Tasks the API handed to workers (``?deploy=true``)."""

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


@pytest.fixture
def keyring(settings: Settings) -> Keyring:
    return platform_keys(settings).variables


async def put(
    client: httpx.AsyncClient,
    stack: Stack,
    caller: Caller,
    body: dict[str, Any],
    **params: str,
) -> httpx.Response:
    return await client.put(
        stack.url, params={**stack.params, **params}, json=body, headers=caller.headers
    )


async def deployed(stack: Stack) -> Deployment:
    """An ACTIVE deployment of the stack's service (built from its repository)."""
    session = stack.session
    build = BuildFactory.build(
        service=stack.service,
        status=BuildStatus.SUCCEEDED,
        source_type=SourceType.GIT,
        branch="main",
        commit_sha="a" * 40,
    )
    deployment = DeploymentFactory.build(
        service=stack.service,
        environment=stack.environment,
        build=build,
        status=DeploymentStatus.ACTIVE,
        commit_sha="a" * 40,
    )
    await persist(session, build, deployment)
    return deployment


async def stored(session: AsyncSession, stack: Stack) -> dict[str, tuple[str, bool]]:
    """The raw rows as the database holds them now: ``{key: (envelope, is_sealed)}`` (columns,
    not ORM objects, so nothing cached in the test's session is returned)."""
    rows = await session.execute(
        select(Variable.key, Variable.value_encrypted, Variable.is_sealed).where(
            Variable.service_id == stack.service.id,
            Variable.environment_id == stack.environment.id,
        )
    )
    return {key: (envelope, sealed) for key, envelope, sealed in rows.all()}


# Who sees what --------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.OWNER, Role.ADMIN])
async def test_owners_and_admins_write_and_read_values(
    owner: Caller,
    make_caller: MakeCaller,
    client: httpx.AsyncClient,
    stack: Stack,
    role: Role,
) -> None:
    caller = (
        owner if role is Role.OWNER else await make_caller(role=role, workspace=owner.workspace)
    )
    response = await put(client, stack, caller, {"variables": {"DATABASE_URL": SECRET, "X": " 1 "}})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["variables"] == {"DATABASE_URL": SECRET, "X": " 1 "}  # whitespace is kept
    assert body["changed"] == ["DATABASE_URL", "X"]
    assert body["deploy_requested"] is False
    read = await client.get(stack.url, params=stack.params, headers=caller.headers)
    assert read.status_code == 200
    assert read.json() == {
        "variables": {"DATABASE_URL": SECRET, "X": " 1 "},
        "sealed": [],
        "values_visible": True,
        "undecryptable": [],
    }


async def test_members_see_names_with_masked_values_and_cannot_write(
    owner: Caller, make_caller: MakeCaller, client: httpx.AsyncClient, stack: Stack
) -> None:
    await put(client, stack, owner, {"variables": {"DATABASE_URL": SECRET, "DEBUG": "1"}})
    member = await make_caller(role=Role.MEMBER, workspace=owner.workspace)
    read = await client.get(stack.url, params=stack.params, headers=member.headers)
    assert read.status_code == 200
    assert read.json()["variables"] == {"DATABASE_URL": MASK, "DEBUG": MASK}
    assert read.json()["values_visible"] is False
    assert SECRET not in read.text
    assert_problem(await put(client, stack, member, {"variables": {"A": "b"}}), 403)
    assert_problem(
        await client.delete(f"{stack.url}/DEBUG", params=stack.params, headers=member.headers),
        403,
    )
    imported = await client.post(
        f"{stack.url}/import",
        params=stack.params,
        content=b"A=b\n",
        headers={**member.headers, "content-type": "text/plain"},
    )
    assert_problem(imported, 403)
    shared = await client.put(
        stack.shared_url, json={"variables": {"A": "b"}}, headers=member.headers
    )
    assert_problem(shared, 403)
    again = await client.get(stack.url, params=stack.params, headers=owner.headers)
    assert again.json()["variables"] == {"DATABASE_URL": SECRET, "DEBUG": "1"}


async def test_other_workspaces_get_404_everywhere(
    owner: Caller,
    make_caller: MakeCaller,
    client: httpx.AsyncClient,
    stack: Stack,
    db_session: AsyncSession,
) -> None:
    await put(client, stack, owner, {"variables": {"DATABASE_URL": SECRET}})
    stranger = await make_caller()
    headers = stranger.headers
    for response in (
        await client.get(stack.url, params=stack.params, headers=headers),
        await put(client, stack, stranger, {"variables": {"A": "b"}}),
        await client.delete(f"{stack.url}/DATABASE_URL", params=stack.params, headers=headers),
        await client.post(
            f"{stack.url}/import",
            params=stack.params,
            content=b"A=b",
            headers={**headers, "content-type": "text/plain"},
        ),
        await client.get(stack.shared_url, headers=headers),
        await client.put(stack.shared_url, json={"variables": {"A": "b"}}, headers=headers),
    ):
        body = assert_problem(response, 404)
        assert SECRET not in str(body)
    assert set(await stored(db_session, stack)) == {"DATABASE_URL"}


async def test_an_environment_of_another_project_is_not_found(
    owner: Caller, client: httpx.AsyncClient, stack: Stack, db_session: AsyncSession
) -> None:
    other = ProjectFactory.build(tenant=owner.workspace, name="other")
    elsewhere = EnvironmentFactory.build(project=other, name="production")
    await persist(db_session, other, elsewhere)
    params = {"environment_id": str(elsewhere.id)}
    assert_problem(await client.get(stack.url, params=params, headers=owner.headers), 404)
    put_elsewhere = await client.put(
        stack.url, params=params, json={"variables": {"A": "b"}}, headers=owner.headers
    )
    assert_problem(put_elsewhere, 404)
    unknown = {"environment_id": str(uuid.uuid4())}
    assert_problem(await client.get(stack.url, params=unknown, headers=owner.headers), 404)
    assert (
        await db_session.scalar(select(Variable.id).where(Variable.service_id == stack.service.id))
        is None
    )
    assert_invalid(await client.get(stack.url, headers=owner.headers), "environment_id")


# Sealed -------------------------------------------------------------------------------------


async def test_sealed_values_are_never_read_back_but_reach_the_deploy(
    owner: Caller,
    client: httpx.AsyncClient,
    stack: Stack,
    db_session: AsyncSession,
    keyring: Keyring,
) -> None:
    response = await put(
        client, stack, owner, {"variables": {"TOKEN": SECRET, "PLAIN": "p"}, "sealed": ["TOKEN"]}
    )
    assert response.status_code == 200, response.text
    assert response.json()["variables"] == {"TOKEN": MASK, "PLAIN": "p"}
    assert response.json()["sealed"] == ["TOKEN"]
    read = await client.get(stack.url, params=stack.params, headers=owner.headers)
    assert read.json()["variables"]["TOKEN"] == MASK
    assert SECRET not in read.text and SECRET not in response.text

    # Sending the mask back (a read-modify-write round trip) keeps the value; so does a replace.
    round_trip = await put(client, stack, owner, {"variables": read.json()["variables"]})
    assert round_trip.json()["changed"] == []
    replaced = await put(
        client, stack, owner, {"variables": {"TOKEN": MASK, "PLAIN": "q"}, "replace": True}
    )
    assert replaced.json()["changed"] == ["PLAIN"]
    # A sealed value is never compared with what is sent (that would answer guesses): writing
    # the same value again still counts as a change.
    same = await put(client, stack, owner, {"variables": {"TOKEN": SECRET}})
    assert same.json()["changed"] == ["TOKEN"]
    # Sealing cannot be undone: a new value is accepted and stays sealed.
    await put(client, stack, owner, {"variables": {"TOKEN": SECRET + "-2"}})
    rows = await stored(db_session, stack)
    assert rows["TOKEN"][1] is True

    plaintext = await load_plaintext_variables(
        db_session, keyring, service_scope(stack.service.id, stack.environment.id)
    )
    assert plaintext == {"TOKEN": (SECRET + "-2", True), "PLAIN": ("q", False)}
    environment = await load_resolved_environment(
        db_session, keyring, stack.service.id, stack.environment.id
    )
    assert environment["TOKEN"] == SECRET + "-2"


async def test_an_existing_variable_can_be_sealed_in_place(
    owner: Caller, client: httpx.AsyncClient, stack: Stack
) -> None:
    await put(client, stack, owner, {"variables": {"TOKEN": SECRET}})
    response = await put(client, stack, owner, {"variables": {}, "sealed": ["TOKEN"]})
    assert response.status_code == 200, response.text
    assert response.json()["variables"] == {"TOKEN": MASK}
    assert response.json()["changed"] == ["TOKEN"]
    unknown = await put(client, stack, owner, {"variables": {}, "sealed": ["NOPE"]})
    assert_invalid(unknown, "sealed.NOPE")


# All or nothing -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variables", "field", "code"),
    [
        ({"1BAD": "x"}, "variables.1BAD", "key_invalid"),
        ({"BAD-NAME": "x"}, "variables.BAD-NAME", "key_invalid"),
        ({"A" * 256: "x"}, "variables." + "A" * 64 + "…", "key_too_long"),
        ({"PORT": "80"}, "variables.PORT", "key_reserved"),
        ({"CABOOSE_PUBLIC_DOMAIN": "x"}, "variables.CABOOSE_PUBLIC_DOMAIN", "key_reserved"),
        ({"RAILWAY_TOKEN": "x"}, "variables.RAILWAY_TOKEN", "key_reserved"),
        ({"BIG": "x" * (MAX_VALUE_BYTES + 1)}, "variables.BIG", "value_too_large"),
        ({"NUL": "a\x00b"}, "variables.NUL", "value_nul"),
        ({"REF": "${{ not a reference"}, "variables.REF", "reference_malformed"),
    ],
)
async def test_an_invalid_variable_is_a_422_naming_it_and_nothing_changes(
    owner: Caller,
    client: httpx.AsyncClient,
    stack: Stack,
    db_session: AsyncSession,
    variables: dict[str, str],
    field: str,
    code: str,
) -> None:
    await put(client, stack, owner, {"variables": {"KEEP": "old", "GONE_IF_REPLACED": "x"}})
    before = await stored(db_session, stack)
    for replace in (False, True):
        body = {"variables": {"KEEP": "new", "OTHER": "fine", **variables}, "replace": replace}
        problem = assert_invalid(await put(client, stack, owner, body), field)
        assert [e["code"] for e in problem["errors"]] == [code]
        assert field.removeprefix("variables.") in problem["detail"]
        assert "x" * 100 not in problem["detail"]  # never the value
        assert await stored(db_session, stack) == before


async def test_every_problem_is_reported_at_once(
    owner: Caller, client: httpx.AsyncClient, stack: Stack
) -> None:
    body = {"variables": {"PORT": "1", "9X": "2", "OK": "3"}, "sealed": ["MISSING"]}
    problem = assert_invalid(await put(client, stack, owner, body), "variables.PORT")
    assert {e["field"] for e in problem["errors"]} == {
        "variables.PORT",
        "variables.9X",
        "sealed.MISSING",
    }


async def test_a_set_too_large_in_total_is_refused(
    owner: Caller, client: httpx.AsyncClient, stack: Stack, db_session: AsyncSession
) -> None:
    chunk = "v" * (MAX_VALUE_BYTES - 100)
    first = {f"K{i}": chunk for i in range(6)}
    assert (await put(client, stack, owner, {"variables": first})).status_code == 200
    before = await stored(db_session, stack)
    more = {f"M{i}": chunk for i in range(3)}
    problem = assert_invalid(await put(client, stack, owner, {"variables": more}), "variables")
    assert problem["errors"][0]["code"] == "set_too_large"
    assert await stored(db_session, stack) == before
    # Replacing frees the room the old values took.
    replaced = await put(client, stack, owner, {"variables": more, "replace": True})
    assert replaced.status_code == 200, replaced.text


async def test_a_value_that_is_not_a_string_is_a_422(
    owner: Caller, client: httpx.AsyncClient, stack: Stack
) -> None:
    assert_invalid(await put(client, stack, owner, {"variables": {"N": 1}}), "variables.N")
    assert_invalid(await put(client, stack, owner, {"variables": {}, "extra": 1}), "extra")


# Merge, replace, delete -----------------------------------------------------------------------


async def test_merge_then_replace_then_delete(
    owner: Caller, client: httpx.AsyncClient, stack: Stack, db_session: AsyncSession
) -> None:
    await put(client, stack, owner, {"variables": {"A": "1", "B": "2"}})
    merged = await put(client, stack, owner, {"variables": {"B": "20", "C": "3"}})
    assert merged.json()["variables"] == {"A": "1", "B": "20", "C": "3"}
    assert merged.json()["changed"] == ["B", "C"]
    unchanged = await put(client, stack, owner, {"variables": {"A": "1"}})
    assert unchanged.json()["changed"] == []
    envelope_a = (await stored(db_session, stack))["A"][0]
    replaced = await put(client, stack, owner, {"variables": {"A": "1", "D": "4"}, "replace": True})
    assert replaced.json()["variables"] == {"A": "1", "D": "4"}
    assert replaced.json()["changed"] == ["B", "C", "D"]
    assert (await stored(db_session, stack))["A"][0] == envelope_a  # an unchanged value: no write

    deleted = await client.delete(
        f"{stack.url}/A", params={**stack.params, "deploy": "true"}, headers=owner.headers
    )
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["variables"] == {"D": "4"}
    assert deleted.json()["deploy_requested"] is True
    missing = await client.delete(f"{stack.url}/A", params=stack.params, headers=owner.headers)
    assert_problem(missing, 404)
    emptied = await put(client, stack, owner, {"variables": {}, "replace": True})
    assert emptied.json()["variables"] == {}


async def test_without_deploy_nothing_is_redeployed(
    owner: Caller, client: httpx.AsyncClient, stack: Stack, sent: Sent
) -> None:
    stack.service.repo_url = "https://example.com/acme/shop.git"
    await deployed(stack)
    response = await put(client, stack, owner, {"variables": {"A": "1"}})
    assert response.status_code == 200
    assert response.json()["deploy_requested"] is False
    assert response.json()["deployments"] == []
    assert sent.tasks == []


async def test_deploy_true_redeploys_what_runs_with_the_new_values(
    owner: Caller,
    client: httpx.AsyncClient,
    stack: Stack,
    db_session: AsyncSession,
    sent: Sent,
) -> None:
    stack.service.repo_url = "https://example.com/acme/shop.git"
    live = await deployed(stack)
    response = await put(client, stack, owner, {"variables": {"A": "1"}}, deploy="true")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["deploy_requested"] is True
    [new_id] = body["deployments"]
    new = await db_session.get(Deployment, uuid.UUID(new_id), populate_existing=True)
    assert new is not None
    assert new.trigger == DeploymentTrigger.REDEPLOY
    assert new.source_deployment_id == live.id
    assert new.environment_id == stack.environment.id
    assert sent.named("deployments.build") == [[new_id]]

    # Shared variables roll out to every service deployed in the environment.
    shared = await client.put(
        stack.shared_url,
        params={"deploy": "true"},
        json={"variables": {"S": "1"}},
        headers=owner.headers,
    )
    assert shared.status_code == 200, shared.text
    assert len(shared.json()["deployments"]) == 1
    assert len(sent.named("deployments.build")) == 2


async def test_deploy_true_on_a_never_deployed_service_starts_nothing(
    owner: Caller, client: httpx.AsyncClient, stack: Stack, sent: Sent
) -> None:
    response = await put(client, stack, owner, {"variables": {"A": "1"}}, deploy="true")
    assert response.status_code == 200
    assert response.json()["deploy_requested"] is True
    assert response.json()["deployments"] == []
    assert sent.tasks == []


# The database never holds a plaintext ---------------------------------------------------------


async def test_rows_hold_only_envelopes_bound_to_their_row(
    owner: Caller,
    client: httpx.AsyncClient,
    stack: Stack,
    db_session: AsyncSession,
    keyring: Keyring,
) -> None:
    await put(client, stack, owner, {"variables": {"DATABASE_URL": SECRET, "OTHER": "other-value"}})
    await client.put(
        stack.shared_url, json={"variables": {"SHARED_SECRET": SECRET}}, headers=owner.headers
    )
    for table in ("variable", "shared_variable"):
        raw = (await db_session.execute(text(f"SELECT * FROM {table}"))).all()  # noqa: S608
        assert raw
        for row in raw:
            assert all(SECRET not in str(value) for value in row)
        envelopes = (await db_session.execute(text(f"SELECT value_encrypted FROM {table}"))).all()  # noqa: S608
        assert all(e.startswith(f"encrypted:v1:{keyring.current_key_id}:") for (e,) in envelopes)

    # Moving a ciphertext to another row makes it unreadable, never another variable's value.
    rows = await stored(db_session, stack)
    await db_session.execute(
        update(Variable)
        .where(Variable.service_id == stack.service.id, Variable.key == "OTHER")
        .values(value_encrypted=rows["DATABASE_URL"][0])
    )
    await db_session.commit()
    read = await client.get(stack.url, params=stack.params, headers=owner.headers)
    assert read.status_code == 200
    assert read.json()["undecryptable"] == ["OTHER"]
    assert read.json()["variables"]["OTHER"] == MASK
    with pytest.raises(UndecryptableVariableError, match="variable OTHER cannot be decrypted"):
        await load_resolved_environment(db_session, keyring, stack.service.id, stack.environment.id)
    # Writing a new value repairs it.
    repaired = await put(client, stack, owner, {"variables": {"OTHER": "fixed"}})
    assert repaired.json()["undecryptable"] == []


# Import ---------------------------------------------------------------------------------------

DOTENV = """\
# production settings
export DATABASE_URL=postgres://u:p@db/shop?sslmode=require
GREETING="hello\\nworld"  # a comment
LITERAL='no $interpolation \\n here'
PEM="-----BEGIN KEY-----
abc
-----END KEY-----"
EMPTY=
"""


async def test_import_a_dotenv_file_as_text(
    owner: Caller, client: httpx.AsyncClient, stack: Stack
) -> None:
    response = await client.post(
        f"{stack.url}/import",
        params={**stack.params, "deploy": "true"},
        content=DOTENV.encode(),
        headers={**owner.headers, "content-type": "text/plain; charset=utf-8"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["imported"] == ["DATABASE_URL", "GREETING", "LITERAL", "PEM", "EMPTY"]
    assert body["variables"] == {
        "DATABASE_URL": "postgres://u:p@db/shop?sslmode=require",
        "GREETING": "hello\nworld",
        "LITERAL": "no $interpolation \\n here",
        "PEM": "-----BEGIN KEY-----\nabc\n-----END KEY-----",
        "EMPTY": "",
    }
    assert body["deploy_requested"] is True


async def test_import_as_json_with_replace_and_sealed(
    owner: Caller, client: httpx.AsyncClient, stack: Stack
) -> None:
    await put(client, stack, owner, {"variables": {"OLD": "1"}})
    response = await client.post(
        f"{stack.url}/import",
        params=stack.params,
        json={"text": "TOKEN=abc\nB=2\n", "replace": True, "sealed": ["TOKEN"]},
        headers=owner.headers,
    )
    assert response.status_code == 200, response.text
    assert response.json()["variables"] == {"TOKEN": MASK, "B": "2"}
    assert response.json()["sealed"] == ["TOKEN"]


async def test_import_errors_name_the_line_and_import_nothing(
    owner: Caller, client: httpx.AsyncClient, stack: Stack, db_session: AsyncSession
) -> None:
    await put(client, stack, owner, {"variables": {"KEEP": "1"}})
    before = await stored(db_session, stack)

    async def post(body: str) -> httpx.Response:
        return await client.post(
            f"{stack.url}/import",
            params=stack.params,
            content=body.encode(),
            headers={**owner.headers, "content-type": "text/plain"},
        )

    syntax = assert_invalid(await post("A=1\nnot a line\nB='open\n"), "line.2", "line.3")
    assert "line 2" in syntax["detail"]
    reserved = assert_invalid(await post("A=1\n\nPORT=8080\n"), "line.3")
    assert reserved["errors"][0]["code"] == "key_reserved"
    assert "PORT" in reserved["errors"][0]["message"]
    assert await stored(db_session, stack) == before

    wrong_type = await client.post(
        f"{stack.url}/import",
        params=stack.params,
        content=b"\x00\x01",
        headers={**owner.headers, "content-type": "application/octet-stream"},
    )
    assert_problem(wrong_type, 415)
    not_utf8 = await client.post(
        f"{stack.url}/import",
        params=stack.params,
        content=b"A=\xff\n",
        headers={**owner.headers, "content-type": "text/plain"},
    )
    assert_problem(not_utf8, 400)
    bad_json = await client.post(
        f"{stack.url}/import", params=stack.params, json={"txt": "A=1"}, headers=owner.headers
    )
    assert_invalid(bad_json, "text")


# Shared variables -----------------------------------------------------------------------------


async def test_shared_variables(
    owner: Caller, make_caller: MakeCaller, client: httpx.AsyncClient, stack: Stack
) -> None:
    response = await client.put(
        stack.shared_url,
        json={"variables": {"SENTRY_DSN": SECRET, "REGION": "eu"}, "sealed": ["SENTRY_DSN"]},
        headers=owner.headers,
    )
    assert response.status_code == 200, response.text
    assert response.json()["variables"] == {"SENTRY_DSN": MASK, "REGION": "eu"}
    member = await make_caller(role=Role.MEMBER, workspace=owner.workspace)
    read = await client.get(stack.shared_url, headers=member.headers)
    assert read.json()["variables"] == {"SENTRY_DSN": MASK, "REGION": MASK}
    invalid = await client.put(
        stack.shared_url, json={"variables": {"PORT": "1"}}, headers=owner.headers
    )
    assert_invalid(invalid, "variables.PORT")
    deleted = await client.delete(f"{stack.shared_url}/REGION", headers=owner.headers)
    assert deleted.json()["variables"] == {"SENTRY_DSN": MASK}
    imported = await client.post(
        f"{stack.shared_url}/import",
        content=b"A=1\n",
        headers={**owner.headers, "content-type": "text/plain"},
    )
    assert imported.json()["variables"] == {"SENTRY_DSN": MASK, "A": "1"}


# What the deploy pipeline gets ----------------------------------------------------------------


async def test_the_resolved_environment_expands_references_across_the_project(
    owner: Caller,
    client: httpx.AsyncClient,
    stack: Stack,
    db_session: AsyncSession,
    keyring: Keyring,
) -> None:
    web = ServiceFactory.build(project=stack.project, name="web")
    domain = Domain(
        service=stack.service,
        environment_id=stack.environment.id,
        hostname="api-shop.localhost",
        kind=DomainKind.GENERATED,
    )
    await persist(db_session, web, domain)
    await client.put(
        stack.shared_url,
        json={"variables": {"DB_PASSWORD": SECRET}, "sealed": ["DB_PASSWORD"]},
        headers=owner.headers,
    )
    await put(
        client,
        stack,
        owner,
        {"variables": {"DATABASE_URL": "postgres://app:${{shared.DB_PASSWORD}}@db/shop"}},
    )
    web_url = f"{API}/services/{web.id}/variables"
    await client.put(
        web_url,
        params=stack.params,
        json={
            "variables": {
                "API_URL": "https://${{api.CABOOSE_PUBLIC_DOMAIN}}/v1",
                "SELF": "${{RAILWAY_SERVICE_NAME}}@${{CABOOSE_PUBLIC_DOMAIN}}",
                "DB": "${{api.DATABASE_URL}}",
            }
        },
        headers=owner.headers,
    )
    environment = await load_resolved_environment(
        db_session,
        platform_keys_of(keyring),
        web.id,
        stack.environment.id,
        {web.id: {"CABOOSE_PUBLIC_DOMAIN": "web-shop.localhost", "CABOOSE_DEPLOYMENT_ID": "d1"}},
    )
    assert environment["API_URL"] == "https://api-shop.localhost/v1"
    assert environment["SELF"] == "web@web-shop.localhost"
    assert environment["DB"] == f"postgres://app:{SECRET}@db/shop"
    assert environment["CABOOSE_SERVICE_NAME"] == "web"
    assert environment["RAILWAY_DEPLOYMENT_ID"] == "d1"
    assert environment["CABOOSE_PROJECT_NAME"] == "shop"
    assert environment["CABOOSE_ENVIRONMENT_NAME"] == "production"
    assert "PORT" not in environment and "DATABASE_URL" not in environment

    redacted = await secret_values_for_redaction(db_session, keyring, web.id, stack.environment.id)
    assert SECRET in redacted  # reached through api.DATABASE_URL -> shared.DB_PASSWORD
    assert f"postgres://app:{SECRET}@db/shop" in redacted
    assert "web" not in redacted  # platform values and short values are not secrets
    assert redacted == sorted(redacted, key=lambda v: (-len(v), v))

    await put(client, stack, owner, {"variables": {"LOOP": "${{web.BACK}}"}})
    await client.put(
        web_url,
        params=stack.params,
        json={"variables": {"BACK": "${{api.LOOP}}"}},
        headers=owner.headers,
    )
    with pytest.raises(VariableReferenceError) as cycle:
        await load_resolved_environment(db_session, keyring, web.id, stack.environment.id)
    assert cycle.value.variable == "BACK"
    assert str(cycle.value) == "variable BACK: reference cycle BACK -> api.LOOP -> BACK"
    # Redaction still works when references do not resolve: own and shared values.
    fallback = await secret_values_for_redaction(db_session, keyring, web.id, stack.environment.id)
    assert SECRET in fallback


def platform_keys_of(keyring: Keyring) -> Keyring:
    """``load_resolved_environment`` takes the platform keys or the variables keyring."""
    return keyring


async def test_shared_variables_of_an_environment_stay_in_it(
    owner: Caller, client: httpx.AsyncClient, stack: Stack, db_session: AsyncSession
) -> None:
    staging = EnvironmentFactory.build(project=stack.project, name="staging")
    await persist(db_session, staging)
    await client.put(stack.shared_url, json={"variables": {"A": "prod"}}, headers=owner.headers)
    read = await client.get(
        f"{API}/environments/{staging.id}/shared-variables", headers=owner.headers
    )
    assert read.json()["variables"] == {}
    shared = (await db_session.execute(select(SharedVariable.environment_id))).scalars().all()
    assert set(shared) == {stack.environment.id}
