"""Sign in with GitHub: ``/auth/github/login`` sends the browser to GitHub, ``/callback`` ends it.

What protects the round trip, and why each piece is there:

* ``state`` — 32 random bytes, kept in Redis for ten minutes and deleted on first use (GETDEL).
  A callback whose state we did not issue, or already used, is refused before anything else.
* The state is also set in a short-lived HTTP-only cookie, and the callback must come back with
  the same value. Redis alone proves *we* issued the state, not that *this browser* started the
  sign-in: without the cookie, an attacker could start a sign-in, stop at the callback URL and
  send it to a victim, who would land signed in to the attacker's account (login CSRF).
* PKCE (S256): the code verifier stays in Redis next to the state, so a code that leaks from the
  redirect (a log, a referrer) cannot be exchanged by anyone else.
* ``next`` is kept only if it is a path on this site, so the sign-in cannot be used to bounce a
  user to another site (an open redirect that phishing pages love).

Then the account: the GitHub id when we know it (emails change; the id does not), else the
verified *primary* email — GitHub has proven the user receives mail there, so it is the same
person as the Caboose account with that email — else a new account, if registration is open.
The GitHub token is stored sealed (AES-256-GCM, bound to the user's row) for the repository
features to use later. The session that follows is the same as a password sign-in's.
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Final, Literal

from fastapi import APIRouter, Depends, Query, Request, status
from fastapi.responses import RedirectResponse
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from caboose.api.accounts import create_account
from caboose.api.auth_cookies import set_session_cookies
from caboose.api.deps import (
    KeysDep,
    RedisDep,
    SessionDep,
    SessionPolicyDep,
    SettingsDep,
    enforce_auth_rate_limit,
)
from caboose.config import Settings
from caboose.core.errors import (
    AppError,
    AuthenticationError,
    AuthorizationError,
    BadRequestError,
    ConflictError,
    NotFoundError,
)
from caboose.core.sessions import issue_session
from caboose.integrations.github import (
    GitHubAPIError,
    GitHubClient,
    GitHubOAuthApp,
    GitHubOAuthError,
    GitHubUser,
    verified_primary_email,
)
from caboose.models import User
from caboose.schemas.identity import normalize_email

logger = logging.getLogger("caboose.auth.github")

router = APIRouter(tags=["auth"])

STATE_KEY_PREFIX: Final = "caboose:oauth:state:"
STATE_TTL: Final = timedelta(minutes=10)
STATE_BYTES: Final = 32
STATE_COOKIE: Final = "caboose_oauth_state"
# Long enough for any state we issue (43 characters); anything longer is not ours.
_MAX_STATE_LENGTH: Final = 128
_MAX_CODE_LENGTH: Final = 512
_MAX_NEXT_LENGTH: Final = 2048

# Token-endpoint refusals that are the operator's to fix, not the user's: reported as 502.
_MISCONFIGURATION_ERRORS: Final = frozenset(
    {"incorrect_client_credentials", "redirect_uri_mismatch", "application_suspended"}
)


class GitHubUnavailableError(AppError):
    """GitHub failed (unreachable, a 5xx, an unreadable answer) or refused our configuration."""

    status = 502
    slug = "github-unavailable"
    title = "GitHub is unavailable"


def safe_next_path(value: str | None) -> str | None:
    """``value`` if it is a path on this site (``/projects/x?tab=logs``), else None.

    Refused: absolute URLs (``https://evil.example``), scheme-relative ones (``//evil.example``),
    backslashes (browsers read ``/\\evil.example`` as ``//evil.example``), and any whitespace or
    control character (browsers drop tabs and newlines from URLs, so ``/\\t/evil.example`` would
    become ``//evil.example`` too).
    """
    if not value or len(value) > _MAX_NEXT_LENGTH:
        return None
    if not value.startswith("/") or value.startswith("//"):
        return None
    if "\\" in value or any(not ch.isprintable() or ch.isspace() for ch in value):
        return None
    return value


def _state_key(state: str) -> str:
    return STATE_KEY_PREFIX + state


@dataclass(frozen=True, slots=True)
class _PendingSignIn:
    """What ``/login`` left in Redis for the callback."""

    next: str | None
    code_verifier: str


def _oauth_app(request: Request, settings: Settings) -> GitHubOAuthApp:
    """The instance's OAuth app, or a 404 when GitHub sign-in is not set up here."""
    if not settings.github_oauth_enabled:
        raise NotFoundError("GitHub sign-in is not configured on this instance")
    # The callback URL users' browsers reach: the public URL, not whatever host this request
    # came in on (GitHub compares it with the one registered for the app).
    callback_path = request.app.url_path_for("github_callback")
    return GitHubOAuthApp.from_settings(
        settings, redirect_uri=f"{settings.resolved_public_url}{callback_path}"
    )


def _state_cookie_path(request: Request) -> str:
    # Sent back only to the callback (the cookie is useless anywhere else).
    return str(request.app.url_path_for("github_callback"))


@router.get(
    "/auth/github/login",
    status_code=status.HTTP_302_FOUND,
    response_class=RedirectResponse,
    dependencies=[Depends(enforce_auth_rate_limit)],
    responses={302: {"description": "To GitHub's authorize page"}},
)
async def github_login(
    request: Request,
    settings: SettingsDep,
    redis: RedisDep,
    next_path: Annotated[
        str | None,
        Query(alias="next", description="Where to land after signing in: a path on this site."),
    ] = None,
) -> RedirectResponse:
    """Start signing in with GitHub: a redirect to GitHub's authorize page.

    ``next`` is kept only if it is a path on this site; otherwise the sign-in lands on ``/``.
    """
    oauth = _oauth_app(request, settings)
    state = secrets.token_urlsafe(STATE_BYTES)
    code_verifier = secrets.token_urlsafe(48)  # 64 characters: RFC 7636 allows 43 to 128
    pending = {"next": safe_next_path(next_path), "code_verifier": code_verifier}
    await redis.set(_state_key(state), json.dumps(pending), ex=STATE_TTL)
    url = await oauth.authorization_url(state=state, code_verifier=code_verifier)
    response = RedirectResponse(url, status_code=status.HTTP_302_FOUND)
    response.set_cookie(
        STATE_COOKIE,
        state,
        max_age=int(STATE_TTL.total_seconds()),
        httponly=True,
        secure=settings.cookies_secure,
        # Lax: sent on the top-level navigation back from github.com, which is all it needs.
        samesite="lax",
        path=_state_cookie_path(request),
    )
    return response


async def _consume_state(request: Request, redis: Redis, state: str | None) -> _PendingSignIn:
    """Check the callback's state against this browser's cookie, then use it up (GETDEL)."""
    if not state or len(state) > _MAX_STATE_LENGTH:
        raise BadRequestError("This sign-in has no valid state; start again from the sign-in page")
    cookie = request.cookies.get(STATE_COOKIE, "")
    if not cookie or not hmac.compare_digest(cookie.encode(), state.encode()):
        raise BadRequestError(
            "This sign-in was not started in this browser (or another one was started since); "
            "start again from the sign-in page"
        )
    raw = await redis.getdel(_state_key(state))
    if raw is None:
        raise BadRequestError(
            "This sign-in link has expired or was already used; start again from the sign-in page"
        )
    try:
        data = json.loads(raw)
        return _PendingSignIn(
            next=safe_next_path(data.get("next")), code_verifier=str(data["code_verifier"])
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        raise BadRequestError("This sign-in has no valid state; start again") from None


def _refusal(error: str, description: str | None) -> BadRequestError:
    """GitHub sent the user back with ``?error=``: most often they pressed "Cancel"."""
    if error == "access_denied":
        return BadRequestError("GitHub sign-in was cancelled: access was not granted")
    detail = GitHubOAuthError(error, description)
    return BadRequestError(f"GitHub refused the sign-in ({detail})")


async def _exchange(oauth: GitHubOAuthApp, code: str, code_verifier: str) -> str:
    try:
        return await oauth.exchange_code(code, code_verifier=code_verifier)
    except GitHubOAuthError as exc:
        if exc.error in _MISCONFIGURATION_ERRORS:
            raise GitHubUnavailableError(
                f"GitHub sign-in is misconfigured on this instance ({exc.error})"
            ) from None
        raise BadRequestError(
            f"GitHub did not accept the sign-in code ({exc}); start again from the sign-in page"
        ) from None
    except GitHubAPIError as exc:
        raise GitHubUnavailableError(str(exc)) from None


async def _primary_email(github: GitHubClient) -> str:
    """The verified primary address, normalised: how an existing account is recognised."""
    try:
        emails = await github.emails()
    except GitHubAPIError as exc:
        raise GitHubUnavailableError(
            f"Could not read your email addresses from GitHub: {exc}"
        ) from None
    address = verified_primary_email(emails)
    if address is None:
        raise BadRequestError(
            "Your GitHub account has no verified primary email address: verify one on GitHub "
            "(Settings → Emails), then sign in again"
        )
    try:
        return normalize_email(address)
    except ValueError:
        raise BadRequestError(
            "The primary email address of your GitHub account is not usable here"
        ) from None


SignInOutcome = Literal["returning", "linked", "created"]


async def _find_or_create_account(
    session: AsyncSession, settings: Settings, github: GitHubClient, github_user: GitHubUser
) -> tuple[User, SignInOutcome]:
    """The Caboose account of this GitHub user: by GitHub id, else by verified email, else new."""
    user = await session.scalar(select(User).where(User.github_id == github_user.id))
    if user is not None:
        return user, "returning"
    email = await _primary_email(github)
    user = await session.scalar(select(User).where(User.email == email))
    if user is not None:
        if user.github_id is not None:
            # Another GitHub account already signs in to it; silently switching would hand the
            # account to whoever holds this email on GitHub today.
            raise ConflictError(
                "The Caboose account with this email is linked to a different GitHub account"
            )
        return user, "linked"
    if not settings.registration_open:
        raise AuthorizationError(
            "Sign-up is by invitation on this instance: ask a workspace owner to invite you"
        )
    user = await create_account(
        session,
        email=email,
        name=(github_user.name or github_user.login)[:100],
        password_hash=None,
    )
    return user, "created"


@router.get(
    "/auth/github/callback",
    name="github_callback",
    status_code=status.HTTP_302_FOUND,
    response_class=RedirectResponse,
    dependencies=[Depends(enforce_auth_rate_limit)],
    responses={302: {"description": "Signed in: to `next`, or `/`"}},
)
async def github_callback(
    request: Request,
    session: SessionDep,
    redis: RedisDep,
    keys: KeysDep,
    policy: SessionPolicyDep,
    settings: SettingsDep,
    code: str | None = None,
    state: str | None = None,
    error: str | None = None,
    error_description: str | None = None,
) -> RedirectResponse:
    """Where GitHub sends the browser back: sign in (linking or creating the account).

    Any problem — a state we did not issue or already used, a refusal on GitHub, GitHub being
    down, no verified primary email, sign-up closed — is a problem response and nothing is
    written.
    """
    oauth = _oauth_app(request, settings)
    pending = await _consume_state(request, redis, state)
    if error:
        raise _refusal(error, error_description)
    if not code or len(code) > _MAX_CODE_LENGTH:
        raise BadRequestError("GitHub sent no valid authorization code; start again")

    access_token = await _exchange(oauth, code, pending.code_verifier)
    async with GitHubClient(access_token, api_url=settings.github_api_url) as github:
        try:
            github_user = await github.user()
        except GitHubAPIError as exc:
            raise GitHubUnavailableError(f"Could not read your GitHub profile: {exc}") from None
        user, outcome = await _find_or_create_account(session, settings, github, github_user)

    if not user.is_active:
        raise AuthenticationError("This account is disabled")
    try:
        async with session.begin_nested():
            user.github_id = github_user.id
            user.github_login = github_user.login
            user.github_token_encrypted = keys.oauth_tokens.encrypt(
                access_token, aad=f"user:{user.id}:github_token"
            )
            user.last_login_at = datetime.now(UTC)
            await session.flush()
    except IntegrityError:
        # A concurrent sign-in linked this GitHub account to another Caboose account first.
        raise ConflictError(
            "This GitHub account was just linked to another account; sign in again"
        ) from None

    tokens = await issue_session(redis, policy, str(user.id))
    response = RedirectResponse(pending.next or "/", status_code=status.HTTP_302_FOUND)
    set_session_cookies(response, tokens, settings)
    response.delete_cookie(
        STATE_COOKIE,
        path=_state_cookie_path(request),
        secure=settings.cookies_secure,
        httponly=True,
        samesite="lax",
    )
    logger.info(
        "signed in with GitHub",
        extra={"user_id": str(user.id), "github_login": github_user.login, "outcome": outcome},
    )
    return response
