"""Members and invitations: who may add, promote, demote and remove whom; the last owner stays;
invitations are single-use, expiring, and only for the invited email."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from caboose.api.invitations import redeem_invitation
from caboose.config import Settings
from caboose.core.api_tokens import hash_secret
from caboose.core.errors import AuthorizationError, NotFoundError
from caboose.core.keys import platform_keys
from caboose.models import Invitation, Role, TeamMember
from tests.api.workspace_helpers import (
    API,
    assert_invalid,
    assert_problem,
    count,
    fresh,
    project_token,
)
from tests.conftest import Caller, MakeCaller
from tests.factories import ProjectFactory, UserFactory, persist


def members_url(caller: Caller) -> str:
    return f"{API}/workspaces/{caller.workspace.id}/members"


async def stored_role(session: AsyncSession, caller: Caller, user_id: uuid.UUID) -> Role | None:
    role = await session.scalar(
        select(TeamMember.role).where(
            TeamMember.tenant_id == caller.workspace.id, TeamMember.user_id == user_id
        )
    )
    return None if role is None else Role(role)


# Listing -------------------------------------------------------------------------------------


async def test_members_are_listed_with_account_and_role(
    owner: Caller, make_caller: MakeCaller, client: httpx.AsyncClient
) -> None:
    member = await make_caller(role=Role.MEMBER, workspace=owner.workspace)
    response = await client.get(members_url(owner), headers=member.headers)
    assert response.status_code == 200
    body = response.json()
    assert body["total"] == 2
    by_id = {item["user_id"]: item for item in body["items"]}
    mine = by_id[str(owner.user.id)]
    assert mine["email"] == owner.user.email and mine["name"] == owner.user.name
    assert mine["role"] == "owner" and "joined_at" in mine
    assert by_id[str(member.user.id)]["role"] == "member"
    assert "password_hash" not in str(body)


async def test_members_sort_by_email_and_filter_by_role(
    owner: Caller, make_caller: MakeCaller, client: httpx.AsyncClient
) -> None:
    others = [await make_caller(role=Role.ADMIN, workspace=owner.workspace) for _ in range(3)]
    params: dict[str, str | int] = {"sort_by": "email", "sort_order": "asc", "limit": 2}
    page = (await client.get(members_url(owner), params=params, headers=owner.headers)).json()
    every = sorted([owner.user.email, *(o.user.email for o in others)])
    assert [i["email"] for i in page["items"]] == every[:2]
    assert page["total"] == 4 and page["has_more"] is True
    admins = (
        await client.get(members_url(owner), params={"role": "admin"}, headers=owner.headers)
    ).json()
    assert admins["total"] == 3 and {i["role"] for i in admins["items"]} == {"admin"}
    assert_invalid(
        await client.get(members_url(owner), params={"role": "boss"}, headers=owner.headers),
        "role",
    )


async def test_strangers_cannot_list_members(
    owner: Caller, make_caller: MakeCaller, client: httpx.AsyncClient
) -> None:
    stranger = await make_caller()
    assert_problem(await client.get(members_url(owner), headers=stranger.headers), 404)


# Adding --------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.OWNER, Role.ADMIN])
async def test_admins_and_owners_add_existing_accounts(
    owner: Caller,
    make_caller: MakeCaller,
    client: httpx.AsyncClient,
    db_session: AsyncSession,
    role: Role,
) -> None:
    caller = await make_caller(role=role, workspace=owner.workspace)
    newcomer = UserFactory.build(email="new.person@example.com")
    await persist(db_session, newcomer)
    response = await client.post(
        members_url(owner),
        json={"email": "  New.Person@Example.COM ", "role": "admin"},
        headers=caller.headers,
    )
    assert response.status_code == 201, response.text
    assert response.json()["user_id"] == str(newcomer.id)
    assert response.json()["role"] == "admin"
    assert await stored_role(db_session, owner, newcomer.id) == Role.ADMIN


async def test_adding_an_unknown_email_says_to_invite(
    owner: Caller, client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    before = await count(db_session, TeamMember)
    response = await client.post(
        members_url(owner), json={"email": "nobody@example.com"}, headers=owner.headers
    )
    body = assert_problem(response, 404)
    assert "invite" in body["detail"]
    assert await count(db_session, TeamMember) == before


async def test_adding_someone_twice_is_a_conflict(
    owner: Caller, make_caller: MakeCaller, client: httpx.AsyncClient
) -> None:
    member = await make_caller(role=Role.MEMBER, workspace=owner.workspace)
    response = await client.post(
        members_url(owner), json={"email": member.user.email}, headers=owner.headers
    )
    assert_problem(response, 409)


async def test_only_owners_add_owners_and_members_add_nobody(
    owner: Caller, make_caller: MakeCaller, client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    admin = await make_caller(role=Role.ADMIN, workspace=owner.workspace)
    member = await make_caller(role=Role.MEMBER, workspace=owner.workspace)
    newcomer = UserFactory.build()
    await persist(db_session, newcomer)
    as_owner = {"email": newcomer.email, "role": "owner"}
    assert_problem(await client.post(members_url(owner), json=as_owner, headers=admin.headers), 403)
    as_member = {"email": newcomer.email}
    assert_problem(
        await client.post(members_url(owner), json=as_member, headers=member.headers), 403
    )
    assert await stored_role(db_session, owner, newcomer.id) is None
    response = await client.post(members_url(owner), json=as_owner, headers=owner.headers)
    assert response.status_code == 201
    assert await stored_role(db_session, owner, newcomer.id) == Role.OWNER


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"email": "a@example.com", "role": "superuser"}, "role"),
        ({"email": "a\x00@example.com"}, "email"),
        ({}, "email"),
        ({"email": "a@example.com", "extra": 1}, "extra"),
    ],
)
async def test_member_bodies_are_validated(
    owner: Caller, client: httpx.AsyncClient, body: dict[str, object], field: str
) -> None:
    assert_invalid(await client.post(members_url(owner), json=body, headers=owner.headers), field)


# Changing roles ------------------------------------------------------------------------------


async def test_admins_promote_members_to_admin_and_back(
    owner: Caller, make_caller: MakeCaller, client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    admin = await make_caller(role=Role.ADMIN, workspace=owner.workspace)
    member = await make_caller(role=Role.MEMBER, workspace=owner.workspace)
    url = f"{members_url(owner)}/{member.user.id}"
    response = await client.patch(url, json={"role": "admin"}, headers=admin.headers)
    assert response.status_code == 200 and response.json()["role"] == "admin"
    assert await stored_role(db_session, owner, member.user.id) == Role.ADMIN
    response = await client.patch(url, json={"role": "member"}, headers=admin.headers)
    assert response.status_code == 200
    assert await stored_role(db_session, owner, member.user.id) == Role.MEMBER


async def test_admins_cannot_make_or_unmake_owners(
    owner: Caller, make_caller: MakeCaller, client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    admin = await make_caller(role=Role.ADMIN, workspace=owner.workspace)
    member = await make_caller(role=Role.MEMBER, workspace=owner.workspace)
    promote = await client.patch(
        f"{members_url(owner)}/{member.user.id}", json={"role": "owner"}, headers=admin.headers
    )
    assert_problem(promote, 403)
    demote = await client.patch(
        f"{members_url(owner)}/{owner.user.id}", json={"role": "admin"}, headers=admin.headers
    )
    assert_problem(demote, 403)
    assert await stored_role(db_session, owner, member.user.id) == Role.MEMBER
    assert await stored_role(db_session, owner, owner.user.id) == Role.OWNER


async def test_members_cannot_change_roles_not_even_their_own(
    owner: Caller, make_caller: MakeCaller, client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    member = await make_caller(role=Role.MEMBER, workspace=owner.workspace)
    response = await client.patch(
        f"{members_url(owner)}/{member.user.id}", json={"role": "admin"}, headers=member.headers
    )
    assert_problem(response, 403)
    assert await stored_role(db_session, owner, member.user.id) == Role.MEMBER


async def test_owners_hand_over_ownership(
    owner: Caller, make_caller: MakeCaller, client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    admin = await make_caller(role=Role.ADMIN, workspace=owner.workspace)
    response = await client.patch(
        f"{members_url(owner)}/{admin.user.id}", json={"role": "owner"}, headers=owner.headers
    )
    assert response.status_code == 200
    # With a second owner, the first may step down.
    response = await client.patch(
        f"{members_url(owner)}/{owner.user.id}", json={"role": "member"}, headers=owner.headers
    )
    assert response.status_code == 200
    assert await stored_role(db_session, owner, owner.user.id) == Role.MEMBER
    assert await stored_role(db_session, owner, admin.user.id) == Role.OWNER


async def test_the_last_owner_cannot_be_demoted(
    owner: Caller, client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    response = await client.patch(
        f"{members_url(owner)}/{owner.user.id}", json={"role": "admin"}, headers=owner.headers
    )
    body = assert_problem(response, 409)
    assert "last owner" in body["detail"]
    assert await stored_role(db_session, owner, owner.user.id) == Role.OWNER
    same = await client.patch(
        f"{members_url(owner)}/{owner.user.id}", json={"role": "owner"}, headers=owner.headers
    )
    assert same.status_code == 200


async def test_changing_an_unknown_member_is_not_found(
    owner: Caller, make_caller: MakeCaller, client: httpx.AsyncClient
) -> None:
    stranger = await make_caller()
    for user_id in (stranger.user.id, uuid.uuid4()):
        response = await client.patch(
            f"{members_url(owner)}/{user_id}", json={"role": "admin"}, headers=owner.headers
        )
        assert_problem(response, 404)
    response = await client.patch(
        f"{members_url(owner)}/{owner.user.id}", json={"role": None}, headers=owner.headers
    )
    assert_invalid(response, "role")


# Removing and leaving ------------------------------------------------------------------------


async def test_anyone_may_leave(
    owner: Caller, make_caller: MakeCaller, client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    member = await make_caller(role=Role.MEMBER, workspace=owner.workspace)
    response = await client.delete(f"{members_url(owner)}/{member.user.id}", headers=member.headers)
    assert response.status_code == 204 and response.content == b""
    assert await stored_role(db_session, owner, member.user.id) is None
    # Gone means gone: the workspace is now another workspace to them.
    assert_problem(
        await client.get(f"{API}/workspaces/{owner.workspace.id}", headers=member.headers), 404
    )


async def test_the_last_owner_cannot_leave(
    owner: Caller, client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    response = await client.delete(f"{members_url(owner)}/{owner.user.id}", headers=owner.headers)
    body = assert_problem(response, 409)
    assert "last owner" in body["detail"]
    assert await stored_role(db_session, owner, owner.user.id) == Role.OWNER


async def test_an_owner_may_leave_when_another_owner_remains(
    owner: Caller, make_caller: MakeCaller, client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    other = await make_caller(role=Role.OWNER, workspace=owner.workspace)
    response = await client.delete(f"{members_url(owner)}/{owner.user.id}", headers=owner.headers)
    assert response.status_code == 204
    assert await stored_role(db_session, owner, other.user.id) == Role.OWNER


async def test_who_may_remove_whom(
    owner: Caller, make_caller: MakeCaller, client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    admin = await make_caller(role=Role.ADMIN, workspace=owner.workspace)
    other_admin = await make_caller(role=Role.ADMIN, workspace=owner.workspace)
    member = await make_caller(role=Role.MEMBER, workspace=owner.workspace)
    second_owner = await make_caller(role=Role.OWNER, workspace=owner.workspace)
    url = members_url(owner)
    # Members remove nobody but themselves.
    assert_problem(await client.delete(f"{url}/{admin.user.id}", headers=member.headers), 403)
    # Admins remove neither owner.
    assert_problem(await client.delete(f"{url}/{second_owner.user.id}", headers=admin.headers), 403)
    assert await stored_role(db_session, owner, second_owner.user.id) == Role.OWNER
    # Admins remove members and admins.
    assert (
        await client.delete(f"{url}/{member.user.id}", headers=admin.headers)
    ).status_code == 204
    removed = await client.delete(f"{url}/{other_admin.user.id}", headers=admin.headers)
    assert removed.status_code == 204
    # Owners remove owners.
    removed = await client.delete(f"{url}/{second_owner.user.id}", headers=owner.headers)
    assert removed.status_code == 204
    remaining = {
        m["user_id"] for m in (await client.get(url, headers=owner.headers)).json()["items"]
    }
    assert remaining == {str(owner.user.id), str(admin.user.id)}


async def test_removing_a_stranger_is_not_found(
    owner: Caller, make_caller: MakeCaller, client: httpx.AsyncClient
) -> None:
    stranger = await make_caller()
    assert_problem(
        await client.delete(f"{members_url(owner)}/{stranger.user.id}", headers=owner.headers),
        404,
    )
    # …and a stranger removing anyone is a 404 for the workspace.
    assert_problem(
        await client.delete(f"{members_url(owner)}/{owner.user.id}", headers=stranger.headers),
        404,
    )


async def test_a_project_scoped_token_cannot_manage_members(
    owner: Caller,
    make_caller: MakeCaller,
    client: httpx.AsyncClient,
    db_session: AsyncSession,
    settings: Settings,
) -> None:
    member = await make_caller(role=Role.MEMBER, workspace=owner.workspace)
    project = ProjectFactory.build(tenant=owner.workspace)
    await persist(db_session, project)
    headers = await project_token(db_session, settings, owner.user, project)
    url = f"{members_url(owner)}/{member.user.id}"
    assert_problem(await client.patch(url, json={"role": "admin"}, headers=headers), 403)
    assert_problem(await client.delete(url, headers=headers), 403)
    invite = await client.post(
        f"{API}/workspaces/{owner.workspace.id}/invitations",
        json={"email": "x@example.com"},
        headers=headers,
    )
    assert_problem(invite, 403)
    assert await stored_role(db_session, owner, member.user.id) == Role.MEMBER


# Invitations ---------------------------------------------------------------------------------


def invitations_url(caller: Caller) -> str:
    return f"{API}/workspaces/{caller.workspace.id}/invitations"


async def invite(
    client: httpx.AsyncClient, caller: Caller, email: str, role: str = "member"
) -> httpx.Response:
    return await client.post(
        invitations_url(caller), json={"email": email, "role": role}, headers=caller.headers
    )


async def test_an_invitation_shows_its_token_once_and_stores_only_its_hash(
    owner: Caller, client: httpx.AsyncClient, db_session: AsyncSession, settings: Settings
) -> None:
    response = await invite(client, owner, "  Invitee@Example.com", "admin")
    assert response.status_code == 201, response.text
    body = response.json()
    token = body["token"]
    assert len(token) >= 43
    assert body["email"] == "invitee@example.com" and body["role"] == "admin"
    assert body["workspace_id"] == str(owner.workspace.id)
    assert body["invited_by_id"] == str(owner.user.id) and body["accepted_at"] is None
    expires_at = datetime.fromisoformat(body["expires_at"])
    expected = datetime.now(UTC) + timedelta(hours=settings.invitation_hours)
    assert abs((expires_at - expected).total_seconds()) < 60
    stored = await fresh(db_session, Invitation, body["id"])
    assert token not in stored.token_hash
    assert stored.token_hash == hash_secret(
        token, secret=platform_keys(settings).token_hmac_secret, purpose="invitation"
    )
    listed = (await client.get(invitations_url(owner), headers=owner.headers)).json()
    assert listed["total"] == 1 and listed["items"][0]["id"] == body["id"]
    assert token not in str(listed) and "token" not in listed["items"][0]


async def test_accepting_an_invitation_makes_me_a_member_once(
    owner: Caller, make_caller: MakeCaller, client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    invitee = await make_caller()
    token = (await invite(client, owner, invitee.user.email.upper(), "admin")).json()["token"]
    response = await client.post(
        f"{API}/invitations/accept", json={"token": token}, headers=invitee.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["id"] == str(owner.workspace.id)
    assert response.json()["role"] == "admin"
    assert await stored_role(db_session, owner, invitee.user.id) == Role.ADMIN
    stored = await db_session.scalar(
        select(Invitation).where(Invitation.tenant_id == owner.workspace.id)
    )
    assert stored is not None and stored.accepted_at is not None
    # No longer pending…
    assert (await client.get(invitations_url(owner), headers=owner.headers)).json()["total"] == 0
    # …and single use.
    again = await client.post(
        f"{API}/invitations/accept", json={"token": token}, headers=invitee.headers
    )
    body = assert_problem(again, 410)
    assert "already been used" in body["detail"]


async def test_an_expired_invitation_is_gone(
    owner: Caller, make_caller: MakeCaller, client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    invitee = await make_caller()
    created = (await invite(client, owner, invitee.user.email)).json()
    stored = await fresh(db_session, Invitation, created["id"])
    stored.expires_at = datetime.now(UTC) - timedelta(seconds=1)
    await db_session.commit()
    response = await client.post(
        f"{API}/invitations/accept", json={"token": created["token"]}, headers=invitee.headers
    )
    body = assert_problem(response, 410)
    assert "expired" in body["detail"]
    assert await stored_role(db_session, owner, invitee.user.id) is None
    assert (await client.get(invitations_url(owner), headers=owner.headers)).json()["total"] == 0


async def test_an_invitation_is_only_for_the_invited_email(
    owner: Caller, make_caller: MakeCaller, client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    someone_else = await make_caller()
    created = (await invite(client, owner, "intended@example.com")).json()
    response = await client.post(
        f"{API}/invitations/accept", json={"token": created["token"]}, headers=someone_else.headers
    )
    assert_problem(response, 403)
    assert await stored_role(db_session, owner, someone_else.user.id) is None
    assert (await fresh(db_session, Invitation, created["id"])).accepted_at is None


async def test_unknown_and_revoked_invitations_are_not_found(
    owner: Caller, make_caller: MakeCaller, client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    invitee = await make_caller()
    accept = f"{API}/invitations/accept"
    assert_problem(await client.post(accept, json={"token": "nope"}, headers=invitee.headers), 404)
    created = (await invite(client, owner, invitee.user.email)).json()
    revoked = await client.delete(
        f"{invitations_url(owner)}/{created['id']}", headers=owner.headers
    )
    assert revoked.status_code == 204
    assert await fresh(db_session, Invitation, created["id"]) is None
    response = await client.post(accept, json={"token": created["token"]}, headers=invitee.headers)
    assert_problem(response, 404)
    assert_invalid(await client.post(accept, json={"token": ""}, headers=invitee.headers), "token")
    assert_problem(await client.post(accept, json={"token": created["token"]}), 401)


async def test_inviting_again_replaces_the_pending_invitation(
    owner: Caller, make_caller: MakeCaller, client: httpx.AsyncClient
) -> None:
    invitee = await make_caller()
    first = (await invite(client, owner, invitee.user.email)).json()["token"]
    second = (await invite(client, owner, invitee.user.email, "admin")).json()["token"]
    listed = (await client.get(invitations_url(owner), headers=owner.headers)).json()
    assert listed["total"] == 1 and listed["items"][0]["role"] == "admin"
    accept = f"{API}/invitations/accept"
    assert_problem(await client.post(accept, json={"token": first}, headers=invitee.headers), 404)
    response = await client.post(accept, json={"token": second}, headers=invitee.headers)
    assert response.status_code == 200 and response.json()["role"] == "admin"


async def test_members_are_not_invited_and_cannot_accept_twice(
    owner: Caller, make_caller: MakeCaller, client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    member = await make_caller(role=Role.MEMBER, workspace=owner.workspace)
    assert_problem(await invite(client, owner, member.user.email), 409)
    # An invitation made before they joined some other way: accepting it is a conflict.
    latecomer = await make_caller()
    token = (await invite(client, owner, latecomer.user.email)).json()["token"]
    await persist(
        db_session,
        TeamMember(tenant_id=owner.workspace.id, user_id=latecomer.user.id, role=Role.MEMBER),
    )
    response = await client.post(
        f"{API}/invitations/accept", json={"token": token}, headers=latecomer.headers
    )
    assert_problem(response, 409)


async def test_who_may_invite_whom(
    owner: Caller, make_caller: MakeCaller, client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    admin = await make_caller(role=Role.ADMIN, workspace=owner.workspace)
    member = await make_caller(role=Role.MEMBER, workspace=owner.workspace)
    stranger = await make_caller()
    assert_problem(await invite(client, member, "a@example.com"), 403)
    assert_problem(await invite(client, admin, "a@example.com", "owner"), 403)
    stranger_invite = await client.post(
        invitations_url(owner), json={"email": "a@example.com"}, headers=stranger.headers
    )
    assert_problem(stranger_invite, 404)
    assert await count(db_session, Invitation, tenant_id=owner.workspace.id) == 0
    assert (await invite(client, admin, "a@example.com", "admin")).status_code == 201
    by_owner = await invite(client, owner, "b@example.com", "owner")
    assert by_owner.status_code == 201
    # Members see pending invitations (never their tokens); strangers do not.
    listed = await client.get(invitations_url(owner), headers=member.headers)
    assert listed.status_code == 200 and listed.json()["total"] == 2
    assert_problem(await client.get(invitations_url(owner), headers=stranger.headers), 404)
    # Revoking: admins cannot revoke an owner invitation, members cannot revoke at all.
    owner_invitation = f"{invitations_url(owner)}/{by_owner.json()['id']}"
    assert_problem(await client.delete(owner_invitation, headers=admin.headers), 403)
    assert_problem(await client.delete(owner_invitation, headers=member.headers), 403)
    assert (await client.delete(owner_invitation, headers=owner.headers)).status_code == 204


async def test_an_invitation_of_another_workspace_cannot_be_revoked(
    owner: Caller, make_caller: MakeCaller, client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    stranger = await make_caller()
    created = (await invite(client, owner, "a@example.com")).json()
    response = await client.delete(
        f"{invitations_url(stranger)}/{created['id']}", headers=stranger.headers
    )
    assert_problem(response, 404)
    assert await fresh(db_session, Invitation, created["id"]) is not None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "nope"}, "email"),
        ({"email": "a\x00b@example.com"}, "email"),
        ({"email": "a@example.com", "role": "root"}, "role"),
        ({"role": "member"}, "email"),
    ],
)
async def test_invitation_bodies_are_validated(
    owner: Caller,
    client: httpx.AsyncClient,
    db_session: AsyncSession,
    body: dict[str, object],
    field: str,
) -> None:
    response = await client.post(invitations_url(owner), json=body, headers=owner.headers)
    assert_invalid(response, field)
    assert await count(db_session, Invitation) == 0


async def test_registration_redeems_an_invitation_for_a_new_account(
    owner: Caller, client: httpx.AsyncClient, db_session: AsyncSession, settings: Settings
) -> None:
    """What ``POST /auth/register {invitation_token}`` does after creating the account."""
    keys = platform_keys(settings)
    token = (await invite(client, owner, "fresh@example.com", "admin")).json()["token"]
    stranger_account = UserFactory.build(email="other@example.com")
    account = UserFactory.build(email="fresh@example.com")
    await persist(db_session, account, stranger_account)
    with pytest.raises(AuthorizationError):
        await redeem_invitation(db_session, keys, token, stranger_account)
    with pytest.raises(NotFoundError):
        await redeem_invitation(db_session, keys, "made-up", account)
    member = await redeem_invitation(db_session, keys, token, account)
    assert member.tenant_id == owner.workspace.id and member.role == Role.ADMIN
    await db_session.commit()
    assert await stored_role(db_session, owner, account.id) == Role.ADMIN
