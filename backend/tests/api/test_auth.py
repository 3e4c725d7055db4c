"""Accounts and sessions as a browser and a CLI see them."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from caboose.core.jwt import create_token
from caboose.models import TeamMember, Tenant, User
from tests.conftest import TEST_SECRET, Caller

PASSWORD = "correct horse battery staple"


async def register(
    client: httpx.AsyncClient, email: str, password: str = PASSWORD, **extra: str
) -> httpx.Response:
    return await client.post(
        "/api/v1/auth/register", json={"email": email, "password": password, "name": "Ada", **extra}
    )


async def login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    return await client.post("/api/v1/auth/login", json={"email": email, "password": password})


async def count(session: AsyncSession, model: type) -> int:
    return int(await session.scalar(select(func.count()).select_from(model)) or 0)


# Registration -------------------------------------------------------------------------------


async def test_register_creates_an_account_and_its_workspace(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    users_before = await count(db_session, User)
    response = await register(client, "  Ada@Example.COM ")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["email"] == "ada@example.com"
    assert body["is_instance_owner"] is (users_before == 0)
    assert body["has_password"] is True
    assert "password" not in json.dumps(body).replace("has_password", "")
    [workspace] = body["workspaces"]
    assert workspace["role"] == "owner" and workspace["is_personal"] is True
    stored = await db_session.scalar(select(User).where(User.email == "ada@example.com"))
    assert stored is not None and stored.password_hash is not None
    assert stored.password_hash.startswith("$argon2")


async def test_the_first_account_owns_the_instance(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    await db_session.execute(User.__table__.delete())
    first = await register(client, "first@example.com")
    second = await register(client, "second@example.com")
    assert first.json()["is_instance_owner"] is True
    assert second.json()["is_instance_owner"] is False


async def test_register_refuses_weak_passwords_and_writes_nothing(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    before = (await count(db_session, User), await count(db_session, Tenant))
    response = await register(client, "weak@example.com", password="short")
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "password"
    response = await register(client, "weak@example.com", password="weak@example.com")
    assert response.status_code == 422
    assert (await count(db_session, User), await count(db_session, Tenant)) == before


async def test_register_refuses_a_taken_email_in_any_case(client: httpx.AsyncClient) -> None:
    assert (await register(client, "twice@example.com")).status_code == 201
    response = await register(client, "TWICE@example.com")
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    "body",
    [
        {"email": "not-an-email", "password": PASSWORD},
        {"email": "a@b.c", "password": PASSWORD, "is_instance_owner": True},
        {"email": "a@b.c"},
        {"email": ["a@b.c"], "password": PASSWORD},
    ],
)
async def test_register_validates_its_body(
    client: httpx.AsyncClient, db_session: AsyncSession, body: dict[str, object]
) -> None:
    before = await count(db_session, User)
    response = await client.post("/api/v1/auth/register", json=body)
    assert response.status_code == 422
    assert response.json()["errors"]
    assert await count(db_session, User) == before


async def test_closed_registration_needs_an_invitation(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    app.state.settings = app.state.settings.model_copy(update={"registration_open": False})
    response = await register(client, "closed@example.com")
    assert response.status_code == 403
    assert "invitation" in response.json()["detail"]


# First run -----------------------------------------------------------------------------------


async def test_setup_state_says_whether_the_instance_needs_its_owner(
    app: FastAPI, client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    await db_session.execute(User.__table__.delete())
    await db_session.commit()
    response = await client.get("/api/v1/auth/setup")
    assert response.status_code == 200
    assert response.json() == {
        "needs_setup": True,
        "registration_open": True,
        "github_enabled": False,
    }
    assert (await register(client, "owner@example.com")).json()["is_instance_owner"] is True
    assert (await client.get("/api/v1/auth/setup")).json()["needs_setup"] is False


async def test_setup_state_follows_the_settings_and_tells_nothing_else(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await register(client, "someone@example.com")
    app.state.settings = app.state.settings.model_copy(
        update={
            "registration_open": False,
            "github_client_id": "client-id",
            "github_client_secret": "client-secret-value",
        }
    )
    response = await client.get("/api/v1/auth/setup")
    assert response.json() == {
        "needs_setup": False,
        "registration_open": False,
        "github_enabled": True,
    }
    assert "client-id" not in response.text and "someone" not in response.text


# Sign-in ------------------------------------------------------------------------------------


async def test_login_sets_http_only_cookies_and_returns_tokens(client: httpx.AsyncClient) -> None:
    await register(client, "login@example.com")
    response = await login(client, "LOGIN@example.com")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 15 * 60
    cookies = {c.split("=", 1)[0]: c.lower() for c in response.headers.get_list("set-cookie")}
    assert "httponly" in cookies["caboose_access"] and "samesite=lax" in cookies["caboose_access"]
    assert (
        "httponly" in cookies["caboose_refresh"]
        and "path=/api/v1/auth" in cookies["caboose_refresh"]
    )
    assert "httponly" not in cookies["caboose_csrf"]
    me = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200 and me.json()["email"] == "login@example.com"


@pytest.mark.parametrize(
    ("email", "password"),
    [("login2@example.com", "wrong password entirely"), ("nobody@example.com", PASSWORD)],
)
async def test_login_failures_look_the_same(
    client: httpx.AsyncClient, email: str, password: str
) -> None:
    await register(client, "login2@example.com")
    response = await login(client, email, password)
    assert response.status_code == 401
    assert response.json()["detail"] == "Wrong email or password"
    assert "set-cookie" not in response.headers


async def test_cookie_sessions_need_the_csrf_token_for_changes(client: httpx.AsyncClient) -> None:
    await register(client, "csrf@example.com")
    response = await login(client, "csrf@example.com")
    csrf = response.json()["csrf_token"]
    # httpx keeps the cookies: this is what a browser would send.
    assert (await client.get("/api/v1/me")).status_code == 200
    refused = await client.post("/api/v1/tokens", json={"name": "cli"})
    assert refused.status_code == 403
    assert "X-CSRF-Token" in refused.json()["detail"]
    wrong = await client.post("/api/v1/tokens", json={"name": "cli"}, headers={"X-CSRF-Token": "x"})
    assert wrong.status_code == 403
    accepted = await client.post(
        "/api/v1/tokens", json={"name": "cli"}, headers={"X-CSRF-Token": csrf}
    )
    assert accepted.status_code == 201


async def test_bearer_requests_need_no_csrf_token(owner: Caller, client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/tokens", json={"name": "ci"}, headers=owner.headers)
    assert response.status_code == 201


# Tokens that must not work -----------------------------------------------------------------


def _forge_none_alg(subject: str) -> str:
    def b64(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    claims = {
        "sub": subject,
        "type": "access",
        "jti": "a" * 32,
        "iat": 0,
        "nbf": 0,
        "exp": 2**33,
        "iss": "caboose",
    }
    return f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}."


async def test_bad_tokens_are_refused(owner: Caller, client: httpx.AsyncClient) -> None:
    user_id = str(owner.user.id)
    expired, _ = create_token(
        user_id,
        token_type="access",
        secret=TEST_SECRET,
        expires_in=timedelta(minutes=1),
        now=datetime.now(UTC) - timedelta(minutes=5),
    )
    forged, _ = create_token(
        user_id,
        token_type="access",
        secret="another-secret-that-is-long-enough-0123456789",
        expires_in=timedelta(minutes=5),
    )
    refresh_as_access, _ = create_token(
        user_id, token_type="refresh", secret=TEST_SECRET, expires_in=timedelta(minutes=5)
    )
    for token in (
        expired,
        forged,
        refresh_as_access,
        _forge_none_alg(user_id),
        "garbage",
        "cb_notarealtoken",
    ):
        response = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, token
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["www-authenticate"] == "Bearer"


async def test_no_credentials_is_401(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/me")
    assert response.status_code == 401


async def test_tokens_of_a_deleted_user_stop_working(
    owner: Caller, client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    assert (await client.get("/api/v1/me", headers=owner.headers)).status_code == 200
    await db_session.delete(owner.user)
    await db_session.flush()
    response = await client.get("/api/v1/me", headers=owner.headers)
    assert response.status_code == 401


# Refresh and logout -------------------------------------------------------------------------


async def test_refresh_rotates_and_a_replayed_refresh_token_ends_the_session(
    client: httpx.AsyncClient,
) -> None:
    await register(client, "rotate@example.com")
    first = (await login(client, "rotate@example.com")).json()
    client.cookies.clear()
    second = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}
    )
    assert second.status_code == 200, second.text
    second_pair = second.json()
    assert second_pair["refresh_token"] != first["refresh_token"]
    client.cookies.clear()
    auth = {"Authorization": f"Bearer {second_pair['access_token']}"}
    assert (await client.get("/api/v1/me", headers=auth)).status_code == 200
    # Someone replays the first refresh token: the whole family ends, for them and for us.
    replay = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}
    )
    assert replay.status_code == 401
    client.cookies.clear()
    assert (await client.get("/api/v1/me", headers=auth)).status_code == 401
    again = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": second_pair["refresh_token"]}
    )
    assert again.status_code == 401


async def test_refresh_from_the_cookie_needs_csrf(client: httpx.AsyncClient) -> None:
    await register(client, "cookie-refresh@example.com")
    csrf = (await login(client, "cookie-refresh@example.com")).json()["csrf_token"]
    assert (await client.post("/api/v1/auth/refresh")).status_code == 403
    response = await client.post("/api/v1/auth/refresh", headers={"X-CSRF-Token": csrf})
    assert response.status_code == 200


async def test_logout_revokes_the_session(client: httpx.AsyncClient, redis: Redis) -> None:
    await register(client, "bye@example.com")
    pair = (await login(client, "bye@example.com")).json()
    client.cookies.clear()
    auth = {"Authorization": f"Bearer {pair['access_token']}"}
    response = await client.post(
        "/api/v1/auth/logout", json={"refresh_token": pair["refresh_token"]}, headers=auth
    )
    assert response.status_code == 204
    assert (await client.get("/api/v1/me", headers=auth)).status_code == 401
    refresh = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}
    )
    assert refresh.status_code == 401


async def test_logout_clears_the_cookies(client: httpx.AsyncClient) -> None:
    await register(client, "cookie-bye@example.com")
    csrf = (await login(client, "cookie-bye@example.com")).json()["csrf_token"]
    response = await client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf})
    assert response.status_code == 204
    assert all(
        "max-age=0" in c.lower() or "expires=" in c.lower()
        for c in response.headers.get_list("set-cookie")
    )
    assert (await client.get("/api/v1/me")).status_code == 401


async def test_me_lists_workspaces_and_roles(
    owner: Caller,
    make_caller,
    client: httpx.AsyncClient,  # type: ignore[no-untyped-def]
) -> None:
    from caboose.models import Role

    teammate = await make_caller(role=Role.MEMBER, workspace=owner.workspace)
    body = (await client.get("/api/v1/me", headers=teammate.headers)).json()
    assert [(w["id"], w["role"]) for w in body["workspaces"]] == [
        (str(owner.workspace.id), "member")
    ]


async def test_no_membership_rows_are_created_by_a_failed_registration(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    before = await count(db_session, TeamMember)
    await register(client, "bad", password="x")
    assert await count(db_session, TeamMember) == before
