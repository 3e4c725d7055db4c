"""Sign in with GitHub, end to end against the local GitHub stand-in (real HTTP both ways).

The test's ``client`` plays the browser on Caboose's side (ASGI, with a cookie jar); a second,
real HTTP client plays the browser's visit to "GitHub" (the stand-in), which redirects back with
the code and the state exactly as github.com would.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from caboose.api.auth_cookies import ACCESS_COOKIE, CSRF_COOKIE, REFRESH_COOKIE
from caboose.api.github_oauth import STATE_COOKIE, STATE_KEY_PREFIX, safe_next_path
from caboose.config import Settings
from caboose.core.encryption import DecryptionError
from caboose.core.jwt import decode_token
from caboose.core.keys import platform_keys
from caboose.core.passwords import hash_password
from caboose.core.rate_limit import RateLimiter, RateLimitPolicy
from caboose.models import Role, TeamMember, Tenant, User
from tests.conftest import TEST_SECRET
from tests.github_standin import GitHubStandIn, StandInEmail, StandInUser

LOGIN = "/api/v1/auth/github/login"
CALLBACK = "/api/v1/auth/github/callback"
PUBLIC_URL = "http://testserver"


@pytest.fixture
def github_settings(app: FastAPI, settings: Settings, github_standin: GitHubStandIn) -> Settings:
    """The test app, with GitHub sign-in pointed at the stand-in."""
    configured = settings.model_copy(
        update={
            "github_client_id": github_standin.client_id,
            "github_client_secret": github_standin.client_secret,
            "github_url": github_standin.base_url,
            "github_api_url": github_standin.base_url,
            "public_url": PUBLIC_URL,
        }
    )
    app.state.settings = configured
    return configured


def configure(app: FastAPI, **changes: object) -> None:
    app.state.settings = app.state.settings.model_copy(update=changes)


@pytest.fixture
async def github_http() -> AsyncIterator[httpx.AsyncClient]:
    """The browser's side of github.com: real HTTP to the stand-in, redirects not followed."""
    async with httpx.AsyncClient(timeout=10) as http:
        yield http


@dataclass
class Browser:
    """One browser: Caboose's cookies in ``client``, visits to GitHub through ``github``."""

    client: httpx.AsyncClient
    github: httpx.AsyncClient

    async def start(self, next_path: str | None = None) -> httpx.Response:
        params = {"next": next_path} if next_path is not None else None
        return await self.client.get(LOGIN, params=params)

    async def authorize(self, authorize_url: str) -> str:
        """Visit GitHub's authorize page; returns the callback URL GitHub redirects to."""
        response = await self.github.get(authorize_url)
        assert response.status_code == 302, response.text
        return response.headers["location"]

    async def callback_url(self, next_path: str | None = None) -> str:
        started = await self.start(next_path)
        assert started.status_code == 302, started.text
        return await self.authorize(started.headers["location"])

    async def sign_in(self, next_path: str | None = None) -> httpx.Response:
        return await self.client.get(await self.callback_url(next_path))


@pytest.fixture
def browser(
    github_settings: Settings, client: httpx.AsyncClient, github_http: httpx.AsyncClient
) -> Browser:
    return Browser(client, github_http)


async def other_browser(app: FastAPI, github_http: httpx.AsyncClient) -> AsyncIterator[Browser]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as client:
        yield Browser(client, github_http)


@pytest.fixture
async def victim(app: FastAPI, github_http: httpx.AsyncClient) -> AsyncIterator[Browser]:
    """A second browser, with cookies of its own."""
    async for browser in other_browser(app, github_http):
        yield browser


async def user_count(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(User)) or 0)


async def user_by_github_id(session: AsyncSession, github_id: int) -> User | None:
    return await session.scalar(select(User).where(User.github_id == github_id))


