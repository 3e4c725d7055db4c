"""Creating accounts: shared by registration, GitHub sign-in and ``caboosed create-user``."""

from __future__ import annotations

import re
import secrets

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from caboose.core.errors import ConflictError
from caboose.models import Role, TeamMember, Tenant, User


def slugify(text: str, *, fallback: str = "workspace") -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40].strip("-")
    return slug or fallback


async def unique_workspace_slug(session: AsyncSession, base: str) -> str:
    slug = slugify(base)
    while await session.scalar(select(Tenant.id).where(Tenant.slug == slug)) is not None:
        slug = f"{slugify(base)[:33]}-{secrets.token_hex(3)}"
    return slug


async def create_account(
    session: AsyncSession,
    *,
    email: str,
    name: str,
    password_hash: str | None,
    with_personal_workspace: bool = True,
) -> User:
    """A user (the instance owner if they are the first) and, normally, their own workspace.

    ``email`` must already be normalised. A taken email is a 409.
    """
    if await session.scalar(select(User.id).where(User.email == email)) is not None:
        raise ConflictError("An account with this email already exists")
    is_first = (await session.scalar(select(func.count()).select_from(User))) == 0
    display_name = name or email.partition("@")[0]
    user = User(
        email=email,
        name=display_name,
        password_hash=password_hash,
        is_instance_owner=is_first,
    )
    new_rows: list[object] = [user]
    if with_personal_workspace:
        tenant = Tenant(
            name=f"{display_name}'s workspace"[:100],
            slug=await unique_workspace_slug(session, display_name),
            is_personal=True,
        )
        new_rows += [tenant, TeamMember(user=user, tenant=tenant, role=Role.OWNER)]
    try:
        async with session.begin_nested():  # a concurrent sign-up with the same email: 409
            session.add_all(new_rows)
            await session.flush()
    except IntegrityError as exc:
        raise ConflictError("An account with this email already exists") from exc
    return user
