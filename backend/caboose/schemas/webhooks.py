"""Webhooks: what the API accepts and returns (API.md, "Configuration")."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from caboose.models import WebhookProvider
from caboose.schemas.common import StrictModel, TimestampedPublic

__all__ = ["HookAnswer", "WebhookCreate", "WebhookCreated", "WebhookPublic"]


class WebhookCreate(StrictModel):
    """``POST /services/{id}/webhooks``."""

    provider: WebhookProvider = WebhookProvider.GITHUB
    environment_id: uuid.UUID | None = Field(
        default=None,
        description="Where pushes deploy and what previews copy (default: production).",
    )


class WebhookPublic(TimestampedPublic):
    """A webhook. Its secret is never returned again after creation."""

    service_id: uuid.UUID
    provider: WebhookProvider
    is_active: bool
    environment_id: uuid.UUID | None = None
    url: str = Field(default="", description="The payload URL to give GitHub or GitLab.")
    last_delivery_at: datetime | None
    last_delivery_status: str | None


class WebhookCreated(WebhookPublic):
    """The answer to a create: the only time ``secret`` is shown."""

    secret: str = Field(
        description="GitHub: the webhook's Secret. GitLab: its Secret token. Shown once."
    )


class HookAnswer(BaseModel):
    """What a provider gets back for an accepted delivery (202, or 200 for ``ping``)."""

    delivery_id: str
    event: str
    action: Literal["queued", "ignored", "pong"]
    reason: str | None = None
