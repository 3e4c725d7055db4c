"""GitHub: the OAuth app behind "Sign in with GitHub", and a small typed REST API client.

Both base URLs come from settings (``github_url``, ``github_api_url``), so the same code talks to
github.com, to a GitHub Enterprise Server, or to the local stand-in the test suite runs.

Two classes because they hold different secrets for different lifetimes:

* :class:`GitHubOAuthApp` holds the app's client id and secret. It builds the authorize URL and
  trades a one-time code for a user's access token, through authlib's ``AsyncOAuth2Client`` (which
  speaks RFC 6749 and PKCE for us, and turns GitHub's ``200 {"error": ...}`` answers into errors).
* :class:`GitHubClient` holds one user's access token and calls the REST API with it. Sign-in
  needs ``/user`` and ``/user/emails``; webhooks and repositories will add methods here.

Errors are two kinds on purpose, because callers answer them differently: GitHub *refused*
(:class:`GitHubOAuthError`: a bad or expired code, the user said no — the user can start again),
or GitHub *failed* (:class:`GitHubAPIError`: unreachable, a 5xx, an answer we cannot read — not
the user's fault). Messages never contain a token, a code, or the client secret, so they can be
shown and logged as they are.
"""

from __future__ import annotations

import ssl
import warnings
from collections.abc import Sequence
from functools import cache
from types import TracebackType
from typing import Any, Final, TypeVar

import httpx
from authlib.integrations.base_client import OAuthError
from pydantic import BaseModel, ConfigDict, TypeAdapter
from pydantic import ValidationError as PydanticValidationError

from caboose.config import Settings

with warnings.catch_warnings():
    # authlib 1.9 would rather use the `httpx2` fork and warns on every `caboosed` command when
    # it finds httpx, which the rest of the platform uses: one HTTP client is enough.
    warnings.filterwarnings("ignore", message="The httpx module is deprecated")
    from authlib.integrations.httpx_client import AsyncOAuth2Client


__all__ = [
    "API_VERSION",
    "SIGN_IN_SCOPES",
    "GitHubAPIError",
    "GitHubClient",
    "GitHubEmail",
    "GitHubError",
    "GitHubOAuthApp",
    "GitHubOAuthError",
    "GitHubUser",
    "verified_primary_email",
]

API_VERSION: Final = "2022-11-28"
"""Pinned REST API version (``X-GitHub-Api-Version``): GitHub keeps its shape stable per version."""

SIGN_IN_SCOPES: Final = ("read:user", "user:email")
"""Read the profile and the email addresses (private ones too): nothing that can change anything."""

DEFAULT_TIMEOUT: Final = httpx.Timeout(10.0)
"""A sign-in waits on GitHub while the user watches: fail in seconds rather than hang."""

_MAX_MESSAGE: Final = 300

T = TypeVar("T")


@cache
def _ssl_context() -> ssl.SSLContext:
    """One TLS context for every GitHub client of the process.

    Building one loads the CA bundle, which costs more than a whole sign-in round trip to
    GitHub; clients are per request (an OAuth client holds that request's token), contexts
    need not be.
    """
    return httpx.create_ssl_context()


def _printable(text: str | None) -> str:
    """Text from GitHub, cut short and stripped of control characters before it is shown."""
    cleaned = "".join(ch for ch in (text or "") if ch.isprintable())
    return cleaned[:_MAX_MESSAGE]


class GitHubError(Exception):
    """Talking to GitHub did not work. The message is safe to show and to log."""


class GitHubOAuthError(GitHubError):
    """GitHub refused an OAuth step: ``error`` is its code (``bad_verification_code`` …)."""

    def __init__(self, error: str, description: str | None = None) -> None:
        self.error = _printable(error) or "unknown_error"
        self.description = _printable(description) or None
        message = self.error if self.description is None else f"{self.error}: {self.description}"
        super().__init__(message)


