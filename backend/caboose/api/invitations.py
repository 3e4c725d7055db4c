"""Invitations: an expiring, single-use token that lets one email address join a workspace.

Shared by ``POST /workspaces/{id}/invitations`` / ``POST /invitations/accept`` (routes in
``api/workspaces.py``) and by registration, which calls :func:`redeem_invitation` for a freshly
created account (when sign-up is closed, an invitation is the only way in).

Only the token's HMAC is stored (purpose ``"invitation"``), so a database dump cannot be used to
join anything. The token travels out of band (an email, a chat message) and proves nothing but
possession, which is why accepting also requires the signed-in account's email to be the invited
one: a forwarded link is useless to anyone else.

Problems a holder of a token can meet, and what they mean:

- 404 ``not-found``: no invitation has this token (mistyped, or revoked by an admin).
- 410 ``invitation-gone``: it existed but can no longer be used (already accepted, or expired).
- 403 ``forbidden``: it was sent to another email address.
- 409 ``conflict``: the account is already a member of that workspace.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from caboose.core.api_tokens import generate_secret, hash_secret
from caboose.core.errors import AppError, AuthorizationError, ConflictError, NotFoundError
from caboose.core.keys import PlatformKeys
from caboose.models import Invitation, Role, TeamMember, User
from caboose.repositories.workspaces import (
    InvitationRepository,
    MemberRepository,
    find_invitation_by_hash,
    mark_invitation_accepted,
)

INVITATION_PURPOSE: Final = "invitation"
INVITATION_TOKEN_BYTES: Final = 32


class InvitationGoneError(AppError):
    """The invitation existed but cannot be used any more (accepted or expired)."""

    status = 410
    slug = "invitation-gone"
    title = "Invitation no longer valid"


def hash_invitation_token(keys: PlatformKeys, token: str) -> str:
    return hash_secret(token, secret=keys.token_hmac_secret, purpose=INVITATION_PURPOSE)


async def create_invitation(
    session: AsyncSession,
    keys: PlatformKeys,
    *,
    tenant_id: uuid.UUID,
    email: str,
    role: Role,
    invited_by_id: uuid.UUID,
    valid_for: timedelta,
) -> tuple[Invitation, str]:
    """Store a new invitation and return it with its token (which is not stored).

    ``email`` must be normalised. Inviting the same address again replaces the pending
    invitation (a "resend"): the old link stops working, so only the newest one is live.
    """
    already_member = await session.scalar(
        select(TeamMember.id)
        .join(TeamMember.user)
        .where(TeamMember.tenant_id == tenant_id, User.email == email)
    )
    if already_member is not None:
        raise ConflictError(f"{email} is already a member of this workspace")
    repository = InvitationRepository(session, tenant_id)
    for previous in await repository.list_all(email=email, accepted_at=None):
        await repository.delete(previous)
    token = generate_secret(INVITATION_TOKEN_BYTES)
    invitation = await repository.create(
        tenant_id=tenant_id,
        email=email,
        role=role,
        token_hash=hash_invitation_token(keys, token),
        invited_by_id=invited_by_id,
        expires_at=datetime.now(UTC) + valid_for,
    )
    return invitation, token


async def find_pending_invitation(
    session: AsyncSession, keys: PlatformKeys, token: str
) -> Invitation:
    """The invitation this token opens, if it can still be used (see the module docstring).

    Registration can call this *before* creating an account, so a bad token creates nothing.
    """
    invitation = await find_invitation_by_hash(session, hash_invitation_token(keys, token))
    if invitation is None:
        raise NotFoundError("This invitation does not exist or was revoked")
    if invitation.accepted_at is not None:
        raise InvitationGoneError("This invitation has already been used")
    if invitation.expires_at <= datetime.now(UTC):
        raise InvitationGoneError("This invitation has expired: ask for a new one")
    return invitation


def check_invitation_email(invitation: Invitation, email: str) -> None:
    """Refuse an account whose email is not the invited one (compared normalised)."""
    if email.strip().lower() != invitation.email:
        raise AuthorizationError(
            "This invitation was sent to another email address: sign in with that one"
        )


async def redeem_invitation(
    session: AsyncSession, keys: PlatformKeys, token: str, user: User
) -> TeamMember:
    """Make ``user`` a member with the invited role, consuming the invitation exactly once.

    Raises 404/410/403/409 problems as listed in the module docstring; nothing is written then
    (the request's transaction rolls back, including an account created just before).
    """
    invitation = await find_pending_invitation(session, keys, token)
    check_invitation_email(invitation, user.email)
    members = MemberRepository(session, invitation.tenant_id)
    if await members.get_by_user(user.id) is not None:
        raise ConflictError("You are already a member of this workspace")
    if not await mark_invitation_accepted(session, invitation.id, at=datetime.now(UTC)):
        raise InvitationGoneError("This invitation has already been used")
    return await members.create(
        tenant_id=invitation.tenant_id, user_id=user.id, role=invitation.role
    )
