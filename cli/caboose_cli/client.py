"""The one way the CLI talks to a Caboose instance: an httpx client over ``/api/v1``.

It adds the bearer token, turns every error answer into an ``ApiError`` carrying the RFC 7807
``title`` and ``detail`` (so commands never parse error bodies themselves), and keeps a session
alive: a 401 with a stored refresh token rotates the pair once and retries the request once. A
token from ``CABOOSE_TOKEN`` is used as is and never refreshed, and a stored token is only ever
sent to the host it was issued by.
"""

from __future__ import annotations

import functools
import os
import ssl
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlencode

import httpx

from caboose_cli import __version__
from caboose_cli.config import (
    DEFAULT_HOST,
    Credentials,
    credentials_lock,
    load_credentials,
    normalize_host,
    save_credentials,
)
from caboose_cli.errors import ApiError, CliError, NotLoggedInError

API_PREFIX = "/api/v1"
PAGE_SIZE = 1000  # the API's maximum page

# A list value repeats the parameter (``?stream=build&stream=system``).
Params = Mapping[str, str | int | bool | list[str] | None]
Body = bytes | Callable[[], Iterable[bytes]] | None
TokenSource = Literal["env", "stored", "given", "none"]


@dataclass
class Auth:
    """Which instance to talk to and with which token, after the environment overrides."""

    host: str
    token: str | None
    source: TokenSource
    credentials: Credentials | None = None


def resolve_auth(host: str | None = None) -> Auth:
    """``--host`` > ``CABOOSE_HOST`` > the stored login's host > ``http://localhost:8080``;
    ``CABOOSE_TOKEN`` > the stored token (only if it was issued by that same host)."""
    stored = load_credentials()
    chosen = host or os.environ.get("CABOOSE_HOST") or (stored.host if stored else DEFAULT_HOST)
    effective = normalize_host(chosen)
    env_token = os.environ.get("CABOOSE_TOKEN", "").strip()
    if env_token:
        return Auth(effective, env_token, "env")
    if stored is not None and normalize_host(stored.host) == effective and stored.bearer:
        return Auth(effective, stored.bearer, "stored", stored)
    return Auth(effective, None, "none")


def _problem_detail(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, list):  # FastAPI's plain validation errors
        parts = [
            str(item.get("msg", item)) if isinstance(item, dict) else str(item) for item in value
        ]
        return "; ".join(parts)
    return str(value)


def problem_from_response(response: httpx.Response) -> ApiError:
    """An ``ApiError`` from any error answer: problem+json, plain JSON, or an HTML proxy page."""
    status = response.status_code
    fallback_title = f"HTTP {status} {response.reason_phrase}".strip()
    try:
        data = response.json()
    except ValueError:
        data = None
    if isinstance(data, dict) and ("title" in data or "detail" in data):
        title = str(data.get("title") or fallback_title)
        return ApiError(
            status=status, title=title, detail=_problem_detail(data.get("detail")), problem=data
        )
    text = response.text.strip()
    detail = None if not text or text.startswith("<") else text.splitlines()[0][:200]
    return ApiError(status=status, title=fallback_title, detail=detail)


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """httpx's default certificate verification (certifi, or ``SSL_CERT_FILE``), built once per
    process: loading the CA bundle takes a good part of a second, and a command (or a test
    session) may open several clients."""
    return httpx.create_ssl_context()