class GitHubAPIError(GitHubError):
    """GitHub could not be reached, or answered with an error or something we cannot read.

    ``status_code`` is GitHub's HTTP status when there was one (None: no answer at all).
    """

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        self.status_code = status_code
        super().__init__(message)


# Responses --------------------------------------------------------------------------------


class _GitHubModel(BaseModel):
    # GitHub adds fields over time; take what we use, ignore the rest, never fail on new ones.
    model_config = ConfigDict(extra="ignore", frozen=True)


class GitHubUser(_GitHubModel):
    """``GET /user``: who the token belongs to. ``id`` never changes; ``login`` can be renamed."""

    id: int
    login: str
    name: str | None = None
    # The *public* profile email: unverified and optional. Never used to identify anyone.
    email: str | None = None
    avatar_url: str | None = None
    html_url: str | None = None


class GitHubEmail(_GitHubModel):
    """One entry of ``GET /user/emails``."""

    email: str
    primary: bool = False
    verified: bool = False
    visibility: str | None = None


_USER = TypeAdapter(GitHubUser)
_EMAILS = TypeAdapter(list[GitHubEmail])


def verified_primary_email(emails: Sequence[GitHubEmail]) -> str | None:
    """The address GitHub has verified *and* the user marked primary, if there is one.

    Only that one identifies a person: anyone can add an unverified address (someone else's),
    and a verified secondary address is not the one the user chose to be reached at.
    """
    for entry in emails:
        if entry.primary and entry.verified:
            return entry.email
    return None


# The OAuth app ----------------------------------------------------------------------------


class GitHubOAuthApp:
    """The OAuth app registered on GitHub: authorize URL and code exchange."""

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        web_url: str,
        redirect_uri: str,
        scopes: Sequence[str] = SIGN_IN_SCOPES,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
    ) -> None:
        self.client_id = client_id
        self._client_secret = client_secret
        self.web_url = web_url.rstrip("/")
        self.redirect_uri = redirect_uri
        self.scopes = tuple(scopes)
        self._timeout = timeout

    def __repr__(self) -> str:
        # Never the client secret.
        return f"GitHubOAuthApp(client_id={self.client_id!r}, web_url={self.web_url!r})"

    @classmethod
    def from_settings(cls, settings: Settings, *, redirect_uri: str) -> GitHubOAuthApp:
        """The instance's app; ``settings.github_oauth_enabled`` must be true."""
        if not (settings.github_client_id and settings.github_client_secret):
            raise ValueError("GitHub sign-in is not configured (client id and secret)")
        return cls(
            client_id=settings.github_client_id,
            client_secret=settings.github_client_secret,
            web_url=settings.github_url,
            redirect_uri=redirect_uri,
        )

    @property
    def authorize_endpoint(self) -> str:
        return f"{self.web_url}/login/oauth/authorize"

    @property
    def token_endpoint(self) -> str:
        return f"{self.web_url}/login/oauth/access_token"

    def _oauth_client(self) -> Any:
        # client_secret_post: the form GitHub documents (it accepts Basic too).
        return AsyncOAuth2Client(
            client_id=self.client_id,
            client_secret=self._client_secret,
            token_endpoint_auth_method="client_secret_post",  # noqa: S106 - a method name
            scope=" ".join(self.scopes),
            redirect_uri=self.redirect_uri,
            code_challenge_method="S256",
            timeout=self._timeout,
            verify=_ssl_context(),
        )

    async def authorization_url(self, *, state: str, code_verifier: str) -> str:
        """Where to send the browser. ``state`` and ``code_verifier`` are the caller's to keep.

        PKCE (S256) on top of ``state``: a code that leaks from the redirect (logs, referrers)
        is useless without the verifier, which never leaves the server.
        """
        async with self._oauth_client() as oauth:
            url, _ = oauth.create_authorization_url(
                self.authorize_endpoint, state=state, code_verifier=code_verifier
            )
        return str(url)

    async def exchange_code(self, code: str, *, code_verifier: str) -> str:
        """Trade the code from the callback for the user's access token."""
        async with self._oauth_client() as oauth:
            try:
                token = await oauth.fetch_token(
                    self.token_endpoint,
                    grant_type="authorization_code",
                    code=code,
                    code_verifier=code_verifier,
                )
            except OAuthError as exc:  # GitHub's 200 {"error": ...}
                raise GitHubOAuthError(str(exc.error), exc.description) from None
            except httpx.HTTPStatusError as exc:
                raise GitHubAPIError(
                    f"GitHub's token endpoint answered HTTP {exc.response.status_code}",
                    status_code=exc.response.status_code,
                ) from None
            except httpx.HTTPError as exc:
                raise GitHubAPIError(
                    f"GitHub's token endpoint could not be reached ({type(exc).__name__})"
                ) from None
            except ValueError:  # authlib: the answer is not a JSON object
                raise GitHubAPIError(
                    "GitHub's token endpoint answered something unreadable"
                ) from None
        access_token = token.get("access_token") if isinstance(token, dict) else None
        if not isinstance(access_token, str) or not access_token:
            raise GitHubAPIError("GitHub's token endpoint answered without an access token")
        return access_token