def put_state_cookie(client: httpx.AsyncClient, value: str) -> None:
    """Replace the browser's state cookie (as an attacker who can plant cookies might)."""
    for cookie in [c for c in client.cookies.jar if c.name == STATE_COOKIE]:
        client.cookies.jar.clear(cookie.domain, cookie.path, cookie.name)
    client.cookies.set(STATE_COOKIE, value, domain="testserver.local", path=CALLBACK)


def assert_problem(response: httpx.Response, status: int, *words: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    detail = response.json()["detail"].lower()
    for word in words:
        assert word.lower() in detail, detail


@pytest.fixture
def alice(github_standin: GitHubStandIn) -> StandInUser:
    user = github_standin.add_user(
        "alice-gh",
        name="Alice Liddell",
        emails=[
            StandInEmail("alice.old@example.org", primary=False, verified=True),
            StandInEmail("Alice@Example.com", primary=True, verified=True),
        ],
    )
    github_standin.sign_in_as(user)
    return user


# Starting the sign-in ------------------------------------------------------------------------


async def test_login_redirects_to_github_with_a_stored_single_use_state(
    browser: Browser, github_standin: GitHubStandIn, redis: Redis
) -> None:
    response = await browser.start("/projects")

    assert response.status_code == 302
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}" == github_standin.base_url
    assert location.path == "/login/oauth/authorize"
    query = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert query["client_id"] == github_standin.client_id
    assert query["redirect_uri"] == f"{PUBLIC_URL}{CALLBACK}"
    assert query["scope"] == "read:user user:email"
    assert query["response_type"] == "code"
    assert query["code_challenge_method"] == "S256"
    state = query["state"]
    assert len(state) >= 43  # 32 random bytes, base64url

    stored = await redis.get(STATE_KEY_PREFIX + state)
    assert stored is not None
    assert json.loads(stored)["next"] == "/projects"
    assert 590 <= await redis.ttl(STATE_KEY_PREFIX + state) <= 600

    cookie = next(c for c in browser.client.cookies.jar if c.name == STATE_COOKIE)
    assert cookie.value == state
    assert cookie.path == CALLBACK
    assert cookie.has_nonstandard_attr("HttpOnly")


async def test_every_login_gets_its_own_state(browser: Browser) -> None:
    first = await browser.start()
    second = await browser.start()
    assert first.headers["location"] != second.headers["location"]


async def test_not_configured_is_a_404_problem(
    app: FastAPI, browser: Browser, client: httpx.AsyncClient
) -> None:
    configure(app, github_client_id=None, github_client_secret=None)
    assert_problem(await client.get(LOGIN), 404, "not configured")
    assert_problem(await client.get(CALLBACK, params={"code": "x", "state": "y"}), 404)


# A first sign-in creates the account ---------------------------------------------------------


async def test_first_sign_in_creates_the_account_and_stores_the_token_sealed(
    browser: Browser,
    alice: StandInUser,
    github_standin: GitHubStandIn,
    github_settings: Settings,
    db_session: AsyncSession,
) -> None:
    response = await browser.sign_in()

    assert response.status_code == 302, response.text
    assert response.headers["location"] == "/"
    user = await user_by_github_id(db_session, alice.id)
    assert user is not None
    assert user.email == "alice@example.com"  # the verified primary, normalised
    assert user.name == "Alice Liddell"
    assert user.github_login == "alice-gh"
    assert user.password_hash is None
    assert user.is_active
    assert user.is_instance_owner  # the first account of the instance
    assert user.last_login_at is not None
    membership = await db_session.scalar(select(TeamMember).where(TeamMember.user_id == user.id))
    assert membership is not None
    assert membership.role == Role.OWNER
    workspace = await db_session.get(Tenant, membership.tenant_id)
    assert workspace is not None and workspace.is_personal

    (github_token,) = github_standin.issued_tokens()
    sealed = user.github_token_encrypted
    assert sealed is not None and sealed.startswith("encrypted:v1:")
    keyring = platform_keys(github_settings).oauth_tokens
    assert keyring.decrypt(sealed, aad=f"user:{user.id}:github_token") == github_token
    with pytest.raises(DecryptionError):
        keyring.decrypt(sealed, aad="user:00000000-0000-0000-0000-000000000000:github_token")
    row = (
        await db_session.execute(
            text('SELECT * FROM "user" WHERE github_id = :id'), {"id": alice.id}
        )
    ).one()
    assert all(github_token not in str(value) for value in row)

    # What GitHub saw: the app's credentials, the registered callback, and the PKCE verifier.
    (exchange,) = github_standin.requests_to("/login/oauth/access_token", "POST")
    form = exchange.form()
    assert form["client_id"] == github_standin.client_id
    assert form["client_secret"] == github_standin.client_secret
    assert form["redirect_uri"] == f"{PUBLIC_URL}{CALLBACK}"
    assert form["grant_type"] == "authorization_code"
    assert len(form["code_verifier"]) >= 43
    (profile,) = github_standin.requests_to("/user")
    assert profile.headers["authorization"] == f"Bearer {github_token}"
    assert profile.headers["x-github-api-version"] == "2022-11-28"


