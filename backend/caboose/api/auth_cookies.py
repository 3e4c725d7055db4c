"""The session cookies: names, attributes, and the CSRF double-submit check.

The access token cookie goes to every API path; the refresh token cookie only to the auth routes
that need it. Both are HTTP-only and SameSite=Lax (Secure outside development). The CSRF cookie
is readable by the dashboard's JavaScript, which echoes it in ``X-CSRF-Token`` on every unsafe
request; a cross-site form can send the cookies but cannot read the value to echo it.
"""

from __future__ import annotations

import hmac
import secrets

from fastapi import Request, Response

from caboose.config import Settings
from caboose.core.errors import AuthorizationError
from caboose.core.sessions import SessionTokens

ACCESS_COOKIE = "caboose_access"
REFRESH_COOKIE = "caboose_refresh"
CSRF_COOKIE = "caboose_csrf"
CSRF_HEADER = "X-CSRF-Token"
REFRESH_COOKIE_PATH = "/api/v1/auth"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def set_session_cookies(response: Response, tokens: SessionTokens, settings: Settings) -> str:
    """Set the three cookies; returns the CSRF token (also handed to API clients in the body)."""
    csrf = secrets.token_urlsafe(32)
    secure = settings.cookies_secure
    response.set_cookie(
        ACCESS_COOKIE,
        tokens.access_token,
        max_age=tokens.expires_in,
        httponly=True,
        secure=secure,
        samesite="lax",
        path="/",
    )
    response.set_cookie(
        REFRESH_COOKIE,
        tokens.refresh_token,
        max_age=int((tokens.refresh.expires_at - tokens.refresh.issued_at).total_seconds()),
        httponly=True,
        secure=secure,
        samesite="lax",
        path=REFRESH_COOKIE_PATH,
    )
    response.set_cookie(
        CSRF_COOKIE,
        csrf,
        max_age=int((tokens.refresh.expires_at - tokens.refresh.issued_at).total_seconds()),
        httponly=False,
        secure=secure,
        samesite="lax",
        path="/",
    )
    return csrf


def clear_session_cookies(response: Response, settings: Settings) -> None:
    for name, path in (
        (ACCESS_COOKIE, "/"),
        (REFRESH_COOKIE, REFRESH_COOKIE_PATH),
        (CSRF_COOKIE, "/"),
    ):
        response.delete_cookie(
            name, path=path, secure=settings.cookies_secure, httponly=name != CSRF_COOKIE
        )


def check_csrf(request: Request) -> None:
    """Unsafe cookie-authenticated requests must echo the CSRF cookie in the header."""
    if request.method in SAFE_METHODS:
        return
    cookie = request.cookies.get(CSRF_COOKIE, "")
    header = request.headers.get(CSRF_HEADER, "")
    if not cookie or not header or not hmac.compare_digest(cookie, header):
        raise AuthorizationError(
            f"Missing or wrong {CSRF_HEADER} header: cookie-authenticated requests that change "
            f"something must echo the {CSRF_COOKIE} cookie"
        )
