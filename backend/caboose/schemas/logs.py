"""Schemas of logs and replica metrics."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from caboose.logs.entries import LogStreamName


class LogEntryPublic(BaseModel):
    id: str
    ts: datetime
    stream: LogStreamName
    replica: int | None
    line: str


class LogPagePublic(BaseModel):
    """``next``: pass it as ``since`` to continue; null once the page reached the end."""

    items: list[LogEntryPublic]
    next: str | None


MetricsWindow = Literal["1h", "6h", "24h"]


class MetricPointPublic(BaseModel):
    at: datetime
    cpu_percent: float
    memory_bytes: int


class ReplicaMetricsPublic(BaseModel):
    index: int
    deployment_id: uuid.UUID | None
    pid: int | None
    restarts: int
    points: list[MetricPointPublic]


class ServiceMetricsPublic(BaseModel):
    service_id: uuid.UUID
    environment_id: uuid.UUID
    window: MetricsWindow
    resolution_seconds: int
    replicas: list[ReplicaMetricsPublic]