async def test_sign_in_sets_the_session_cookies_and_me_works(
    browser: Browser, alice: StandInUser, db_session: AsyncSession
) -> None:
    response = await browser.sign_in()
    assert response.status_code == 302

    set_cookies = response.headers.get_list("set-cookie")
    access = next(c for c in set_cookies if c.startswith(f"{ACCESS_COOKIE}="))
    csrf = next(c for c in set_cookies if c.startswith(f"{CSRF_COOKIE}="))
    assert any(c.startswith(f"{REFRESH_COOKIE}=") for c in set_cookies)
    assert "httponly" in access.lower() and "samesite=lax" in access.lower()
    assert "httponly" not in csrf.lower()  # the dashboard reads it to echo it
    state_cleared = next(c for c in set_cookies if c.startswith(f"{STATE_COOKIE}="))
    assert "max-age=0" in state_cleared.lower()

    user = await user_by_github_id(db_session, alice.id)
    assert user is not None
    claims = decode_token(
        browser.client.cookies[ACCESS_COOKIE], secret=TEST_SECRET, expected_type="access"
    )
    assert claims.subject == str(user.id)

    me = await browser.client.get("/api/v1/me")
    assert me.status_code == 200, me.text
    assert me.json()["email"] == "alice@example.com"
    assert me.json()["github_connected"] is True
    assert me.json()["has_password"] is False


async def test_next_path_is_where_the_sign_in_lands(browser: Browser, alice: StandInUser) -> None:
    response = await browser.sign_in("/projects/web?tab=logs")
    assert response.status_code == 302
    assert response.headers["location"] == "/projects/web?tab=logs"


@pytest.mark.parametrize(
    "next_path",
    [
        "https://evil.example/",
        "//evil.example/path",
        "/\\evil.example",
        "/\t/evil.example",
        "/\n/evil.example",
        "javascript:alert(1)",
        "evil.example",
        "http:/evil.example",
        "/" + "a" * 3000,
        "",
    ],
)
async def test_next_elsewhere_is_ignored(
    browser: Browser, alice: StandInUser, next_path: str
) -> None:
    response = await browser.sign_in(next_path)
    assert response.status_code == 302, response.text
    assert response.headers["location"] == "/"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/", "/"),
        ("/projects/a?b=c#d", "/projects/a?b=c#d"),
        ("//evil.example", None),
        ("/\\evil.example", None),
        ("https://evil.example", None),
        ("/ok/\x00", None),
        (None, None),
    ],
)
def test_safe_next_path(value: str | None, expected: str | None) -> None:
    assert safe_next_path(value) == expected


# Existing accounts ---------------------------------------------------------------------------


