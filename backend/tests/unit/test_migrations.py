"""The migrations build the schema the models describe, and unwind completely — on SQLite and on
PostgreSQL (whichever the suite runs on; `make test` runs both)."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from caboose.database import create_engine, is_sqlite
from caboose.migrations import downgrade, upgrade
from caboose.models import Base


def _inspect(url: str, fn: Any) -> Any:
    async def run() -> Any:
        engine = create_engine(url)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(fn)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names()) - {"alembic_version"}


def _differences(url: str) -> list[Any]:
    def compare(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(
            connection,
            opts={"compare_type": True, "render_as_batch": is_sqlite(url)},
        )
        return list(compare_metadata(context, Base.metadata))

    result: list[Any] = _inspect(url, compare)
    return result


def test_upgrade_then_downgrade_then_upgrade(database_url: str) -> None:
    # The session fixture migrated to head already.
    assert _inspect(database_url, _tables) == set(Base.metadata.tables)
    downgrade(database_url, "base")
    try:
        assert _inspect(database_url, _tables) == set()
    finally:
        upgrade(database_url, "head")
    assert _inspect(database_url, _tables) == set(Base.metadata.tables)


def test_models_and_migrations_agree(database_url: str) -> None:
    assert _differences(database_url) == []
