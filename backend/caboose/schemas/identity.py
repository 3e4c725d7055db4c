"""Accounts, sessions and API tokens."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from caboose.models import Role
from caboose.schemas.common import PublicModel, StrictModel, TimestampedPublic


def normalize_email(value: str) -> str:
    """One spelling per mailbox: trimmed, lower-cased (local parts are case-insensitive in
    practice, and a second account differing only in case is always a mistake)."""
    value = value.strip().lower()
    local, at, domain = value.rpartition("@")
    if (
        not at
        or not local
        or "." not in domain
        or len(value) > 320
        or any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in value)
    ):
        raise ValueError("must be an email address")
    return value


Email = Annotated[str, Field(max_length=320), AfterValidator(normalize_email)]


class RegisterRequest(StrictModel):
    email: Email
    password: str = Field(min_length=1, max_length=1024)
    name: str = Field(default="", max_length=100)
    invitation_token: str | None = Field(
        default=None,
        max_length=200,
        description="Join a workspace (needed when sign-up is closed).",
    )


class LoginRequest(StrictModel):
    email: Email
    password: str = Field(min_length=1, max_length=1024)


class RefreshRequest(StrictModel):
    refresh_token: str | None = Field(
        default=None, max_length=8192, description="Omit to use the refresh cookie."
    )


class SetupState(PublicModel):
    """``GET /auth/setup``: what a signed-out dashboard needs to pick its first page. Public, so
    it says nothing but these three facts about the instance."""

    needs_setup: bool = Field(
        description="No account exists yet: the first one to be created owns the instance."
    )
    registration_open: bool = Field(
        description="Anyone may create an account (otherwise only with an invitation)."
    )
    github_enabled: bool = Field(description="Sign in with GitHub is configured.")


class LogoutRequest(StrictModel):
    refresh_token: str | None = Field(default=None, max_length=8192)


class TokenPair(PublicModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 (a scheme name, not a secret)
    expires_in: int
    csrf_token: str


class WorkspaceMembership(PublicModel):
    id: uuid.UUID
    name: str
    slug: str
    role: Role
    is_personal: bool


class UserPublic(TimestampedPublic):
    email: str
    name: str
    is_instance_owner: bool
    github_login: str | None
    last_login_at: datetime | None


class MePublic(UserPublic):
    workspaces: list[WorkspaceMembership]
    has_password: bool
    github_connected: bool


class ApiTokenCreate(StrictModel):
    name: str = Field(min_length=1, max_length=100)
    expires_in_days: int | None = Field(default=None, ge=1, le=3650)
    project_id: uuid.UUID | None = Field(
        default=None, description="Limit the token to one project; omit for all your workspaces."
    )


class ApiTokenPublic(TimestampedPublic):
    name: str
    prefix: str
    project_id: uuid.UUID | None
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiTokenCreated(ApiTokenPublic):
    token: str = Field(description="The secret. Shown this once; only its hash is stored.")
