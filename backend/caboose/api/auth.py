"""Accounts and sessions: register, sign in, refresh, sign out, and who am I.

Sessions are JWT pairs (core/sessions.py) delivered both as HTTP-only cookies (the dashboard) and
in the body (the CLI, scripts). Sign-in takes the same time whether or not the email exists.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Depends, Request, Response, status
from sqlalchemy import select

from caboose.api.accounts import create_account
from caboose.api.auth_cookies import (
    ACCESS_COOKIE,
    REFRESH_COOKIE,
    check_csrf,
    clear_session_cookies,
    set_session_cookies,
)
from caboose.api.deps import (
    CurrentUser,
    KeysDep,
    PrincipalDep,
    RedisDep,
    SessionDep,
    SessionPolicyDep,
    SettingsDep,
    enforce_auth_rate_limit,
)
from caboose.api.invitations import (
    check_invitation_email,
    find_pending_invitation,
    redeem_invitation,
)
from caboose.core.errors import (
    AuthenticationError,
    AuthorizationError,
    FieldError,
    ValidationError,
)
from caboose.core.passwords import (
    hash_password,
    validate_password_strength,
    verify_dummy,
    verify_password,
)
from caboose.core.sessions import end_session, issue_session, rotate_session
from caboose.models import TeamMember, Tenant, User
from caboose.schemas.identity import (
    LoginRequest,
    LogoutRequest,
    MePublic,
    RefreshRequest,
    RegisterRequest,
    SetupState,
    TokenPair,
    WorkspaceMembership,
)

router = APIRouter(prefix="/auth", tags=["auth"])
me_router = APIRouter(tags=["auth"])

_BAD_CREDENTIALS = "Wrong email or password"


async def describe_me(session: SessionDep, user: User) -> MePublic:
    rows = await session.execute(
        select(Tenant, TeamMember.role)
        .join(TeamMember, TeamMember.tenant_id == Tenant.id)
        .where(TeamMember.user_id == user.id)
        .order_by(Tenant.is_personal.desc(), Tenant.name)
    )
    workspaces = [
        WorkspaceMembership(
            id=tenant.id,
            name=tenant.name,
            slug=tenant.slug,
            role=role,
            is_personal=tenant.is_personal,
        )
        for tenant, role in rows.all()
    ]
    public = MePublic.model_validate(
        {
            **{k: getattr(user, k) for k in MePublic.model_fields if hasattr(user, k)},
            "workspaces": workspaces,
            "has_password": user.password_hash is not None,
            "github_connected": user.github_id is not None,
        }
    )
    return public


@router.get("/setup", response_model=SetupState)
async def setup_state(session: SessionDep, settings: SettingsDep) -> SetupState:
    """Whether this instance still needs its first (owner) account, whether anyone may sign
    up, and whether GitHub sign-in is offered. Public: the sign-in page asks before anyone is
    signed in, and it reveals no more than the sign-in page itself would."""
    has_account = await session.scalar(select(User.id).limit(1)) is not None
    return SetupState(
        needs_setup=not has_account,
        registration_open=settings.registration_open,
        github_enabled=settings.github_oauth_enabled,
    )


@router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    response_model=MePublic,
    dependencies=[Depends(enforce_auth_rate_limit)],
)
async def register(
    body: RegisterRequest, session: SessionDep, settings: SettingsDep, keys: KeysDep
) -> MePublic:
    """Create an account and its own workspace. The very first account owns the instance.

    With registration closed, only an invitation token creates an account.
    """
    if not settings.registration_open and not body.invitation_token:
        raise AuthorizationError("Sign-up is by invitation on this instance")
    problems = validate_password_strength(body.password, email=body.email)
    if problems:
        raise ValidationError(
            problems[0],
            errors=[
                FieldError(field="password", message=p, code="weak_password") for p in problems
            ],
        )
    if body.invitation_token:
        # Check the invitation before creating anything: a bad token must leave no account.
        invitation = await find_pending_invitation(session, keys, body.invitation_token)
        check_invitation_email(invitation, body.email)
    user = await create_account(
        session,
        email=body.email,
        name=body.name,
        password_hash=hash_password(body.password),
    )
    if body.invitation_token:
        await redeem_invitation(session, keys, body.invitation_token, user)
    return await describe_me(session, user)


@router.post("/login", response_model=TokenPair, dependencies=[Depends(enforce_auth_rate_limit)])
async def login(
    body: LoginRequest,
    response: Response,
    session: SessionDep,
    redis: RedisDep,
    settings: SettingsDep,
    policy: SessionPolicyDep,
) -> TokenPair:
    """Sign in with email and password: sets the session cookies and returns the tokens."""
    user = await session.scalar(select(User).where(User.email == body.email))
    if user is None or user.password_hash is None:
        verify_dummy(body.password)  # same argon2 cost as a real check: no email enumeration
        raise AuthenticationError(_BAD_CREDENTIALS)
    check = verify_password(body.password, user.password_hash)
    if not check.is_valid:
        raise AuthenticationError(_BAD_CREDENTIALS)
    if not user.is_active:
        raise AuthenticationError("This account is disabled")
    if check.new_hash is not None:
        user.password_hash = check.new_hash
    user.last_login_at = datetime.now(UTC)
    tokens = await issue_session(redis, policy, str(user.id))
    csrf = set_session_cookies(response, tokens, settings)
    return TokenPair(
        access_token=tokens.access_token,
        refresh_token=tokens.refresh_token,
        expires_in=tokens.expires_in,
        csrf_token=csrf,
    )


@router.post("/refresh", response_model=TokenPair)
async def refresh(
    request: Request,
    response: Response,
    redis: RedisDep,
    settings: SettingsDep,
    policy: SessionPolicyDep,
    body: RefreshRequest | None = None,
) -> TokenPair:
    """Rotate the refresh token (body, else cookie). Reusing an old one ends the session."""
    token = body.refresh_token if body and body.refresh_token else None
    if token is None:
        token = request.cookies.get(REFRESH_COOKIE)
        if token is None:
            raise AuthenticationError("No refresh token: sign in again")
        check_csrf(request)
    tokens = await rotate_session(redis, policy, token)
    csrf = set_session_cookies(response, tokens, settings)
    return TokenPair(
        access_token=tokens.access_token,
        refresh_token=tokens.refresh_token,
        expires_in=tokens.expires_in,
        csrf_token=csrf,
    )


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(
    request: Request,
    principal: PrincipalDep,
    redis: RedisDep,
    settings: SettingsDep,
    policy: SessionPolicyDep,
    body: LogoutRequest | None = None,
) -> Response:
    """End this session: the access token, the refresh token and their family are revoked."""
    if principal.method == "api-token":
        raise AuthorizationError("API tokens are revoked with DELETE /tokens/{id}, not logout")
    bearer = request.headers.get("authorization", "").partition(" ")[2].strip() or None
    access = bearer if principal.method == "bearer" else request.cookies.get(ACCESS_COOKIE)
    refresh_token = (body.refresh_token if body else None) or request.cookies.get(REFRESH_COOKIE)
    await end_session(redis, policy, access=access, refresh=refresh_token)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    clear_session_cookies(response, settings)
    return response


@me_router.get("/me", response_model=MePublic)
async def me(user: CurrentUser, session: SessionDep) -> MePublic:
    """The signed-in user, with their workspaces and role in each."""
    return await describe_me(session, user)
