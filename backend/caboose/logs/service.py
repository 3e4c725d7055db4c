"""The log shipper as a platform process: ``python -m caboose.logs.service`` (or a
``caboosed shipper`` command calling :func:`main`).

Why its own process rather than a task inside each Celery worker: shipping is a loop that never
ends, and a prefork worker would run one per child (the lease keeps that correct, but all but
one would only wait). One small process is simpler to supervise; several (a restart overlapping
the old one) are safe, since the lease elects one and fences the others.

Redaction uses the service's current variable values (sealed ones included), read from the
database through :func:`caboose.variables.store.secret_values_for_redaction` when the shipper
first sees a deployment; :meth:`LogShipper.invalidate_redactor` refreshes them.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import uuid

from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from caboose.config import Settings, get_settings
from caboose.core.keys import PlatformKeys, platform_keys
from caboose.database import Database, session_scope
from caboose.logs.config import archive_root, live_settings_from
from caboose.logs.redaction import Redactor
from caboose.logs.shipper import LogShipper, RedactorProvider
from caboose.logs.store import LogStore
from caboose.models import Deployment
from caboose.variables.store import secret_values_for_redaction

logger = logging.getLogger("caboose.logs.shipper")


def database_redactor_provider(
    sessionmaker: async_sessionmaker[AsyncSession], keys: PlatformKeys
) -> RedactorProvider:
    """``deployment id → Redactor`` of its service's values in its environment."""

    async def provide(deployment_id: str) -> Redactor:
        async with session_scope(sessionmaker) as session:
            return await redactor_for_deployment(session, keys, deployment_id)

    return provide


async def redactor_for_deployment(
    session: AsyncSession, keys: PlatformKeys, deployment_id: str
) -> Redactor:
    row = (
        await session.execute(
            select(Deployment.service_id, Deployment.environment_id).where(
                Deployment.id == uuid.UUID(deployment_id)
            )
        )
    ).one_or_none()
    if row is None:  # deleted meanwhile: its logs are being deleted too
        return Redactor(())
    return Redactor(
        await secret_values_for_redaction(session, keys, row.service_id, row.environment_id)
    )


async def serve(settings: Settings) -> None:
    """Ship until SIGTERM/SIGINT."""
    from caboose.celery_app import resolve_redis_url

    config = live_settings_from(settings)
    redis = Redis.from_url(resolve_redis_url(settings), decode_responses=True)
    database = Database(settings.resolved_database_url, settings)
    store = LogStore(
        redis,
        archive_root(settings),
        max_lines=config.log_stream_max_lines,
        chunk_lines=config.log_archive_chunk_lines,
    )
    shipper = LogShipper(
        store, database_redactor_provider(database.sessionmaker, platform_keys(settings))
    )
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, shipper.stop)
    logger.info("log shipper started")
    try:
        await shipper.run()
    finally:
        await redis.aclose()
        await database.dispose()
        logger.info("log shipper stopped")


def main() -> None:
    from caboose.core.logging import configure_logging

    settings = get_settings()
    configure_logging(level=settings.log_level, as_json=settings.logs_as_json)
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
