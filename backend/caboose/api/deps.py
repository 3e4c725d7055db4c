"""Named dependency types: routes declare what they need by name.

``SessionDep``, ``RedisDep``, ``SettingsDep`` are plumbing. ``CurrentUser``/``PrincipalDep``
authenticate. The access dependencies (``WorkspaceAccess``, ``ProjectAccess`` …) load an object
*and* check that the caller may see it — another workspace's id is a 404, never a 403 — so no
route repeats an ownership check. ``access.require(Permission.X)`` then checks the role (403: the
caller can see the object, so refusing says nothing new).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Generic, Literal, TypeVar

from fastapi import Depends, Request
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import State

from caboose.api.auth_cookies import ACCESS_COOKIE, check_csrf
from caboose.config import Settings
from caboose.core.api_tokens import hash_api_token, looks_like_api_token
from caboose.core.errors import AuthenticationError, AuthorizationError, not_found
from caboose.core.keys import PlatformKeys, platform_keys
from caboose.core.permissions import Permission, has_permission, role_at_least
from caboose.core.principals import (
    PrincipalCache,
    Roles,
    generation_key,
    publish_principal_changes,
)
from caboose.core.rate_limit import RateLimiter
from caboose.core.read_cache import publish_read_changes
from caboose.core.sessions import SessionPolicy, check_not_revoked, decode_access_token
from caboose.database import Database, session_scope
from caboose.models import (
    ApiToken,
    Deployment,
    Environment,
    Project,
    Role,
    Service,
    TeamMember,
    Tenant,
    User,
)
from caboose.repositories.projects import (
    DeploymentRepository,
    EnvironmentRepository,
    ProjectRepository,
    ServiceRepository,
)

# Plumbing -----------------------------------------------------------------------------------
# Dependencies are ``async def`` even when they never await: FastAPI runs a plain ``def``
# dependency in its thread pool, a thread hand-off per dependency per request.


async def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request: committed when the route returns, rolled back if it raises.
    Membership and project changes it committed are then announced (``core/principals.py``,
    ``core/read_cache.py``)."""
    database: Database = request.app.state.database
    is_read = request.method in {"GET", "HEAD", "OPTIONS"}
    sessionmaker = database.read_sessionmaker if is_read else database.sessionmaker
    async with session_scope(sessionmaker) as session:
        yield session
    await publish_commit(request.app.state.redis, session)


async def publish_commit(redis: Redis, session: AsyncSession) -> None:
    """After ``session`` committed: the membership and project changes it made reach every
    process's caches."""
    await publish_principal_changes(redis, session)
    await publish_read_changes(redis, session)


async def get_redis(request: Request) -> Redis:
    redis: Redis = request.app.state.redis
    return redis


async def get_keys(request: Request) -> PlatformKeys:
    return platform_keys(request.app.state.settings)


def session_policy(state: State) -> SessionPolicy:
    """The app's session policy, built once per settings object: ``platform_keys`` touches the
    data dir and key files (a dozen system calls), too much for every authenticated request,
    and the JWT secret does not change while the process runs."""
    settings: Settings = state.settings
    cached: tuple[Settings, SessionPolicy] | None = getattr(state, "session_policy", None)
    if cached is not None and cached[0] is settings:
        return cached[1]
    policy = SessionPolicy(
        secret=platform_keys(settings).jwt_secret,
        access_ttl=timedelta(minutes=settings.access_token_minutes),
        refresh_ttl=timedelta(days=settings.refresh_token_days),
    )
    state.session_policy = (settings, policy)
    return policy


async def get_session_policy(request: Request) -> SessionPolicy:
    return session_policy(request.app.state)


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
DatabaseDep = Annotated[Database, Depends(get_database)]
# scope="function": the session commits when the route returns, *before* the response is sent
# (FastAPI's default scope would commit after sending it, so a client could act on an answer
# whose transaction then failed, or reach another process before the commit).
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
RedisDep = Annotated[Redis, Depends(get_redis)]
KeysDep = Annotated[PlatformKeys, Depends(get_keys)]
SessionPolicyDep = Annotated[SessionPolicy, Depends(get_session_policy)]

# Authentication -----------------------------------------------------------------------------