async def test_existing_password_account_is_linked_by_verified_primary_email(
    browser: Browser, alice: StandInUser, db_session: AsyncSession
) -> None:
    password_hash = hash_password("correct horse battery staple")
    existing = User(email="alice@example.com", name="Alice", password_hash=password_hash)
    db_session.add(existing)
    await db_session.flush()

    response = await browser.sign_in()

    assert response.status_code == 302, response.text
    assert await user_count(db_session) == 1
    await db_session.refresh(existing)
    assert existing.github_id == alice.id
    assert existing.github_login == "alice-gh"
    assert existing.password_hash == password_hash  # password sign-in keeps working
    assert existing.name == "Alice"  # not overwritten by GitHub's profile


async def test_unverified_primary_email_neither_links_nor_creates(
    browser: Browser, github_standin: GitHubStandIn, db_session: AsyncSession
) -> None:
    existing = User(email="victim@example.com", name="Victim", password_hash=None)
    db_session.add(existing)
    await db_session.flush()
    intruder = github_standin.add_user(
        "intruder",
        emails=[
            StandInEmail("victim@example.com", primary=True, verified=False),
            StandInEmail("intruder@example.net", primary=False, verified=True),
        ],
    )
    github_standin.sign_in_as(intruder)

    response = await browser.sign_in()

    assert_problem(response, 400, "verified primary email")
    assert await user_count(db_session) == 1
    await db_session.refresh(existing)
    assert existing.github_id is None and existing.github_token_encrypted is None


async def test_verified_secondary_email_does_not_link(
    browser: Browser, github_standin: GitHubStandIn, db_session: AsyncSession
) -> None:
    existing = User(email="shared@example.com", name="Shared", password_hash=None)
    db_session.add(existing)
    await db_session.flush()
    gh_user = github_standin.add_user(
        "bob",
        emails=[
            StandInEmail("bob@example.net", primary=True, verified=True),
            StandInEmail("shared@example.com", primary=False, verified=True),
        ],
    )
    github_standin.sign_in_as(gh_user)

    response = await browser.sign_in()

    assert response.status_code == 302, response.text
    await db_session.refresh(existing)
    assert existing.github_id is None
    created = await user_by_github_id(db_session, gh_user.id)
    assert created is not None and created.email == "bob@example.net"


async def test_returning_user_is_found_by_github_id_after_changing_email_and_login(
    browser: Browser,
    victim: Browser,
    alice: StandInUser,
    github_standin: GitHubStandIn,
    db_session: AsyncSession,
) -> None:
    assert (await browser.sign_in()).status_code == 302
    user = await user_by_github_id(db_session, alice.id)
    assert user is not None
    first_login_at = user.last_login_at
    alice.emails = [StandInEmail("alice@new-job.example", primary=True, verified=True)]
    alice.login = "alice-renamed"

    response = await victim.sign_in()  # another browser, same GitHub account

    assert response.status_code == 302, response.text
    assert await user_count(db_session) == 1
    await db_session.refresh(user)
    assert user.email == "alice@example.com"  # Caboose's email is the user's to change
    assert user.github_login == "alice-renamed"
    assert user.last_login_at is not None and first_login_at is not None
    assert user.last_login_at >= first_login_at
    # The returning sign-in did not need the email addresses at all.
    assert len(github_standin.requests_to("/user/emails")) == 1


async def test_email_of_an_account_linked_to_another_github_account_is_a_conflict(
    browser: Browser, alice: StandInUser, db_session: AsyncSession
) -> None:
    existing = User(email="alice@example.com", name="Alice", password_hash=None, github_id=1)
    db_session.add(existing)
    await db_session.flush()

    assert_problem(await browser.sign_in(), 409, "different github account")
    await db_session.refresh(existing)
    assert existing.github_id == 1 and existing.github_token_encrypted is None


async def test_disabled_account_cannot_sign_in(
    browser: Browser, alice: StandInUser, db_session: AsyncSession
) -> None:
    existing = User(email="alice@example.com", name="Alice", password_hash=None, is_active=False)
    db_session.add(existing)
    await db_session.flush()

    response = await browser.sign_in()

    assert_problem(response, 401, "disabled")
    assert ACCESS_COOKIE not in response.cookies
    await db_session.refresh(existing)
    assert existing.github_id is None and existing.last_login_at is None


