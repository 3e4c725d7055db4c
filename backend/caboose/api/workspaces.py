"""Routes: workspaces, their members and invitations.

Who may do what comes from the permission matrix (``core/permissions.py``); the rules that are
about *whom* an action targets live here:

- only owners grant or revoke the owner role, remove an owner, or invite an owner;
- admins manage members and admins;
- anyone may leave (remove themselves);
- the last owner can neither leave nor be demoted (409): a workspace always has an owner, and
  whoever wants to get rid of it can delete it instead.

Workspace-wide changes need a person's session or a full API token: a project-scoped token sees
its project's workspace but cannot rename it or touch its members.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response, status
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from caboose.api.accounts import unique_workspace_slug
from caboose.api.deps import (
    CurrentUser,
    InteractivePrincipalDep,
    KeysDep,
    Principal,
    PrincipalDep,
    SessionDep,
    SettingsDep,
    WorkspaceAccess,
)
from caboose.api.invitations import create_invitation, redeem_invitation
from caboose.core.errors import AuthorizationError, ConflictError, NotFoundError, not_found
from caboose.core.permissions import Permission
from caboose.models import Role, TeamMember, Tenant, User
from caboose.repositories.workspaces import (
    InvitationRepository,
    MemberRepository,
    WorkspaceRepository,
)
from caboose.schemas.common import ListParamsDep, PageOf
from caboose.schemas.workspaces import (
    InvitationAccept,
    InvitationCreate,
    InvitationCreated,
    InvitationPublic,
    MemberCreate,
    MemberPublic,
    MemberUpdate,
    NameFilter,
    WorkspaceCreate,
    WorkspacePublic,
    WorkspaceUpdate,
)

router = APIRouter(tags=["workspaces"])

WorkspaceId = Annotated[uuid.UUID, Path(description="The workspace's id.")]
UserId = Annotated[uuid.UUID, Path(description="The member's user id.")]
# A generated slug can collide with one created at the same instant: try again a few times.
_SLUG_ATTEMPTS = 5


def _workspace_public(tenant: Tenant, role: Role) -> WorkspacePublic:
    return WorkspacePublic(
        id=tenant.id,
        name=tenant.name,
        slug=tenant.slug,
        is_personal=tenant.is_personal,
        role=role,
        created_at=tenant.created_at,
        updated_at=tenant.updated_at,
    )


def _member_public(member: TeamMember) -> MemberPublic:
    return MemberPublic(
        user_id=member.user_id,
        email=member.user.email,
        name=member.user.name,
        role=member.role,
        joined_at=member.created_at,
    )


def _require_unscoped(principal: Principal) -> None:
    if principal.project_scope is not None:
        raise AuthorizationError(
            "A project-scoped API token cannot change the workspace or its members"
        )


# Workspaces --------------------------------------------------------------------------------


@router.get("/workspaces", response_model=PageOf[WorkspacePublic])
async def list_workspaces(
    session: SessionDep,
    principal: PrincipalDep,
    params: ListParamsDep,
    name: NameFilter = None,
) -> PageOf[WorkspacePublic]:
    """The workspaces you belong to, each with your role in it."""
    filters: dict[str, Any] = {} if name is None else {"name": name}
    page = await WorkspaceRepository(session, principal.tenant_ids).list(
        filters=filters, pagination=params.pagination, sorting=params.sorting
    )
    return PageOf.from_page(page, [_workspace_public(t, principal.roles[t.id]) for t in page.items])


async def _create_tenant(session: AsyncSession, name: str) -> Tenant:
    repository = WorkspaceRepository(session, [])
    for _ in range(_SLUG_ATTEMPTS - 1):
        slug = await unique_workspace_slug(session, name)
        try:
            return await repository.create(name=name, slug=slug, is_personal=False)
        except ConflictError:
            continue  # taken in the meantime by a concurrent request
    slug = await unique_workspace_slug(session, name)
    return await repository.create(name=name, slug=slug, is_personal=False)


@router.post("/workspaces", response_model=WorkspacePublic, status_code=status.HTTP_201_CREATED)
async def create_workspace(
    body: WorkspaceCreate, session: SessionDep, principal: InteractivePrincipalDep
) -> WorkspacePublic:
    """A new workspace, with you as its owner. Its slug is generated from the name."""
    tenant = await _create_tenant(session, body.name)
    members = MemberRepository(session, tenant.id)
    await members.create(tenant_id=tenant.id, user_id=principal.user_id, role=Role.OWNER)
    return _workspace_public(tenant, Role.OWNER)


@router.get("/workspaces/{workspace_id}", response_model=WorkspacePublic)
async def get_workspace(workspace_id: WorkspaceId, access: WorkspaceAccess) -> WorkspacePublic:
    access.require(Permission.WORKSPACE_READ)
    return _workspace_public(access.obj, access.role)


@router.patch("/workspaces/{workspace_id}", response_model=WorkspacePublic)
async def update_workspace(
    workspace_id: WorkspaceId,
    body: WorkspaceUpdate,
    session: SessionDep,
    access: WorkspaceAccess,
) -> WorkspacePublic:
    """Rename the workspace (admin or owner). The slug stays: links and scripts keep working."""
    access.require(Permission.WORKSPACE_UPDATE)
    _require_unscoped(access.principal)
    values = body.model_dump(exclude_unset=True)
    tenant = await WorkspaceRepository(session, [access.tenant_id]).update(access.obj, **values)
    return _workspace_public(tenant, access.role)


@router.delete(
    "/workspaces/{workspace_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
)
async def delete_workspace(
    workspace_id: WorkspaceId, session: SessionDep, access: WorkspaceAccess
) -> None:
    """Delete the workspace and everything in it: projects, environments, services, variables,
    domains, deployments, memberships, invitations and project-scoped API tokens (owner only)."""
    access.require(Permission.WORKSPACE_DELETE)
    _require_unscoped(access.principal)
    await WorkspaceRepository(session, [access.tenant_id]).delete(access.obj)


# Members -----------------------------------------------------------------------------------


@router.get("/workspaces/{workspace_id}/members", response_model=PageOf[MemberPublic])
async def list_members(
    workspace_id: WorkspaceId,
    session: SessionDep,
    access: WorkspaceAccess,
    params: ListParamsDep,
    role: Annotated[Role | None, Query(description="Only members with this role.")] = None,
) -> PageOf[MemberPublic]:
    """Members with their role; sort by ``joined_at``, ``email``, ``name`` or ``role``."""
    access.require(Permission.MEMBERS_READ)
    filters: dict[str, Any] = {} if role is None else {"role": role}
    page = await MemberRepository(session, access.tenant_id).list(
        filters=filters, pagination=params.pagination, sorting=params.sorting
    )
    return PageOf.from_page(page, [_member_public(m) for m in page.items])


@router.post(
    "/workspaces/{workspace_id}/members",
    response_model=MemberPublic,
    status_code=status.HTTP_201_CREATED,
)
async def add_member(
    workspace_id: WorkspaceId, body: MemberCreate, session: SessionDep, access: WorkspaceAccess
) -> MemberPublic:
    """Add an existing account directly (admin or owner; only owners add owners). For someone
    without an account yet, create an invitation instead."""
    access.require(Permission.MEMBERS_MANAGE)
    if body.role == Role.OWNER:
        access.require(Permission.OWNERSHIP_MANAGE)
    _require_unscoped(access.principal)
    user = await session.scalar(select(User).where(User.email == body.email))
    if user is None or not user.is_active:
        raise NotFoundError("There is no account with this email: invite them instead")
    members = MemberRepository(session, access.tenant_id)
    if await members.get_by_user(user.id) is not None:
        raise ConflictError(f"{body.email} is already a member of this workspace")
    member = await members.create(tenant_id=access.tenant_id, user_id=user.id, role=body.role)
    member.user = user
    return _member_public(member)


async def _load_member(members: MemberRepository, user_id: uuid.UUID) -> TeamMember:
    member = await members.get_by_user(user_id)
    if member is None:
        raise not_found("Member", user_id)
    return member


async def _refuse_removing_last_owner(
    members: MemberRepository, member: TeamMember, action: str
) -> None:
    if member.role != Role.OWNER:
        return
    owners = await members.lock_owners(member.tenant_id)
    if owners == [member.user_id]:
        raise ConflictError(
            f"The last owner cannot {action}: make another member an owner first, "
            "or delete the workspace"
        )


@router.patch("/workspaces/{workspace_id}/members/{user_id}", response_model=MemberPublic)
async def update_member(
    workspace_id: WorkspaceId,
    user_id: UserId,
    body: MemberUpdate,
    session: SessionDep,
    access: WorkspaceAccess,
) -> MemberPublic:
    """Change a member's role (admin or owner; only owners make or unmake owners)."""
    access.require(Permission.MEMBERS_MANAGE)
    _require_unscoped(access.principal)
    members = MemberRepository(session, access.tenant_id)
    member = await _load_member(members, user_id)
    if Role.OWNER in {member.role, body.role}:
        access.require(Permission.OWNERSHIP_MANAGE)
    if body.role != Role.OWNER:
        await _refuse_removing_last_owner(members, member, "be demoted")
    member = await members.update(member, role=body.role)
    return _member_public(member)