AuthMethod = Literal["cookie", "bearer", "api-token"]
# A used API token's last_used_at is written at most this often (not on every request).
_LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class Principal:
    """Who is calling, how they proved it, and the workspaces they belong to (read-only: it may
    be shared with other requests through the principal cache). Routes that need the account
    itself take ``CurrentUser``."""

    user_id: uuid.UUID
    method: AuthMethod
    roles: Mapping[uuid.UUID, Role] = field(default_factory=dict)
    # A project-scoped API token sees only that project (and nothing workspace-wide to change).
    project_scope: uuid.UUID | None = None
    api_token_id: uuid.UUID | None = None

    @property
    def tenant_ids(self) -> list[uuid.UUID]:
        return list(self.roles)


@dataclass(frozen=True)
class _AuthResult:
    principal: Principal | None
    failure: str | None = None


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


async def _roles_of(session: AsyncSession, user_id: uuid.UUID) -> dict[uuid.UUID, Role]:
    rows = await session.execute(
        select(TeamMember.tenant_id, TeamMember.role).where(TeamMember.user_id == user_id)
    )
    return {tenant_id: Role(role) for tenant_id, role in rows.all()}


async def load_active_roles(
    session: AsyncSession, user_id: uuid.UUID
) -> dict[uuid.UUID, Role] | None:
    """An active user's roles by workspace, in one query; None if the account is gone or
    disabled."""
    rows = (
        await session.execute(
            select(User.is_active, TeamMember.tenant_id, TeamMember.role)
            .select_from(User)
            .outerjoin(TeamMember, TeamMember.user_id == User.id)
            .where(User.id == user_id)
        )
    ).all()
    if not rows or not rows[0][0]:
        return None
    return {tenant_id: Role(role) for _, tenant_id, role in rows if tenant_id is not None}


async def _from_api_token(session: AsyncSession, keys: PlatformKeys, token: str) -> Principal | str:
    token_hash = hash_api_token(token, secret=keys.token_hmac_secret)
    api_token = await session.scalar(select(ApiToken).where(ApiToken.token_hash == token_hash))
    now = datetime.now(UTC)
    if api_token is None or api_token.revoked_at is not None:
        return "Invalid or revoked API token"
    if api_token.expires_at is not None and api_token.expires_at <= now:
        return "This API token has expired"
    user = await session.get(User, api_token.user_id)
    if user is None or not user.is_active:
        return "The account of this API token is disabled"
    if api_token.last_used_at is None or now - api_token.last_used_at > _LAST_USED_RESOLUTION:
        api_token.last_used_at = now
    roles = await _roles_of(session, user.id)
    if api_token.project_id is not None:
        project = await session.get(Project, api_token.project_id)
        roles = {t: r for t, r in roles.items() if project is not None and t == project.tenant_id}
    return Principal(
        user_id=user.id,
        method="api-token",
        roles=roles,
        project_scope=api_token.project_id,
        api_token_id=api_token.id,
    )


def session_token(request: Request) -> tuple[str, AuthMethod] | None:
    """The session token (JWT) a request carries, Bearer header first, then the access
    cookie; None without one, or when the Bearer value is an API token."""
    bearer = _bearer(request)
    if bearer is not None:
        return None if looks_like_api_token(bearer) else (bearer, "bearer")
    cookie = request.cookies.get(ACCESS_COOKIE)
    return None if cookie is None else (cookie, "cookie")


@dataclass(frozen=True, slots=True)
class CheckedSession:
    user_id: uuid.UUID
    generation: str | None
    roles: Roles | None  # as remembered by the principal cache; None: load them
    also: list[str | None]


async def check_session(state: State, token: str, *also: str) -> CheckedSession:
    """A session token verified (signature, expiry, not revoked) with the caller's remembered
    roles, and the values of the Redis keys ``also`` read in the same round trip. Raises
    ``AuthenticationError`` (or ``ValueError`` for a token whose subject is not an id)."""
    claims = decode_access_token(session_policy(state), token)
    user_id = uuid.UUID(claims.subject)
    generation, *values = await check_not_revoked(
        state.redis, claims, generation_key(user_id), *also
    )
    cache: PrincipalCache = state.principal_cache
    return CheckedSession(user_id, generation, cache.get(user_id, generation), values)