# Registration closed -------------------------------------------------------------------------


async def test_registration_closed_refuses_new_accounts(
    app: FastAPI, browser: Browser, alice: StandInUser, db_session: AsyncSession
) -> None:
    configure(app, registration_open=False)

    response = await browser.sign_in()

    assert_problem(response, 403, "invitation")
    assert ACCESS_COOKIE not in response.cookies
    assert await user_count(db_session) == 0


async def test_registration_closed_still_lets_existing_accounts_in(
    app: FastAPI, browser: Browser, alice: StandInUser, db_session: AsyncSession
) -> None:
    configure(app, registration_open=False)
    db_session.add(User(email="alice@example.com", name="Alice", password_hash=None))
    await db_session.flush()

    assert (await browser.sign_in()).status_code == 302


# The state -----------------------------------------------------------------------------------


async def test_callback_without_state_is_refused(
    browser: Browser, alice: StandInUser, db_session: AsyncSession
) -> None:
    callback = urlsplit(await browser.callback_url())
    code = parse_qs(callback.query)["code"][0]
    assert_problem(await browser.client.get(CALLBACK, params={"code": code}), 400, "state")
    assert await user_count(db_session) == 0


async def test_forged_state_is_refused_before_the_code_is_used(
    browser: Browser,
    alice: StandInUser,
    github_standin: GitHubStandIn,
    db_session: AsyncSession,
) -> None:
    await browser.start()  # a real state cookie in this browser, for a different state
    forged = "f" * 43
    authorize = f"{github_standin.base_url}/login/oauth/authorize?" + urlencode(
        {
            "client_id": github_standin.client_id,
            "redirect_uri": f"{PUBLIC_URL}{CALLBACK}",
            "state": forged,
        }
    )
    callback_url = await browser.authorize(authorize)

    assert_problem(await browser.client.get(callback_url), 400, "not started in this browser")
    # Even with a cookie to match, a state we never issued is refused.
    put_state_cookie(browser.client, forged)
    assert_problem(await browser.client.get(callback_url), 400, "expired or was already used")

    assert await user_count(db_session) == 0
    assert github_standin.requests_to("/login/oauth/access_token") == []


async def test_state_is_single_use(
    browser: Browser, alice: StandInUser, github_standin: GitHubStandIn, db_session: AsyncSession
) -> None:
    callback_url = await browser.callback_url()
    assert (await browser.client.get(callback_url)).status_code == 302
    cookie = browser.client.cookies.get(STATE_COOKIE)
    assert cookie is None  # cleared by the successful callback
    # Replayed, even with the state cookie put back.
    state = parse_qs(urlsplit(callback_url).query)["state"][0]
    put_state_cookie(browser.client, state)

    assert_problem(await browser.client.get(callback_url), 400, "already used")
    assert await user_count(db_session) == 1
    assert len(github_standin.requests_to("/login/oauth/access_token")) == 1


async def test_expired_state_is_refused(
    browser: Browser, alice: StandInUser, redis: Redis, db_session: AsyncSession
) -> None:
    callback_url = await browser.callback_url()
    state = parse_qs(urlsplit(callback_url).query)["state"][0]
    key = STATE_KEY_PREFIX + state
    # Ten minutes, in a millisecond: let Redis expire it the way it would.
    await redis.pexpire(key, 1)
    deadline = time.monotonic() + 5
    while await redis.exists(key):
        assert time.monotonic() < deadline, "Redis did not expire the state"
        await asyncio.sleep(0.01)

    assert_problem(await browser.client.get(callback_url), 400, "expired")
    assert await user_count(db_session) == 0


