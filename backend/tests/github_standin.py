"""A GitHub stand-in: a real HTTP server on 127.0.0.1 that plays GitHub's OAuth and REST API.

Why a server and not mocks: the code under test makes real HTTP requests (authlib and httpx,
their headers, form encoding, redirects and error handling included), so what the tests prove
is what runs against github.com. Point ``github_url`` and ``github_api_url`` at ``base_url``.

What it plays, like GitHub does it:

* ``GET /login/oauth/authorize`` — the user "approves" at once: a redirect back to
  ``redirect_uri`` with ``code`` and ``state`` (or ``error=access_denied`` after
  :meth:`GitHubStandIn.deny_authorization`). The approving user is set with ``sign_in_as``.
* ``POST /login/oauth/access_token`` — client credentials (form or Basic), single-use codes that
  expire, ``redirect_uri`` must match, PKCE S256 checked; refusals are GitHub's
  ``200 {"error": ...}``. JSON or form-encoded answer depending on ``Accept``.
* ``GET /user``, ``GET /user/emails`` — with ``Authorization: Bearer|token <token>``; 401
  ``Bad credentials`` otherwise; ``/user/emails`` is a 404 without the ``user:email`` scope.

Per test: users and their emails (verified or not, primary or not) with :meth:`add_user`,
injected failures with :meth:`fail` (any path, any status, JSON or raw text, a number of times),
and every request recorded in :attr:`requests`. More of GitHub (webhooks, repositories) is added
with routes on :attr:`app`; :meth:`authenticated_user` resolves the caller's token for them.

The ``github_standin`` fixture gives a stand-in reset for the test; the server itself starts once
per session (``github_standin_server``). A test module enables them with
``pytest_plugins = ["tests.github_standin"]``.

PYTEST_DONT_REWRITE: nothing here relies on assert rewriting, and test modules import this file
before pytest sees it as a plugin (which would otherwise warn that it cannot be rewritten).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.types import Message, Receive, Scope, Send

DEFAULT_CLIENT_ID = "Iv1.standin0client0id"
DEFAULT_CLIENT_SECRET = "standin-client-secret-0123456789abcdef"
CODE_TTL_SECONDS = 600  # GitHub: codes expire after 10 minutes
_START_TIMEOUT_SECONDS = 10.0


@dataclass
class StandInEmail:
    email: str
    primary: bool = False
    verified: bool = True
    visibility: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "email": self.email,
            "primary": self.primary,
            "verified": self.verified,
            "visibility": self.visibility,
        }


@dataclass
class StandInUser:
    """A GitHub account. Change ``login``, ``name`` or ``emails`` at will between requests."""

    id: int
    login: str
    name: str | None = None
    emails: list[StandInEmail] = field(default_factory=list)
    public_email: str | None = None

    def to_json(self, base_url: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "node_id": f"U_standin{self.id}",
            "login": self.login,
            "name": self.name,
            "email": self.public_email,
            "type": "User",
            "site_admin": False,
            "avatar_url": f"{base_url}/avatars/{self.id}",
            "html_url": f"{base_url}/{self.login}",
        }


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    body: bytes

    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode("latin-1"), keep_blank_values=True))


@dataclass
class _Failure:
    status: int
    json: Any
    text: str | None
    remaining: int | None  # None: every time

    def response(self) -> Response:
        if self.text is not None:
            return PlainTextResponse(self.text, status_code=self.status)
        return JSONResponse(self.json, status_code=self.status)


@dataclass
class _Grant:
    user_id: int
    client_id: str
    redirect_uri: str
    scopes: frozenset[str]
    code_challenge: str | None
    code_challenge_method: str | None
    expires_at: float


@dataclass
class _Token:
    user_id: int
    scopes: frozenset[str]


def _with_query(url: str, params: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class GitHubStandIn:
    """The stand-in's state (thread-safe: the server runs in its own thread) and its ASGI app."""

    def __init__(
        self,
        *,
        client_id: str = DEFAULT_CLIENT_ID,
        client_secret: str = DEFAULT_CLIENT_SECRET,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
        self._lock = threading.RLock()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self.base_url = ""
        self._install_routes()
        self.reset()

    # Configuration (called by tests) -------------------------------------------------------

    def reset(self) -> None:
        """Forget users, grants, tokens, failures and recorded requests."""
        with self._lock:
            self.users: dict[int, StandInUser] = {}
            self.requests: list[RecordedRequest] = []
            self._next_id = 1000
            self._signed_in: int | None = None
            self._denial: tuple[str, str] | None = None
            self._grants: dict[str, _Grant] = {}
            self._tokens: dict[str, _Token] = {}
            self._failures: dict[tuple[str, str], _Failure] = {}

    def add_user(
        self,
        login: str,
        *,
        name: str | None = None,
        emails: list[StandInEmail] | None = None,
        user_id: int | None = None,
    ) -> StandInUser:
        """A GitHub account. Default emails: ``<login>@users.example.com``, verified, primary."""
        with self._lock:
            if user_id is None:
                self._next_id += 1
                user_id = self._next_id
            if emails is None:
                emails = [StandInEmail(f"{login}@users.example.com", primary=True)]
            user = StandInUser(id=user_id, login=login, name=name, emails=emails)
            self.users[user.id] = user
            return user

    def sign_in_as(self, user: StandInUser) -> None:
        """``user`` approves the next authorize requests (the browser is "signed in" to GitHub)."""
        with self._lock:
            self._signed_in = user.id
            self._denial = None

    def deny_authorization(
        self,
        error: str = "access_denied",
        description: str = "The user has denied your application access.",
    ) -> None:
        """The next authorize requests redirect back with ``?error=`` (the user pressed Cancel)."""
        with self._lock:
            self._denial = (error, description)

    def fail(
        self,
        path: str,
        *,
        method: str = "GET",
        status: int = 500,
        json: Any = None,
        text: str | None = None,
        times: int | None = None,
    ) -> None:
        """Answer ``method path`` with this instead of the real thing (``times``: then stop)."""
        body = {"message": "Server Error"} if json is None and text is None else json
        with self._lock:
            self._failures[(method.upper(), path)] = _Failure(status, body, text, times)

    def issue_token(self, user: StandInUser, scopes: tuple[str, ...] = ("repo", "user")) -> str:
        """A valid access token for ``user`` without the OAuth dance (API tests)."""
        token = "gho_" + secrets.token_urlsafe(27)
        with self._lock:
            self._tokens[token] = _Token(user.id, frozenset(scopes))
        return token

    def issued_tokens(self) -> list[str]:
        with self._lock:
            return list(self._tokens)

    def requests_to(self, path: str, method: str | None = None) -> list[RecordedRequest]:
        with self._lock:
            return [
                r
                for r in self.requests
                if r.path == path and (method is None or r.method == method.upper())
            ]

    def authenticated_user(self, request: Request) -> tuple[StandInUser, frozenset[str]] | None:
        """The user and scopes of the request's ``Authorization: Bearer|token`` header."""
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() not in {"bearer", "token"} or not value:
            return None
        with self._lock:
            token = self._tokens.get(value.strip())
            user = self.users.get(token.user_id) if token else None
            return (user, token.scopes) if user and token else None

    # Lifecycle -----------------------------------------------------------------------------

    def start(self) -> GitHubStandIn:
        """Serve on 127.0.0.1 and a free port (bound here first: no race for the port)."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        config = uvicorn.Config(
            self,
            host="127.0.0.1",
            port=port,
            interface="asgi3",
            lifespan="off",
            loop="asyncio",
            http="h11",
            ws="none",
            log_level="warning",
            access_log=False,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="github-standin", daemon=True
        )
        thread.start()
        deadline = time.monotonic() + _START_TIMEOUT_SECONDS
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                server.should_exit = True
                sock.close()
                raise RuntimeError("the GitHub stand-in did not start")
            time.sleep(0.01)
        self._server, self._thread, self._socket = server, thread, sock
        self.base_url = f"http://127.0.0.1:{port}"
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=_START_TIMEOUT_SECONDS)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None

    def __enter__(self) -> GitHubStandIn:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # ASGI: record every request, answer injected failures, else the app ----------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        method, path = scope["method"], scope["path"]
        recorded = RecordedRequest(
            method=method,
            path=path,
            query=dict(parse_qsl(scope["query_string"].decode("latin-1"))),
            headers={k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]},
            body=body,
        )
        with self._lock:
            self.requests.append(recorded)
            failure = self._failures.get((method, path))
            if failure is not None and failure.remaining is not None:
                failure.remaining -= 1
                if failure.remaining <= 0:
                    del self._failures[(method, path)]
        if failure is not None:
            await failure.response()(scope, receive, send)
            return

        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()  # the disconnect, when it comes
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    # GitHub's endpoints --------------------------------------------------------------------

    def _install_routes(self) -> None:
        app = self.app

        @app.get("/login/oauth/authorize")
        async def authorize(request: Request) -> Response:
            params = request.query_params
            if params.get("client_id") != self.client_id:
                return PlainTextResponse("Unknown client_id", status_code=404)
            redirect_uri = params.get("redirect_uri", "")
            if not redirect_uri.startswith(("http://", "https://")):
                return PlainTextResponse("redirect_uri is required", status_code=400)
            state = params.get("state")
            back: dict[str, str] = {}
            with self._lock:
                if self._denial is not None:
                    back = {"error": self._denial[0], "error_description": self._denial[1]}
                elif self._signed_in is None:
                    return PlainTextResponse(
                        "nobody is signed in to the stand-in: call sign_in_as()", status_code=400
                    )
                else:
                    code = secrets.token_hex(10)
                    self._grants[code] = _Grant(
                        user_id=self._signed_in,
                        client_id=self.client_id,
                        redirect_uri=redirect_uri,
                        scopes=frozenset(params.get("scope", "").replace(",", " ").split()),
                        code_challenge=params.get("code_challenge"),
                        code_challenge_method=params.get("code_challenge_method"),
                        expires_at=time.monotonic() + CODE_TTL_SECONDS,
                    )
                    back = {"code": code}
            if state is not None:
                back["state"] = state
            return RedirectResponse(_with_query(redirect_uri, back), status_code=302)

        @app.post("/login/oauth/access_token")
        async def access_token(request: Request) -> Response:
            form = dict(parse_qsl((await request.body()).decode("latin-1")))
            client_id, client_secret = form.get("client_id"), form.get("client_secret")
            scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() == "basic":
                try:
                    decoded = base64.b64decode(credentials).decode("latin-1")
                except (binascii.Error, ValueError):
                    decoded = ""
                client_id, _, client_secret = decoded.partition(":")
            answer = self._exchange(form, client_id, client_secret)
            if "application/json" in request.headers.get("accept", ""):
                return JSONResponse(answer)
            return PlainTextResponse(
                urlencode(answer), media_type="application/x-www-form-urlencoded"
            )

        @app.get("/user")
        async def user(request: Request) -> Response:
            caller = self.authenticated_user(request)
            if caller is None:
                return self._unauthorized(request)
            return self._json(caller[0].to_json(self.base_url), caller[1])

        @app.get("/user/emails")
        async def emails(request: Request) -> Response:
            caller = self.authenticated_user(request)
            if caller is None:
                return self._unauthorized(request)
            account, scopes = caller
            if not scopes & {"user", "user:email"}:
                return JSONResponse({"message": "Not Found"}, status_code=404)
            return self._json([e.to_json() for e in account.emails], scopes)

    def _exchange(
        self, form: dict[str, str], client_id: str | None, client_secret: str | None
    ) -> dict[str, str]:
        """GitHub's token endpoint: refusals are ``200 {"error": ...}``, as GitHub does it."""
        if client_id != self.client_id or not hmac.compare_digest(
            (client_secret or "").encode(), self.client_secret.encode()
        ):
            return _oauth_error(
                "incorrect_client_credentials",
                "The client_id and/or client_secret passed are incorrect.",
            )
        with self._lock:
            grant = self._grants.pop(form.get("code", ""), None)  # single use, even when refused
            if grant is None or grant.expires_at < time.monotonic():
                return _oauth_error(
                    "bad_verification_code", "The code passed is incorrect or expired."
                )
            if form.get("redirect_uri", grant.redirect_uri) != grant.redirect_uri:
                return _oauth_error(
                    "redirect_uri_mismatch",
                    "The redirect_uri MUST match the registered callback URL for this application.",
                )
            if grant.code_challenge is not None:
                verifier = form.get("code_verifier", "")
                if grant.code_challenge_method != "S256" or not hmac.compare_digest(
                    _s256(verifier), grant.code_challenge
                ):
                    return _oauth_error(
                        "bad_verification_code", "The code_verifier does not match."
                    )
            token = "gho_" + secrets.token_urlsafe(27)
            self._tokens[token] = _Token(grant.user_id, grant.scopes)
        return {"access_token": token, "token_type": "bearer", "scope": ",".join(grant.scopes)}

    @staticmethod
    def _json(body: Any, scopes: frozenset[str]) -> JSONResponse:
        return JSONResponse(body, headers={"X-OAuth-Scopes": ", ".join(sorted(scopes))})

    @staticmethod
    def _unauthorized(request: Request) -> JSONResponse:
        message = "Bad credentials" if "authorization" in request.headers else "Requires auth"
        return JSONResponse(
            {"message": message, "documentation_url": "https://docs.github.com/rest"},
            status_code=401,
        )


def _oauth_error(error: str, description: str) -> dict[str, str]:
    return {
        "error": error,
        "error_description": description,
        "error_uri": "https://docs.github.com/apps/troubleshooting",
    }


# Fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def github_standin_server() -> Iterator[GitHubStandIn]:
    """One stand-in server for the session (starting a server per test would be slow)."""
    with GitHubStandIn() as standin:
        yield standin


@pytest.fixture
def github_standin(github_standin_server: GitHubStandIn) -> Iterator[GitHubStandIn]:
    """The stand-in, empty: no users, no failures, no recorded requests."""
    github_standin_server.reset()
    try:
        yield github_standin_server
    finally:
        github_standin_server.reset()