async def _authenticate(request: Request, session: SessionDep) -> _AuthResult:
    """Resolve the caller once per request (FastAPI caches this dependency)."""
    bearer = _bearer(request)
    if bearer is not None and looks_like_api_token(bearer):
        # The keys only here: resolving them costs file-system calls (see session_policy).
        keys = await get_keys(request)
        result = await _from_api_token(session, keys, bearer)
        if isinstance(result, str):
            return _AuthResult(None, result)
        request.state.user_id = str(result.user_id)
        return _AuthResult(result)
    found = session_token(request)
    if found is None:
        return _AuthResult(None)
    token, method = found
    try:
        checked = await check_session(request.app.state, token)
    except AuthenticationError as exc:
        return _AuthResult(None, exc.detail)
    except ValueError:
        return _AuthResult(None, "Invalid access token")
    roles = checked.roles
    if roles is None:
        loaded = await load_active_roles(session, checked.user_id)
        if loaded is None:
            return _AuthResult(None, "This account no longer exists or is disabled")
        cache: PrincipalCache = request.app.state.principal_cache
        roles = cache.put(checked.user_id, checked.generation, loaded)
    request.state.user_id = str(checked.user_id)
    return _AuthResult(Principal(user_id=checked.user_id, method=method, roles=roles))


AuthResultDep = Annotated[_AuthResult, Depends(_authenticate)]


async def get_optional_principal(result: AuthResultDep) -> Principal | None:
    return result.principal


async def get_principal(request: Request, result: AuthResultDep) -> Principal:
    if result.principal is None:
        raise AuthenticationError(result.failure or "Sign in, or send an API token")
    if result.principal.method == "cookie":
        check_csrf(request)
    return result.principal


OptionalPrincipalDep = Annotated[Principal | None, Depends(get_optional_principal)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]


async def get_current_user(principal: PrincipalDep, session: SessionDep) -> User:
    """The caller's account, loaded (the principal alone carries only its id and roles)."""
    user = await session.get(User, principal.user_id)
    if user is None or not user.is_active:
        raise AuthenticationError("This account no longer exists or is disabled")
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


async def get_interactive_principal(principal: PrincipalDep) -> Principal:
    """Account-level actions (tokens, new workspaces) need a person's session or a full token."""
    if principal.project_scope is not None:
        raise AuthorizationError("A project-scoped API token cannot do this")
    return principal


InteractivePrincipalDep = Annotated[Principal, Depends(get_interactive_principal)]

# Rate limits --------------------------------------------------------------------------------


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def budget_key(is_read: bool, who: str) -> str:
    """The limiter key of the read or write budget of ``who`` (``user:<id>``, ``ip:<address>``,
    ``hook:<webhook id>``)."""
    return f"{'read' if is_read else 'write'}:{who}"


async def enforce_rate_limit(request: Request, principal: OptionalPrincipalDep) -> None:
    """Reads and writes each have a budget per user (per address before sign-in)."""
    limiter: RateLimiter | None = getattr(request.app.state, "rate_limiter", None)
    if limiter is None:
        return
    key = f"user:{principal.user_id}" if principal else f"ip:{client_address(request)}"
    webhook_id = request.path_params.get("webhook_id")
    route_path = getattr(request.scope.get("route"), "path", "")
    if webhook_id is not None and "/hooks/" in route_path:
        # Deliveries come from a few provider addresses shared by every repository they serve
        # (and GitHub never retries a 429): each webhook gets its own budget instead.
        key = f"hook:{webhook_id}"
    is_read = request.method in {"GET", "HEAD", "OPTIONS"}
    item = limiter.policy.reads if is_read else limiter.policy.writes
    await limiter.hit(item, budget_key(is_read, key))


async def enforce_auth_rate_limit(request: Request) -> None:
    """Sign-in and registration: a small budget per client address (password guessing)."""
    limiter: RateLimiter | None = getattr(request.app.state, "rate_limiter", None)
    if limiter is None:
        return
    await limiter.hit(limiter.policy.auth, f"auth:ip:{client_address(request)}")


# Access to workspace-owned objects ----------------------------------------------------------

T = TypeVar("T")


@dataclass(frozen=True)
class Access(Generic[T]):
    """An object the caller may see, with the caller's role in its workspace."""

    obj: T
    tenant_id: uuid.UUID
    role: Role
    principal: Principal

    def can(self, permission: Permission) -> bool:
        return has_permission(self.role, permission)

    def require(self, permission: Permission) -> None:
        if not self.can(permission):
            raise AuthorizationError(
                f"Your role ({self.role.value}) does not allow this ({permission.value})"
            )

    def require_role(self, minimum: Role) -> None:
        if not role_at_least(self.role, minimum):
            raise AuthorizationError(f"This needs the {minimum.value} role")


def _scoped(principal: Principal, project_id: uuid.UUID) -> bool:
    return principal.project_scope is None or principal.project_scope == project_id


