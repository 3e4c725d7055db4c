"""Routes: replica metrics of a service (``/api/v1``) and the platform's ``/metrics``.

``GET /services/{id}/metrics?environment_id=&window=1h|6h|24h`` returns, per replica index,
CPU % and resident memory averaged over buckets (at most ~360 points per window), with the
replica's restart count and the deployment it belongs to as last sampled.

``metrics_router`` serves ``GET /metrics`` (Prometheus text) at the root, outside ``/api/v1``.
It is public unless ``CABOOSE_METRICS_TOKEN`` is set, in which case it wants
``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import hmac
import uuid
from datetime import UTC, datetime
from typing import Annotated, Final

from fastapi import APIRouter, Query, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST

from caboose.api.deps import RedisDep, ServiceAccess, SessionDep
from caboose.celery_app import QUEUES
from caboose.core.errors import AuthenticationError, not_found
from caboose.core.permissions import Permission
from caboose.logs.config import live_settings
from caboose.models import Environment
from caboose.monitoring.prometheus import render, take_snapshot
from caboose.monitoring.sampler import MetricsSampler
from caboose.schemas.logs import (
    MetricPointPublic,
    MetricsWindow,
    ReplicaMetricsPublic,
    ServiceMetricsPublic,
)

router = APIRouter(tags=["metrics"])
metrics_router = APIRouter(tags=["metrics"])

WINDOW_SECONDS: Final[dict[str, int]] = {"1h": 3_600, "6h": 6 * 3_600, "24h": 24 * 3_600}


def _moment(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


@router.get("/services/{service_id}/metrics", response_model=ServiceMetricsPublic)
async def service_metrics(
    access: ServiceAccess,
    session: SessionDep,
    redis: RedisDep,
    environment_id: Annotated[uuid.UUID, Query()],
    window: Annotated[MetricsWindow, Query()] = "1h",
) -> ServiceMetricsPublic:
    """CPU and memory per replica over ``window``, with restart counts."""
    access.require(Permission.LOGS_READ)
    environment = await session.get(Environment, environment_id)
    if environment is None or environment.project_id != access.obj.project_id:
        raise not_found("Environment", environment_id)
    resolution, series = await MetricsSampler(redis).series(
        service_id=access.obj.id,
        environment_id=environment_id,
        window_seconds=WINDOW_SECONDS[window],
    )
    return ServiceMetricsPublic(
        service_id=access.obj.id,
        environment_id=environment_id,
        window=window,
        resolution_seconds=resolution,
        replicas=[
            ReplicaMetricsPublic(
                index=replica.index,
                deployment_id=uuid.UUID(replica.deployment_id) if replica.deployment_id else None,
                pid=replica.pid,
                restarts=replica.restarts,
                points=[
                    MetricPointPublic(
                        at=_moment(point.at_ms),
                        cpu_percent=point.cpu_percent,
                        memory_bytes=point.memory_bytes,
                    )
                    for point in replica.points
                ],
            )
            for replica in series
        ],
    )


@metrics_router.get("/metrics", include_in_schema=False)
async def prometheus_metrics(request: Request, session: SessionDep, redis: RedisDep) -> Response:
    """Prometheus exposition text."""
    token = live_settings(request.app.state).metrics_token
    if token:
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            raise AuthenticationError("This endpoint needs the metrics token")
    snapshot = await take_snapshot(session, redis, QUEUES)
    return Response(render(snapshot), media_type=CONTENT_TYPE_LATEST)
