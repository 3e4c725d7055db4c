"""The async engine and the per-request session.

One code path for SQLite (the laptop default) and PostgreSQL (production). SQLite gets WAL mode
(readers don't block the writer), foreign keys (off by default in SQLite, and our cascades depend
on them) and a busy timeout; PostgreSQL gets a sized, pre-pinged pool.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from caboose.config import Settings, get_settings


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin (see _on_sqlite_begin):
    # the module's own implicit BEGIN breaks SAVEPOINTs, which repositories use on every write.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")  # writers queue rather than fail
    cursor.close()


# A session that will write asks for this execution option (see ``session_scope``).
SQLITE_BEGIN_IMMEDIATE = "caboose_sqlite_begin_immediate"
# Read-only sessions ask for this one: no BEGIN at all (see _on_sqlite_begin).
SQLITE_AUTOCOMMIT_READS = "caboose_sqlite_autocommit_reads"


def _on_sqlite_begin(connection: Any) -> None:
    # WAL lets readers run beside one writer, but a *deferred* transaction that reads and then
    # writes fails at once ("database is locked", no busy wait) if another process committed in
    # between. Writers therefore take the write lock up front (IMMEDIATE, which does wait on
    # busy_timeout); readers stay deferred so reads never queue behind each other.
    #
    # Read-only request sessions issue no BEGIN: each SELECT is then its own transaction, which
    # is what PostgreSQL's default READ COMMITTED gives them too, and it saves a statement (three
    # hand-offs to aiosqlite's thread) on every GET.
    options = connection.get_execution_options()
    if options.get(SQLITE_AUTOCOMMIT_READS, False):
        return
    immediate = options.get(SQLITE_BEGIN_IMMEDIATE, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def create_engine(url: str, settings: Settings | None = None) -> AsyncEngine:
    """Build an async engine tuned for the backend the URL names."""
    settings = settings or get_settings()
    if is_sqlite(url):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(
            url,
            echo=settings.db_echo,
            connect_args={"timeout": 30},
        )
        event.listen(engine.sync_engine, "connect", _on_sqlite_connect)
        event.listen(engine.sync_engine, "begin", _on_sqlite_begin)
        return engine
    return create_async_engine(
        url,
        echo=settings.db_echo,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout,
        pool_recycle=settings.db_pool_recycle,
        pool_pre_ping=True,
        connect_args={"server_settings": {"application_name": "caboose"}},
    )


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # expire_on_commit=False: response models read attributes after the commit without a reload.
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


class Database:
    """The engine and session factory of one process, created lazily from settings."""

    def __init__(self, url: str, settings: Settings | None = None) -> None:
        self.url = url
        self.engine = create_engine(url, settings)
        # Sessions that may write take SQLite's write lock at their first statement (see
        # _on_sqlite_begin); read-only requests use ``read_sessionmaker``, which runs without a
        # BEGIN on SQLite. PostgreSQL ignores both options.
        self.sessionmaker = create_sessionmaker(
            self.engine.execution_options(**{SQLITE_BEGIN_IMMEDIATE: True})
        )
        self.read_sessionmaker = create_sessionmaker(
            self.engine.execution_options(**{SQLITE_AUTOCOMMIT_READS: True})
        )

    async def dispose(self) -> None:
        await self.engine.dispose()


@asynccontextmanager
async def session_scope(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """Yield a session; commit when the caller's work succeeded, roll back and re-raise if not."""
    async with sessionmaker() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise
