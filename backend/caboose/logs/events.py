"""Project events: what the dashboard follows live (``WS /projects/{id}/events/ws``).

Each project has a Redis Stream ``caboose:events:<project_id>`` (bounded: it is a feed, not a
history; the database keeps deployment history). One field, ``event``, holds the JSON event, so
the stream id orders events and lets a client resume with ``since``. The shapes:

``{"type": "deployment", "deployment_id", "service_id", "environment_id", "status",
"status_reason", "at"}`` — published by the pipeline on every status change. A new deployment
is its first event (``QUEUED``); a removed one is status ``REMOVED``; nothing else is needed.

``{"type": "service", "action": "created" | "updated" | "deleted", "service_id", "name",
"at"}`` — published by the service routes.

Ids are strings (UUIDs as text), ``at`` is ISO 8601 UTC.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final, Literal

from redis.asyncio import Redis

from caboose.logs.streams import decode_entries

EVENTS_PREFIX: Final = "caboose:events:"
# A dashboard that was away longer than this many events reloads the project anyway.
EVENTS_MAXLEN: Final = 1_000

ServiceAction = Literal["created", "updated", "deleted"]


def events_key(project_id: str | uuid.UUID) -> str:
    return f"{EVENTS_PREFIX}{project_id}"


def iso(moment: datetime) -> str:
    """ISO 8601 UTC with milliseconds and a ``Z``."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _at(at: datetime | None) -> str:
    return iso(at or datetime.now(UTC))


def deployment_event(
    *,
    deployment_id: str | uuid.UUID,
    service_id: str | uuid.UUID,
    environment_id: str | uuid.UUID,
    status: str,
    status_reason: str | None = None,
    at: datetime | None = None,
) -> dict[str, Any]:
    return {
        "type": "deployment",
        "deployment_id": str(deployment_id),
        "service_id": str(service_id),
        "environment_id": str(environment_id),
        "status": str(status),
        "status_reason": status_reason,
        "at": _at(at),
    }


def service_event(
    *,
    action: ServiceAction,
    service_id: str | uuid.UUID,
    name: str | None = None,
    at: datetime | None = None,
) -> dict[str, Any]:
    return {
        "type": "service",
        "action": action,
        "service_id": str(service_id),
        "name": name,
        "at": _at(at),
    }


async def publish_event(redis: Redis, project_id: str | uuid.UUID, event: Mapping[str, Any]) -> str:
    """Append ``event`` to the project's stream; returns its id."""
    if "type" not in event:
        raise ValueError("an event needs a type")
    payload = json.dumps(dict(event), ensure_ascii=False, separators=(",", ":"), default=str)
    entry_id = await redis.xadd(
        events_key(project_id), {"event": payload}, maxlen=EVENTS_MAXLEN, approximate=True
    )
    return entry_id.decode() if isinstance(entry_id, bytes) else entry_id


def decode_event(entry_id: str, fields: Mapping[str, str]) -> dict[str, Any]:
    """A stored event with its stream ``id`` (the client's resume cursor)."""
    try:
        event = json.loads(fields.get("event", "{}"))
    except json.JSONDecodeError:
        event = {}
    if not isinstance(event, dict):
        event = {}
    return {"id": entry_id, **event}


async def read_events(
    redis: Redis, project_id: str | uuid.UUID, *, since: str | None = None, limit: int = 1_000
) -> list[dict[str, Any]]:
    """Events after ``since`` (all kept ones when None), oldest first."""
    raw = await redis.xrange(events_key(project_id), min=f"({since}" if since else "-", count=limit)
    return [decode_event(i, f) for i, f in decode_entries(raw)]
