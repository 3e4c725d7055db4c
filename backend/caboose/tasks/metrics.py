"""Replica metrics (queue ``monitor``): ``monitor.sample_metrics``, every 10 s from beat.

Samples the CPU and memory of every replica of every ACTIVE deployment, from the pids the deploy
pipeline recorded (``deployment.replicas``), into the Redis series the metrics route reads
(:mod:`caboose.monitoring.sampler`). Only ACTIVE ones: during a rolling deploy the new
deployment's replica 0 and the old one's would otherwise interleave in one series. A sample is
cheap (a few /proc reads per replica) and idempotent; a missed tick is only a gap in a chart.
"""

from __future__ import annotations

from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from caboose.celery_app import resolve_redis_url, task
from caboose.config import get_settings
from caboose.logs.config import live_settings_from
from caboose.models import Deployment, DeploymentStatus
from caboose.monitoring.sampler import MetricsSampler
from caboose.tasks.base import DatabaseTask, run_async, task_session

__all__ = ["sample_active_deployments", "sample_metrics"]


async def sample_active_deployments(session: AsyncSession, sampler: MetricsSampler) -> int:
    """Sample every replica of every ACTIVE deployment; returns the samples stored."""
    rows = await session.execute(
        select(
            Deployment.id, Deployment.service_id, Deployment.environment_id, Deployment.replicas
        ).where(Deployment.status == DeploymentStatus.ACTIVE)
    )
    stored = 0
    for deployment_id, service_id, environment_id, replicas in rows.all():
        stored += await sampler.sample(
            service_id=service_id,
            environment_id=environment_id,
            deployment_id=deployment_id,
            replicas=replicas or [],
        )
    return stored


@task("monitor.sample_metrics", base=DatabaseTask)
def sample_metrics() -> int:
    async def work() -> int:
        settings = get_settings()
        config = live_settings_from(settings)
        redis = Redis.from_url(resolve_redis_url(settings), decode_responses=True)
        try:
            sampler = MetricsSampler(redis, retention_seconds=config.metrics_retention_hours * 3600)
            async with task_session() as session:
                return await sample_active_deployments(session, sampler)
        finally:
            await redis.aclose()

    return run_async(work())
