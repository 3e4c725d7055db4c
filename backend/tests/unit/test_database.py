"""The engine and the per-request session: SQLite pragmas, commit on success, rollback on error."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import event, select, text

from caboose.database import Database, session_scope
from caboose.migrations import upgrade
from caboose.models import Tenant


@pytest.fixture
def fresh_url(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
    upgrade(url)  # synchronous: Alembic runs its own event loop
    return url


@pytest.fixture
async def fresh_database(fresh_url: str) -> AsyncIterator[Database]:
    database = Database(fresh_url)
    try:
        yield database
    finally:
        await database.dispose()


async def test_sqlite_runs_in_wal_mode_with_foreign_keys(fresh_database: Database) -> None:
    async with fresh_database.engine.connect() as connection:
        assert (await connection.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
        assert (await connection.execute(text("PRAGMA foreign_keys"))).scalar() == 1


async def test_session_scope_commits_on_success(fresh_database: Database) -> None:
    async with session_scope(fresh_database.sessionmaker) as session:
        session.add(Tenant(name="Kept", slug="kept"))
    async with fresh_database.sessionmaker() as session:
        assert (await session.execute(select(Tenant.slug))).scalars().all() == ["kept"]


async def test_session_scope_rolls_back_and_reraises(fresh_database: Database) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        async with session_scope(fresh_database.sessionmaker) as session:
            session.add(Tenant(name="Lost", slug="lost"))
            await session.flush()
            raise RuntimeError("boom")
    async with fresh_database.sessionmaker() as session:
        assert (await session.execute(select(Tenant.slug))).scalars().all() == []


async def test_writing_sessions_take_the_sqlite_write_lock_up_front(
    fresh_database: Database,
) -> None:
    # A deferred transaction that reads then writes fails at once ("database is locked") when
    # another process committed in between; writers therefore BEGIN IMMEDIATE. Readers issue no
    # BEGIN at all: each of their statements is its own transaction (as READ COMMITTED).
    statements: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    event.listen(fresh_database.engine.sync_engine, "before_cursor_execute", record)
    async with session_scope(fresh_database.sessionmaker) as writer:
        writer.add(Tenant(name="One", slug="one"))
    async with session_scope(fresh_database.read_sessionmaker) as reader:
        assert (await reader.execute(select(Tenant.slug))).scalars().all() == ["one"]
    begins = [s for s in statements if s.startswith("BEGIN")]
    assert begins == ["BEGIN IMMEDIATE"]