@router.delete(
    "/workspaces/{workspace_id}/members/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
)
async def remove_member(
    workspace_id: WorkspaceId, user_id: UserId, session: SessionDep, access: WorkspaceAccess
) -> None:
    """Remove a member (admin or owner; only owners remove owners), or leave: anyone may remove
    themselves. Their API tokens lose access to the workspace at once."""
    is_self = user_id == access.principal.user_id
    if not is_self:
        access.require(Permission.MEMBERS_MANAGE)
    _require_unscoped(access.principal)
    members = MemberRepository(session, access.tenant_id)
    member = await _load_member(members, user_id)
    if member.role == Role.OWNER and not is_self:
        access.require(Permission.OWNERSHIP_MANAGE)
    await _refuse_removing_last_owner(
        members, member, "leave the workspace" if is_self else "be removed"
    )
    await members.delete(member)


# Invitations -------------------------------------------------------------------------------


@router.post(
    "/workspaces/{workspace_id}/invitations",
    response_model=InvitationCreated,
    status_code=status.HTTP_201_CREATED,
)
async def invite(
    workspace_id: WorkspaceId,
    body: InvitationCreate,
    session: SessionDep,
    access: WorkspaceAccess,
    keys: KeysDep,
    settings: SettingsDep,
) -> InvitationCreated:
    """Invite an email address (admin or owner; only owners invite owners).

    The answer carries the single-use ``token``, shown this once: send it to the invitee, who
    accepts it with ``POST /invitations/accept`` once signed in with that email (or registers
    with it). It expires after ``CABOOSE_INVITATION_HOURS``. Inviting the same address again
    replaces the pending invitation.
    """
    access.require(Permission.MEMBERS_MANAGE)
    if body.role == Role.OWNER:
        access.require(Permission.OWNERSHIP_MANAGE)
    _require_unscoped(access.principal)
    invitation, token = await create_invitation(
        session,
        keys,
        tenant_id=access.tenant_id,
        email=body.email,
        role=body.role,
        invited_by_id=access.principal.user_id,
        valid_for=timedelta(hours=settings.invitation_hours),
    )
    public = InvitationPublic.model_validate(invitation)
    return InvitationCreated(**public.model_dump(), token=token)