async def test_callback_opened_in_another_browser_is_refused(
    browser: Browser, victim: Browser, alice: StandInUser, db_session: AsyncSession, redis: Redis
) -> None:
    """Login CSRF: an attacker's half-finished sign-in, sent to a victim, must not sign them in."""
    callback_url = await browser.callback_url()

    response = await victim.client.get(callback_url)

    assert_problem(response, 400, "not started in this browser")
    assert ACCESS_COOKIE not in victim.client.cookies
    assert await user_count(db_session) == 0
    # The state was not used up by the refused attempt: the attacker gains nothing either way.
    state = parse_qs(urlsplit(callback_url).query)["state"][0]
    assert await redis.exists(STATE_KEY_PREFIX + state)


# GitHub says no, or fails --------------------------------------------------------------------


async def test_access_denied_on_github(
    browser: Browser, alice: StandInUser, github_standin: GitHubStandIn, db_session: AsyncSession
) -> None:
    github_standin.deny_authorization()

    response = await browser.sign_in()

    assert_problem(response, 400, "cancelled")
    assert await user_count(db_session) == 0
    assert github_standin.requests_to("/login/oauth/access_token") == []


async def test_a_code_github_does_not_accept(
    browser: Browser, alice: StandInUser, db_session: AsyncSession
) -> None:
    callback = urlsplit(await browser.callback_url())
    query = {k: v[0] for k, v in parse_qs(callback.query).items()}
    query["code"] = "0" * 20

    response = await browser.client.get(CALLBACK, params=query)

    assert_problem(response, 400, "bad_verification_code")
    assert await user_count(db_session) == 0


async def test_wrong_client_secret_is_reported_as_misconfiguration(
    app: FastAPI, browser: Browser, alice: StandInUser, db_session: AsyncSession
) -> None:
    configure(app, github_client_secret="not-the-secret")

    response = await browser.sign_in()

    assert_problem(response, 502, "incorrect_client_credentials")
    assert await user_count(db_session) == 0


@pytest.mark.parametrize(
    ("method", "path", "status", "body"),
    [
        ("POST", "/login/oauth/access_token", 500, None),
        ("POST", "/login/oauth/access_token", 200, "<html>rate limited</html>"),
        ("GET", "/user", 500, None),
        ("GET", "/user", 200, "not json"),
        ("GET", "/user/emails", 503, None),
        ("GET", "/user/emails", 401, None),
    ],
)
async def test_github_failures_are_502_and_write_nothing(
    browser: Browser,
    alice: StandInUser,
    github_standin: GitHubStandIn,
    db_session: AsyncSession,
    method: str,
    path: str,
    status: int,
    body: str | None,
) -> None:
    github_standin.fail(path, method=method, status=status, text=body)

    response = await browser.sign_in()

    assert_problem(response, 502, "github")
    assert ACCESS_COOKIE not in response.cookies
    assert await user_count(db_session) == 0


async def test_github_api_unreachable_is_502(
    app: FastAPI, browser: Browser, alice: StandInUser, db_session: AsyncSession
) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    configure(app, github_api_url=f"http://127.0.0.1:{port}")

    assert_problem(await browser.sign_in(), 502, "could not be reached")
    assert await user_count(db_session) == 0


async def test_unexpected_profile_shape_is_502(
    browser: Browser, alice: StandInUser, github_standin: GitHubStandIn, db_session: AsyncSession
) -> None:
    github_standin.fail("/user", status=200, json={"login": "no-id"})

    assert_problem(await browser.sign_in(), 502, "unexpected shape")
    assert await user_count(db_session) == 0


# Rate limit ----------------------------------------------------------------------------------


async def test_both_routes_are_rate_limited_per_address(
    app: FastAPI, github_settings: Settings, redis: Redis, redis_url: str
) -> None:
    async for key in redis.scan_iter("caboose:ratelimit*"):
        await redis.delete(key)
    app.state.rate_limiter = RateLimiter(
        redis_url, RateLimitPolicy.parse(reads="100/minute", writes="100/minute", auth="2/minute")
    )
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
    async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as client:
        statuses = [
            (await client.get(LOGIN)).status_code,
            (await client.get(CALLBACK, params={"code": "c", "state": "s"})).status_code,
            (await client.get(LOGIN)).status_code,
        ]
    assert statuses == [302, 400, 429]
