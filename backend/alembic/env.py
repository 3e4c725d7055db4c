"""Alembic environment: async engines, one migration path for SQLite and PostgreSQL.

SQLite cannot ALTER most things, so migrations run in batch mode there (copy-and-move tables);
``render_as_batch`` makes autogenerate write batch operations that work on both backends.
"""

from __future__ import annotations

import asyncio
from logging.config import fileConfig
from typing import Any, Literal

from alembic import context
from sqlalchemy.engine import Connection

from caboose.config import get_settings
from caboose.database import create_engine, is_sqlite
from caboose.models import Base
from caboose.models.base import UTCDateTime

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logging", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def _render_item(type_: str, obj: Any, autogen_context: Any) -> str | Literal[False]:
    """Render our column types as plain SQLAlchemy ones: migrations must not import models."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _database_url() -> str:
    url = config.attributes.get("database_url") or get_settings().resolved_database_url
    return str(url)


def _configure(connection: Connection | None = None, url: str | None = None) -> None:
    database_url = url or _database_url()
    context.configure(
        connection=connection,
        url=None if connection is not None else database_url,
        target_metadata=target_metadata,
        render_as_batch=is_sqlite(database_url),
        compare_type=True,
        compare_server_default=False,
        literal_binds=connection is None,
        render_item=_render_item,
    )


def run_migrations_offline() -> None:
    _configure(url=_database_url())
    with context.begin_transaction():
        context.run_migrations()


def _run_sync(connection: Connection) -> None:
    _configure(connection)
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = create_engine(_database_url())
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run_sync)
            await connection.commit()
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:  # called from code that already holds a connection
        _run_sync(connection)
        return
    asyncio.run(_run_async())


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
