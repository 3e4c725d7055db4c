"""Workspaces, their members and invitations."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import Query
from pydantic import AfterValidator, AliasChoices, Field, field_validator

from caboose.models import Role
from caboose.schemas.common import PublicModel, StrictModel, TimestampedPublic
from caboose.schemas.identity import Email
from caboose.schemas.projects import reject_null


def single_line(value: str) -> str:
    """Names are shown on one line, and PostgreSQL text cannot hold NUL: no control characters."""
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError("must not contain control characters or line breaks")
    return value


# Control characters in a query or body would otherwise reach the database (a 500 on NUL).
CONTROL_CHARACTERS_PATTERN = r"^[^\x00-\x1f\x7f]*$"

# `?name=` on every list: an exact match.
NameFilter = Annotated[
    str | None,
    Query(max_length=100, pattern=CONTROL_CHARACTERS_PATTERN, description="Exact name."),
]

WorkspaceName = Annotated[
    str,
    Field(min_length=1, max_length=100, description="Shown in the dashboard."),
    AfterValidator(single_line),
]
InviteeEmail = Annotated[Email, AfterValidator(single_line)]


class WorkspaceCreate(StrictModel):
    name: WorkspaceName


class WorkspaceUpdate(StrictModel):
    name: WorkspaceName | None = None

    _name_not_null = field_validator("name", mode="before")(reject_null)


class WorkspacePublic(TimestampedPublic):
    name: str
    slug: str = Field(description="Unique, stable; generated from the name at creation.")
    is_personal: bool
    role: Role = Field(description="Your role in this workspace.")


class MemberCreate(StrictModel):
    email: InviteeEmail = Field(description="The email of an existing account.")
    role: Role = Role.MEMBER


class MemberUpdate(StrictModel):
    role: Role


class MemberPublic(PublicModel):
    user_id: uuid.UUID
    email: str
    name: str
    role: Role
    joined_at: datetime


class InvitationCreate(StrictModel):
    email: InviteeEmail
    role: Role = Role.MEMBER


class InvitationPublic(TimestampedPublic):
    workspace_id: uuid.UUID = Field(validation_alias=AliasChoices("workspace_id", "tenant_id"))
    email: str
    role: Role
    invited_by_id: uuid.UUID | None
    expires_at: datetime
    accepted_at: datetime | None


class InvitationCreated(InvitationPublic):
    token: str = Field(
        description="The single-use secret to send to the invitee. Shown this once; only its "
        "hash is stored."
    )


class InvitationAccept(StrictModel):
    token: str = Field(min_length=1, max_length=200)