async def load_workspace(
    session: AsyncSession, principal: Principal, workspace_id: uuid.UUID
) -> Access[Tenant]:
    role = principal.roles.get(workspace_id)
    tenant = await session.get(Tenant, workspace_id) if role is not None else None
    if tenant is None or role is None:
        raise not_found("Workspace", workspace_id)
    return Access(tenant, tenant.id, role, principal)


async def check_workspace_role(
    session: AsyncSession, principal: Principal, workspace_id: uuid.UUID
) -> Access[uuid.UUID]:
    """Membership of a workspace without loading it, for routes that need only its id. The
    role comes from the principal: a deleted workspace's members lose it with the memberships
    (cascade), so a missing role is the same 404 as ``load_workspace``'s."""
    role = principal.roles.get(workspace_id)
    if role is None:
        raise not_found("Workspace", workspace_id)
    return Access(workspace_id, workspace_id, role, principal)


async def load_project(
    session: AsyncSession, principal: Principal, project_id: uuid.UUID
) -> Access[Project]:
    project = await ProjectRepository(session, principal.tenant_ids).get(project_id)
    if project is None or not _scoped(principal, project.id):
        raise not_found("Project", project_id)
    return Access(project, project.tenant_id, principal.roles[project.tenant_id], principal)


async def _load_project_child(
    repository: Any, noun: str, principal: Principal, obj_id: uuid.UUID
) -> Access[Any]:
    obj = await repository.get(obj_id)
    if obj is None:
        raise not_found(noun, obj_id)
    session: AsyncSession = repository.session
    project_id = getattr(obj, "project_id", None)
    if project_id is None:  # reached through its service
        project_id = await session.scalar(
            select(Service.project_id).where(Service.id == obj.service_id)
        )
    project = await session.get(Project, project_id)
    if project is None or not _scoped(principal, project.id):
        raise not_found(noun, obj_id)
    return Access(obj, project.tenant_id, principal.roles[project.tenant_id], principal)


async def load_environment(
    session: AsyncSession, principal: Principal, environment_id: uuid.UUID
) -> Access[Environment]:
    repository = EnvironmentRepository(session, principal.tenant_ids)
    return await _load_project_child(repository, "Environment", principal, environment_id)


async def load_service(
    session: AsyncSession, principal: Principal, service_id: uuid.UUID
) -> Access[Service]:
    repository = ServiceRepository(session, principal.tenant_ids)
    return await _load_project_child(repository, "Service", principal, service_id)


async def load_deployment(
    session: AsyncSession, principal: Principal, deployment_id: uuid.UUID
) -> Access[Deployment]:
    repository = DeploymentRepository(session, principal.tenant_ids)
    return await _load_project_child(repository, "Deployment", principal, deployment_id)


def _access_dependency(
    loader: Callable[[AsyncSession, Principal, uuid.UUID], Awaitable[Access[Any]]],
    path_param: str,
) -> Callable[..., Awaitable[Access[Any]]]:
    async def dependency(
        request: Request, session: SessionDep, principal: PrincipalDep
    ) -> Access[Any]:
        raw = request.path_params[path_param]
        try:
            obj_id = uuid.UUID(str(raw))
        except ValueError:
            raise not_found(path_param.removesuffix("_id").capitalize(), raw) from None
        return await loader(session, principal, obj_id)

    return dependency


WorkspaceAccess = Annotated[
    Access[Tenant], Depends(_access_dependency(load_workspace, "workspace_id"))
]
WorkspaceMembership = Annotated[
    Access[uuid.UUID], Depends(_access_dependency(check_workspace_role, "workspace_id"))
]
ProjectAccess = Annotated[Access[Project], Depends(_access_dependency(load_project, "project_id"))]
EnvironmentAccess = Annotated[
    Access[Environment], Depends(_access_dependency(load_environment, "environment_id"))
]
ServiceAccess = Annotated[Access[Service], Depends(_access_dependency(load_service, "service_id"))]
DeploymentAccess = Annotated[
    Access[Deployment], Depends(_access_dependency(load_deployment, "deployment_id"))
]


def require_role(minimum: Role) -> Callable[..., Awaitable[Access[Tenant]]]:
    """A dependency for workspace routes that need at least ``minimum`` (e.g. owner to delete)."""

    async def dependency(access: WorkspaceAccess) -> Access[Tenant]:
        access.require_role(minimum)
        return access

    return dependency