# The REST API -----------------------------------------------------------------------------


class GitHubClient:
    """One user's (or app installation's) token, calling GitHub's REST API.

    Use as an async context manager so the connection pool is closed::

        async with GitHubClient(token, api_url=settings.github_api_url) as github:
            user = await github.user()
    """

    def __init__(
        self,
        token: str,
        *,
        api_url: str,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self._http = httpx.AsyncClient(
            base_url=self.api_url,
            headers={
                "Accept": "application/vnd.github+json",
                "Authorization": f"Bearer {token}",
                "X-GitHub-Api-Version": API_VERSION,
                "User-Agent": "caboose",
            },
            timeout=timeout,
            transport=transport,
            verify=_ssl_context(),
        )

    def __repr__(self) -> str:
        # Never the token.
        return f"GitHubClient(api_url={self.api_url!r})"

    async def __aenter__(self) -> GitHubClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def get_json(self, path: str, *, params: dict[str, str] | None = None) -> Any:
        """``GET {api}{path}`` and its JSON body; any failure is a :class:`GitHubAPIError`."""
        try:
            response = await self._http.get(path, params=params)
        except httpx.HTTPError as exc:
            raise GitHubAPIError(
                f"GitHub's API could not be reached for GET {path} ({type(exc).__name__})"
            ) from None
        if response.status_code >= 400:
            raise GitHubAPIError(
                f"GitHub's API answered HTTP {response.status_code} to GET {path}"
                + _api_message(response),
                status_code=response.status_code,
            )
        try:
            return response.json()
        except ValueError:
            raise GitHubAPIError(
                f"GitHub's API answered GET {path} with something that is not JSON",
                status_code=response.status_code,
            ) from None

    async def user(self) -> GitHubUser:
        """The account the token belongs to."""
        return _parse(_USER, await self.get_json("/user"), "/user")

    async def emails(self) -> list[GitHubEmail]:
        """Every address of the account, private ones included (needs the ``user:email`` scope)."""
        return _parse(_EMAILS, await self.get_json("/user/emails"), "/user/emails")


def _api_message(response: httpx.Response) -> str:
    """GitHub's own ``{"message": ...}`` for an error answer, when it sent one."""
    try:
        body = response.json()
    except ValueError:
        return ""
    message = body.get("message") if isinstance(body, dict) else None
    return f" ({_printable(message)})" if isinstance(message, str) and message else ""


def _parse(adapter: TypeAdapter[T], body: Any, path: str) -> T:
    try:
        return adapter.validate_python(body)
    except PydanticValidationError:
        raise GitHubAPIError(f"GitHub's API answered GET {path} in an unexpected shape") from None