@router.get("/workspaces/{workspace_id}/invitations", response_model=PageOf[InvitationPublic])
async def list_invitations(
    workspace_id: WorkspaceId,
    session: SessionDep,
    access: WorkspaceAccess,
    params: ListParamsDep,
) -> PageOf[InvitationPublic]:
    """Pending invitations: neither accepted nor expired."""
    access.require(Permission.MEMBERS_READ)
    repository = InvitationRepository(session, access.tenant_id, pending_only=True)
    page = await repository.list(pagination=params.pagination, sorting=params.sorting)
    return PageOf.from_page(page, [InvitationPublic.model_validate(i) for i in page.items])


@router.delete(
    "/workspaces/{workspace_id}/invitations/{invitation_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
)
async def revoke_invitation(
    workspace_id: WorkspaceId,
    invitation_id: uuid.UUID,
    session: SessionDep,
    access: WorkspaceAccess,
) -> None:
    """Revoke an invitation: its token stops working (404 for whoever tries it)."""
    access.require(Permission.MEMBERS_MANAGE)
    _require_unscoped(access.principal)
    repository = InvitationRepository(session, access.tenant_id)
    invitation = await repository.get_or_raise(invitation_id)
    if invitation.role == Role.OWNER:
        access.require(Permission.OWNERSHIP_MANAGE)
    await repository.delete(invitation)


@router.post("/invitations/accept", response_model=WorkspacePublic)
async def accept_invitation(
    body: InvitationAccept,
    session: SessionDep,
    principal: InteractivePrincipalDep,
    user: CurrentUser,
    keys: KeysDep,
) -> WorkspacePublic:
    """Join the workspace an invitation is for, with its role; answers with that workspace.

    The signed-in account's email must be the invited one (403 otherwise). An unknown or revoked
    token is a 404; a used or expired one is a 410 (``invitation-gone``); already being a member
    is a 409.
    """
    member = await redeem_invitation(session, keys, body.token, user)
    tenant = await session.get_one(Tenant, member.tenant_id)
    return _workspace_public(tenant, member.role)