class Client:
    """A synchronous API client; one per command invocation."""

    def __init__(
        self,
        auth: Auth,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.auth = auth
        self._http = httpx.Client(
            base_url=f"{auth.host}{API_PREFIX}",
            timeout=httpx.Timeout(timeout),
            headers={"User-Agent": f"caboose-cli/{__version__}", "Accept": "application/json"},
            transport=transport,
            verify=_tls_context(),
        )

    # Lifecycle -----------------------------------------------------------------------------

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    @property
    def host(self) -> str:
        return self.auth.host

    @property
    def token(self) -> str | None:
        return self.auth.token

    def require_login(self) -> str:
        if not self.auth.token:
            raise NotLoggedInError(f"Not logged in to {self.host}")
        return self.auth.token

    # Requests ------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        json: Any = None,
        content: Body = None,
        headers: Mapping[str, str] | None = None,
        authenticated: bool = True,
        timeout: httpx.Timeout | float | None = None,
    ) -> httpx.Response:
        """Send a request and return the successful response; raise ``ApiError`` otherwise.

        ``content`` may be a callable returning a fresh iterable of chunks, so an upload can be
        sent again after a token refresh (an iterator can only be consumed once).
        """
        token = self.require_login() if authenticated else None
        response = self._send(method, path, params, json, content, headers, token, timeout)
        if response.status_code == 401 and authenticated and token is not None:
            fresh = self._refresh(token)
            if fresh is not None:
                response = self._send(method, path, params, json, content, headers, fresh, timeout)
        if response.is_error:
            error = problem_from_response(response)
            if response.status_code == 401 and authenticated:
                error.hint = {
                    "env": "Check CABOOSE_TOKEN.",
                    "given": "Check the token.",
                }.get(self.auth.source, "Run `caboose login` to sign in again.")
            raise error
        return response

    def _send(
        self,
        method: str,
        path: str,
        params: Params | None,
        json: Any,
        content: Body,
        headers: Mapping[str, str] | None,
        token: str | None,
        timeout: httpx.Timeout | float | None,
    ) -> httpx.Response:
        all_headers = dict(headers or {})
        if token is not None:
            all_headers["Authorization"] = f"Bearer {token}"
        body = content() if callable(content) else content
        query = {k: _query_value(v) for k, v in (params or {}).items() if v is not None}
        extra: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
        try:
            response = self._http.request(
                method, path, params=query, json=json, content=body, headers=all_headers, **extra
            )
        except httpx.TimeoutException:
            raise CliError(
                f"{self.host} did not answer in time ({method} {path})",
                hint=f"Try again; check the instance with `curl {self.host}/health`.",
            ) from None
        except httpx.TransportError as exc:
            raise CliError(
                f"Cannot reach {self.host}: {exc}",
                hint="Is the instance running? Choose another with --host or CABOOSE_HOST.",
            ) from None
        # The API also sets session cookies; the CLI authenticates with the bearer header only,
        # and a cookie sent along would bring CSRF checks into play.
        self._http.cookies.clear()
        return response

    def _refresh(self, used_token: str) -> str | None:
        """Rotate the stored session after a 401; the new access token, or ``None`` if this
        credential cannot be refreshed (an API token, or a token from the environment)."""
        stored = self.auth.credentials
        if self.auth.source != "stored" or stored is None or not stored.refresh_token:
            return None
        with credentials_lock():
            latest = load_credentials()
            if (
                latest is not None
                and latest.access_token
                and latest.access_token != used_token
                and normalize_host(latest.host) == self.host
            ):  # another caboose process refreshed meanwhile
                self._adopt(latest)
                return latest.access_token
            response = self._send(
                "POST",
                "/auth/refresh",
                None,
                {"refresh_token": stored.refresh_token},
                None,
                None,
                None,
                None,
            )
            if response.is_error:
                raise NotLoggedInError(f"Your session on {self.host} has expired")
            data = response.json()
            renewed = Credentials(
                host=stored.host,
                access_token=str(data["access_token"]),
                refresh_token=str(data["refresh_token"]),
                email=stored.email,
            )
            save_credentials(renewed)
            self._adopt(renewed)
            return renewed.access_token

    def _adopt(self, credentials: Credentials) -> None:
        self.auth = Auth(self.host, credentials.bearer, "stored", credentials)

    # JSON helpers --------------------------------------------------------------------------

    def get(self, path: str, *, params: Params | None = None) -> Any:
        return _json_of(self.request("GET", path, params=params))

    def post(self, path: str, json: Any = None, *, params: Params | None = None) -> Any:
        return _json_of(self.request("POST", path, params=params, json=json))

    def post_anonymous(self, path: str, json: Any = None) -> Any:
        """A POST without credentials (signing in)."""
        return _json_of(self.request("POST", path, json=json, authenticated=False))

    def put(self, path: str, json: Any = None, *, params: Params | None = None) -> Any:
        return _json_of(self.request("PUT", path, params=params, json=json))

    def patch(self, path: str, json: Any = None, *, params: Params | None = None) -> Any:
        return _json_of(self.request("PATCH", path, params=params, json=json))

    def delete(self, path: str, *, params: Params | None = None) -> Any:
        return _json_of(self.request("DELETE", path, params=params))

    def paginate(self, path: str, *, params: Params | None = None) -> list[dict[str, Any]]:
        """Every item of a list endpoint, page after page (``{items, has_more}``)."""
        items: list[dict[str, Any]] = []
        skip = 0
        while True:
            page = self.get(path, params={**(params or {}), "skip": skip, "limit": PAGE_SIZE})
            if isinstance(page, list):  # tolerate a bare list
                return [item for item in page if isinstance(item, dict)]
            batch = [item for item in (page or {}).get("items", []) if isinstance(item, dict)]
            items.extend(batch)
            if not page.get("has_more") or not batch:
                return items
            skip += len(batch)

    def websocket_url(self, path: str, params: Params | None = None) -> str:
        base = self.host.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
        query = {k: _query_value(v) for k, v in (params or {}).items() if v is not None}
        suffix = f"?{urlencode(query, doseq=True)}" if query else ""
        return f"{base}{API_PREFIX}{path}{suffix}"

    def refresh_now(self) -> None:
        """Make sure the token is fresh before a long-lived connection (a WebSocket cannot
        refresh mid-stream): a cheap authenticated call rotates it if it has expired."""
        self.get("/me")


def _query_value(value: str | int | bool | list[str]) -> str | list[str]:
    if isinstance(value, list):
        return [str(item) for item in value]
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _json_of(response: httpx.Response) -> Any:
    if response.status_code == 204 or not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        raise CliError(
            f"The instance answered {response.request.method} {response.request.url.path} "
            "with something that is not JSON",
            hint="Is --host / CABOOSE_HOST pointing at a Caboose instance?",
        ) from None
