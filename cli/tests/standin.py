"""A stand-in Caboose API for the CLI's tests: Starlette under uvicorn on a loopback port.

It plays the shapes of API.md (and of the routes that have landed in ``backend/``): bearer auth
with access/refresh/API tokens, problem+json errors, pages, projects with environments and
services, uploads that start a deployment, log history with a ``next`` cursor, the log WebSocket
(first-message auth, history then live, ``status`` messages, close codes), and variables. State is
in memory, in a ``World`` the tests inspect and steer (expire tokens, script a deployment's
outcome, drop the WebSocket mid-stream). The real platform is exercised by ``tests/e2e``.
"""

from __future__ import annotations

import asyncio
import gzip
import io
import itertools
import socket
import tarfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

PASSWORD = "correct horse battery staple"
EMAIL = "ada@example.com"
STEP_SECONDS = 0.05  # time between two scripted events of a deployment
FINAL = {"FAILED", "CRASHED", "CANCELLED", "REMOVED"}


def now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class ProblemError(Exception):
    def __init__(self, status: int, title: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail, self.extra = status, title, detail, extra


def not_found(noun: str, ident: object) -> ProblemError:
    return ProblemError(404, "Not found", f"{noun} {ident} not found")


@dataclass
class Deployment:
    id: str
    service_id: str
    environment_id: str
    started: float
    # (seconds after start, event): {"type": "log", ...} or {"type": "status", ...}
    script: list[tuple[float, dict[str, Any]]]
    build_id: str | None = field(default_factory=lambda: str(uuid.uuid4()))
    commit_sha: str | None = None
    created_at: str = field(default_factory=now_iso)
    url: str | None = None
    removed: bool = False
    files: list[str] = field(default_factory=list)
    # The newer deployment that replaces this one once it is ACTIVE (zero-downtime swap).
    replaced_by: Deployment | None = None

    def events_until(self, moment: float) -> list[dict[str, Any]]:
        return [event for offset, event in self.script if self.started + offset <= moment]

    @property
    def status(self) -> str:
        if self.removed or (self.replaced_by is not None and self.replaced_by.went_live):
            return "REMOVED"
        statuses = [e for e in self.events_until(time.time()) if e["type"] == "status"]
        return statuses[-1]["status"] if statuses else "QUEUED"

    @property
    def went_live(self) -> bool:
        return any(
            e["type"] == "status" and e["status"] == "ACTIVE"
            for e in self.events_until(time.time())
        )

    @property
    def status_reason(self) -> str | None:
        statuses = [e for e in self.events_until(time.time()) if e["type"] == "status"]
        return statuses[-1].get("status_reason") if statuses else None

    def public(self) -> dict[str, Any]:
        status = self.status
        return {
            "id": self.id,
            "service_id": self.service_id,
            "environment_id": self.environment_id,
            "build_id": self.build_id,
            "status": status,
            "status_reason": self.status_reason,
            "created_at": self.created_at,
            "updated_at": self.created_at,
            "started_at": self.created_at,
            "finished_at": None,
            "commit_sha": self.commit_sha,
            "url": self.url if status == "ACTIVE" else None,
            "replicas": [],
        }

    def logs(self) -> list[dict[str, Any]]:
        return [e for e in self.events_until(time.time()) if e["type"] == "log"]


@dataclass
class World:
    """Everything the stand-in knows, plus the knobs tests turn."""

    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    access_tokens: dict[str, str] = field(default_factory=dict)
    refresh_tokens: dict[str, str] = field(default_factory=dict)
    api_tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    workspaces: dict[str, dict[str, Any]] = field(default_factory=dict)
    projects: dict[str, dict[str, Any]] = field(default_factory=dict)
    environments: dict[str, dict[str, Any]] = field(default_factory=dict)
    services: dict[str, dict[str, Any]] = field(default_factory=dict)
    deployments: dict[str, Deployment] = field(default_factory=dict)
    variables: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    sealed: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    shared: dict[str, dict[str, str]] = field(default_factory=dict)
    domains: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    refresh_calls: int = 0
    # Knobs.
    outcome: str = "ACTIVE"  # how the next deployment ends
    outcome_reason: str | None = None
    ws_drop_after: int | None = None  # close the next WebSocket abnormally after N log lines
    ws_enabled: bool = True
    ws_connections: int = 0
    ws_queries: list[dict[str, str]] = field(default_factory=list)
    ws_close_code: int | None = None  # refuse the next WebSocket after auth with this code
    ws_since_inclusive: bool = False  # resend the `since` line itself (a lax server)
    # Send lines as the platform does ({"type": "logs", "items": [...]} batches, after the
    # current status), or one {"type": "log", ...} message per line as API.md has it.
    ws_batches: bool = True
    counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    # Setup helpers ----------------------------------------------------------------------------

    def add_user(self, email: str = EMAIL, password: str = PASSWORD, name: str = "Ada") -> str:
        user_id = str(uuid.uuid4())
        self.users[email] = {"id": user_id, "email": email, "name": name, "password": password}
        self.add_workspace(user_id, name=f"{name}'s workspace", personal=True)
        return user_id

    def add_workspace(self, user_id: str, *, name: str, personal: bool = False) -> str:
        workspace_id = str(uuid.uuid4())
        slug = name.lower().replace("'", "").replace(" ", "-")
        self.workspaces[workspace_id] = {
            "id": workspace_id,
            "name": name,
            "slug": slug,
            "is_personal": personal,
            "members": {user_id: "owner"},
        }
        return workspace_id

    def add_project(self, workspace_id: str, name: str, *, services: tuple[str, ...] = ()) -> str:
        project_id = str(uuid.uuid4())
        self.projects[project_id] = {
            "id": project_id,
            "workspace_id": workspace_id,
            "name": name,
            "description": "",
            "preview_environments": False,
            "created_at": now_iso(),
            "updated_at": now_iso(),
        }
        self.add_environment(project_id, "production")
        for service in services:
            self.add_service(project_id, service)
        return project_id

    def add_environment(self, project_id: str, name: str) -> str:
        environment_id = str(uuid.uuid4())
        self.environments[environment_id] = {
            "id": environment_id,
            "project_id": project_id,
            "name": name,
            "is_preview": False,
            "pr_number": None,
            "created_at": now_iso(),
            "updated_at": now_iso(),
        }
        return environment_id

    def add_service(self, project_id: str, name: str) -> str:
        service_id = str(uuid.uuid4())
        self.services[service_id] = {
            "id": service_id,
            "project_id": project_id,
            "name": name,
            "repo_url": None,
            "branch": "main",
            "root_directory": "",
            "created_at": now_iso(),
            "updated_at": now_iso(),
        }
        return service_id

    def issue_session(self, user_id: str) -> dict[str, Any]:
        n = next(self.counter)
        access, refresh = f"at-{n}", f"rt-{n}"
        self.access_tokens[access] = user_id
        self.refresh_tokens[refresh] = user_id
        return {
            "access_token": access,
            "refresh_token": refresh,
            "token_type": "bearer",
            "expires_in": 900,
            "csrf_token": "csrf",
        }

    def expire_access_tokens(self) -> None:
        self.access_tokens.clear()

    def user_by_id(self, user_id: str) -> dict[str, Any]:
        return next(u for u in self.users.values() if u["id"] == user_id)

    def start_deployment(
        self,
        service_id: str,
        environment_id: str,
        *,
        lines: int = 3,
        files: list[str] | None = None,
    ) -> Deployment:
        deployment_id = str(uuid.uuid4())
        base = 1_700_000_000_000 + next(self.counter) * 1000
        script: list[tuple[float, dict[str, Any]]] = []
        sequence = itertools.count()

        def log(stream: str, line: str) -> None:
            n = next(sequence)
            script.append(
                (
                    n * STEP_SECONDS,
                    {
                        "type": "log",
                        "id": f"{base + n}-0",
                        "ts": now_iso(),
                        "stream": stream,
                        "replica": None if stream in ("build", "system") else 0,
                        "line": line,
                    },
                )
            )

        def status(value: str, reason: str | None = None) -> None:
            n = next(sequence)
            script.append(
                (n * STEP_SECONDS, {"type": "status", "status": value, "status_reason": reason})
            )

        status("BUILDING")
        for i in range(lines):
            log("build", f"build step {i + 1}")
        if self.outcome == "FAILED":
            log("build", "\x1b[31merror: the build failed\x1b[0m")
            status("FAILED", self.outcome_reason or "Build failed: exit code 1")
        else:
            status("DEPLOYING")
            log("stdout", "listening on [::]:8000")
            log("system", "==> Live: 1 replica(s) healthy")  # the platform's own line
            status(self.outcome, self.outcome_reason)
        service = self.services[service_id]
        project = self.projects[service["project_id"]]
        deployment = Deployment(
            id=deployment_id,
            service_id=service_id,
            environment_id=environment_id,
            started=time.time(),
            script=script,
            files=files or [],
            url=f"http://{service['name']}-{project['name']}.localhost:8080",
        )
        for other in self.deployments.values():
            same = (other.service_id, other.environment_id) == (service_id, environment_id)
            if same and other.status != "REMOVED" and self.outcome == "ACTIVE":
                other.replaced_by = deployment
        self.deployments[deployment_id] = deployment
        return deployment


# The app ---------------------------------------------------------------------------------------


def _problem(exc: ProblemError) -> JSONResponse:
    body = {
        "type": "about:blank",
        "title": exc.title,
        "status": exc.status,
        "detail": exc.detail,
        "request_id": "req-123",
        **exc.extra,
    }
    return JSONResponse(body, status_code=exc.status, media_type="application/problem+json")


def _page(items: list[dict[str, Any]], request: Request) -> dict[str, Any]:
    skip = int(request.query_params.get("skip", 0))
    limit = int(request.query_params.get("limit", 100))
    chunk = items[skip : skip + limit]
    return {
        "items": chunk,
        "total": len(items),
        "skip": skip,
        "limit": limit,
        "has_more": skip + len(chunk) < len(items),
    }


class StandIn:
    """The app and its server thread."""

    def __init__(self) -> None:
        self.world = World()
        self.app = Starlette(routes=self._routes())
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    # Lifecycle -------------------------------------------------------------------------------

    def start(self) -> StandIn:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            lifespan="off",
            ws_ping_interval=None,
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the stand-in server did not start")
            time.sleep(0.01)
        self.url = f"http://127.0.0.1:{port}"
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    def reset(self) -> World:
        self.world = World()
        return self.world

    # Auth ------------------------------------------------------------------------------------

    def _user(self, request: Request) -> dict[str, Any]:
        header = request.headers.get("authorization", "")
        token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
        return self._user_for_token(token)

    def _user_for_token(self, token: str) -> dict[str, Any]:
        world = self.world
        if token in world.access_tokens:
            return world.user_by_id(world.access_tokens[token])
        record = world.api_tokens.get(token)
        if record is not None and not record["revoked_at"]:
            return world.user_by_id(record["user_id"])
        raise ProblemError(401, "Authentication required", "Sign in, or send an API token")

    def _workspaces_of(self, user: dict[str, Any]) -> list[dict[str, Any]]:
        return [w for w in self.world.workspaces.values() if user["id"] in w["members"]]

    def _project(self, user: dict[str, Any], project_id: str) -> dict[str, Any]:
        project = self.world.projects.get(project_id)
        allowed = {w["id"] for w in self._workspaces_of(user)}
        if project is None or project["workspace_id"] not in allowed:
            raise not_found("Project", project_id)
        return project

    def _service(self, user: dict[str, Any], service_id: str) -> dict[str, Any]:
        service = self.world.services.get(service_id)
        if service is None:
            raise not_found("Service", service_id)
        self._project(user, service["project_id"])
        return service

    def _deployment(self, user: dict[str, Any], deployment_id: str) -> Deployment:
        deployment = self.world.deployments.get(deployment_id)
        if deployment is None:
            raise not_found("Deployment", deployment_id)
        self._service(user, deployment.service_id)
        return deployment

    def _detail(self, project: dict[str, Any]) -> dict[str, Any]:
        world = self.world
        return {
            **project,
            "environments": [
                e for e in world.environments.values() if e["project_id"] == project["id"]
            ],
            "services": [s for s in world.services.values() if s["project_id"] == project["id"]],
        }

    # Routes ----------------------------------------------------------------------------------

    def _routes(self) -> list[Route | WebSocketRoute]:
        prefix = "/api/v1"

        def route(path: str, handler: Any, methods: list[str]) -> Route:
            async def endpoint(request: Request) -> Response:
                self.world.requests.append(
                    (request.method, request.url.path, dict(request.query_params))
                )
                try:
                    return await handler(request)
                except ProblemError as exc:
                    return _problem(exc)

            return Route(prefix + path, endpoint, methods=methods)

        return [
            route("/auth/register", self.register, ["POST"]),
            route("/auth/login", self.login, ["POST"]),
            route("/auth/refresh", self.refresh, ["POST"]),
            route("/auth/logout", self.logout, ["POST"]),
            route("/me", self.me, ["GET"]),
            route("/tokens", self.tokens, ["GET", "POST"]),
            route("/tokens/{token_id}", self.revoke_token, ["DELETE"]),
            route("/workspaces/{workspace_id}/projects", self.workspace_projects, ["GET", "POST"]),
            route("/projects/{project_id}", self.project, ["GET"]),
            route("/projects/{project_id}/environments", self.environments, ["GET", "POST"]),
            route("/projects/{project_id}/services", self.project_services, ["GET", "POST"]),
            route("/services/{service_id}/uploads", self.upload, ["POST"]),
            route("/services/{service_id}/deployments", self.service_deployments, ["GET"]),
            route("/deployments/{deployment_id}", self.deployment, ["GET", "DELETE"]),
            route("/deployments/{deployment_id}/{action}", self.deployment_action, ["POST"]),
            route("/deployments/{deployment_id}/logs", self.logs, ["GET"]),
            route("/services/{service_id}/variables", self.variables, ["GET", "PUT"]),
            route("/services/{service_id}/variables/{key}", self.delete_variable, ["DELETE"]),
            route("/environments/{environment_id}/shared-variables", self.shared_vars, ["GET"]),
            route("/services/{service_id}/domains", self.domains, ["GET", "POST"]),
            WebSocketRoute(prefix + "/deployments/{deployment_id}/logs/ws", self.logs_ws),
        ]

    async def register(self, request: Request) -> Response:
        body = await request.json()
        if body["email"] in self.world.users:
            raise ProblemError(409, "Conflict", "This email is taken")
        self.world.add_user(body["email"], body["password"], body.get("name", ""))
        return JSONResponse({"email": body["email"]}, status_code=201)

    async def login(self, request: Request) -> Response:
        body = await request.json()
        user = self.world.users.get(body.get("email", ""))
        if user is None or user["password"] != body.get("password"):
            raise ProblemError(401, "Authentication required", "Wrong email or password")
        return JSONResponse(self.world.issue_session(user["id"]))

    async def refresh(self, request: Request) -> Response:
        self.world.refresh_calls += 1
        body = await request.json()
        user_id = self.world.refresh_tokens.pop(body.get("refresh_token", ""), None)
        if user_id is None:
            raise ProblemError(401, "Authentication required", "Refresh token reused or revoked")
        return JSONResponse(self.world.issue_session(user_id))

    async def logout(self, request: Request) -> Response:
        self._user(request)
        body = await request.json()
        self.world.refresh_tokens.pop(body.get("refresh_token", ""), None)
        token = request.headers["authorization"].removeprefix("Bearer ")
        self.world.access_tokens.pop(token, None)
        return Response(status_code=204)

    async def me(self, request: Request) -> Response:
        user = self._user(request)
        return JSONResponse(
            {
                "id": user["id"],
                "email": user["email"],
                "name": user["name"],
                "workspaces": [
                    {
                        "id": w["id"],
                        "name": w["name"],
                        "slug": w["slug"],
                        "role": w["members"][user["id"]],
                        "is_personal": w["is_personal"],
                    }
                    for w in self._workspaces_of(user)
                ],
            }
        )

    async def tokens(self, request: Request) -> Response:
        user = self._user(request)
        if request.method == "POST":
            body = await request.json()
            secret = f"cb_{uuid.uuid4().hex}"
            record = {
                "id": str(uuid.uuid4()),
                "name": body["name"],
                "prefix": secret[:10],
                "project_id": body.get("project_id"),
                "expires_at": None,
                "last_used_at": None,
                "revoked_at": None,
                "created_at": now_iso(),
                "updated_at": now_iso(),
                "user_id": user["id"],
            }
            self.world.api_tokens[secret] = record
            public = {k: v for k, v in record.items() if k != "user_id"}
            return JSONResponse({**public, "token": secret}, status_code=201)
        items = [
            {k: v for k, v in t.items() if k != "user_id"}
            for t in self.world.api_tokens.values()
            if t["user_id"] == user["id"]
        ]
        return JSONResponse(_page(items, request))

    async def revoke_token(self, request: Request) -> Response:
        user = self._user(request)
        for record in self.world.api_tokens.values():
            if record["id"] == request.path_params["token_id"] and record["user_id"] == user["id"]:
                record["revoked_at"] = now_iso()
                return Response(status_code=204)
        raise not_found("API token", request.path_params["token_id"])

    async def workspace_projects(self, request: Request) -> Response:
        user = self._user(request)
        workspace_id = request.path_params["workspace_id"]
        if workspace_id not in {w["id"] for w in self._workspaces_of(user)}:
            raise not_found("Workspace", workspace_id)
        if request.method == "POST":
            body = await request.json()
            name = body["name"]
            if any(
                p["name"] == name and p["workspace_id"] == workspace_id
                for p in self.world.projects.values()
            ):
                raise ProblemError(409, "Conflict", f"A project named {name!r} already exists")
            project_id = self.world.add_project(workspace_id, name)
            return JSONResponse(self._detail(self.world.projects[project_id]), status_code=201)
        items = [p for p in self.world.projects.values() if p["workspace_id"] == workspace_id]
        name = request.query_params.get("name")
        if name is not None:
            items = [p for p in items if p["name"] == name]
        return JSONResponse(_page(items, request))

    async def project(self, request: Request) -> Response:
        user = self._user(request)
        return JSONResponse(self._detail(self._project(user, request.path_params["project_id"])))

    async def environments(self, request: Request) -> Response:
        user = self._user(request)
        project = self._project(user, request.path_params["project_id"])
        if request.method == "POST":
            body = await request.json()
            environment_id = self.world.add_environment(project["id"], body["name"])
            return JSONResponse(self.world.environments[environment_id], status_code=201)
        return JSONResponse(_page(self._detail(project)["environments"], request))

    async def project_services(self, request: Request) -> Response:
        user = self._user(request)
        project = self._project(user, request.path_params["project_id"])
        if request.method == "POST":
            body = await request.json()
            if any(s["name"] == body["name"] for s in self._detail(project)["services"]):
                raise ProblemError(409, "Conflict", f"A service named {body['name']!r} exists")
            service_id = self.world.add_service(project["id"], body["name"])
            self.world.services[service_id].update({k: v for k, v in body.items() if k != "name"})
            return JSONResponse(self.world.services[service_id], status_code=201)
        return JSONResponse(_page(self._detail(project)["services"], request))

    async def upload(self, request: Request) -> Response:
        user = self._user(request)
        service = self._service(user, request.path_params["service_id"])
        environment_id = request.query_params.get("environment_id", "")
        if environment_id not in self.world.environments:
            raise ProblemError(422, "Request validation failed", "environment_id is required")
        if request.headers.get("content-type") != "application/gzip":
            raise ProblemError(415, "Unsupported media type", "Send application/gzip")
        body = await request.body()
        if str(len(body)) != request.headers.get("content-length"):
            raise ProblemError(400, "Bad request", "Content-Length does not match the body")
        try:
            with tarfile.open(fileobj=io.BytesIO(gzip.decompress(body))) as archive:
                names = archive.getnames()
        except (OSError, tarfile.TarError) as exc:
            raise ProblemError(400, "Bad request", f"Not a gzip tarball: {exc}") from None
        deployment = self.world.start_deployment(service["id"], environment_id, files=names)
        return JSONResponse(deployment.public(), status_code=202)

    async def service_deployments(self, request: Request) -> Response:
        user = self._user(request)
        service = self._service(user, request.path_params["service_id"])
        environment_id = request.query_params.get("environment_id")
        items = [
            d.public()
            for d in reversed(list(self.world.deployments.values()))
            if d.service_id == service["id"]
            and (environment_id is None or d.environment_id == environment_id)
        ]
        return JSONResponse(_page(items, request))

    async def deployment(self, request: Request) -> Response:
        user = self._user(request)
        deployment = self._deployment(user, request.path_params["deployment_id"])
        if request.method == "DELETE":
            deployment.removed = True
            return Response(status_code=204)
        return JSONResponse(deployment.public())

    async def deployment_action(self, request: Request) -> Response:
        user = self._user(request)
        source = self._deployment(user, request.path_params["deployment_id"])
        action = request.path_params["action"]
        if action not in {"redeploy", "rollback", "restart", "cancel"}:
            raise not_found("Route", action)
        deployment = self.world.start_deployment(source.service_id, source.environment_id)
        if action == "rollback":
            deployment.build_id = source.build_id
        return JSONResponse(deployment.public(), status_code=202)

    async def logs(self, request: Request) -> Response:
        user = self._user(request)
        deployment = self._deployment(user, request.path_params["deployment_id"])
        since = request.query_params.get("since")
        streams = request.query_params.getlist("stream")
        limit = int(request.query_params.get("limit", 100))
        entries = [{k: v for k, v in e.items() if k != "type"} for e in deployment.logs()]
        if since:
            entries = [e for e in entries if _after(e["id"], since)]
        if streams:
            entries = [e for e in entries if e["stream"] in streams]
        page = entries[:limit]
        more = len(entries) > limit
        return JSONResponse({"items": page, "next": page[-1]["id"] if more else None})

    async def variables(self, request: Request) -> Response:
        user = self._user(request)
        service = self._service(user, request.path_params["service_id"])
        key = (service["id"], request.query_params.get("environment_id", ""))
        store = self.world.variables.setdefault(key, {})
        sealed = self.world.sealed.setdefault(key, set())
        changed: list[str] = []
        if request.method == "PUT":
            body = await request.json()
            if body.get("replace"):
                store.clear()
            for name, value in body["variables"].items():
                if not name.isidentifier():
                    raise ProblemError(
                        422,
                        "Request validation failed",
                        f"Invalid variables: {name}: not a valid name",
                        errors=[{"field": f"variables.{name}", "message": "bad", "code": "x"}],
                    )
                store[name] = value
                changed.append(name)
        shown = {k: ("*****" if k in sealed else v) for k, v in store.items()}
        body_out: dict[str, Any] = {
            "variables": shown,
            "sealed": sorted(sealed),
            "values_visible": True,
            "undecryptable": [],
        }
        if request.method == "PUT":
            body_out |= {
                "changed": changed,
                "deploy_requested": request.query_params.get("deploy") == "true",
            }
        return JSONResponse(body_out)

    async def delete_variable(self, request: Request) -> Response:
        user = self._user(request)
        service = self._service(user, request.path_params["service_id"])
        key = (service["id"], request.query_params.get("environment_id", ""))
        store = self.world.variables.setdefault(key, {})
        name = request.path_params["key"]
        if name not in store:
            raise not_found("Variable", name)
        del store[name]
        return JSONResponse(
            {
                "variables": store,
                "sealed": [],
                "values_visible": True,
                "changed": [name],
                "deploy_requested": request.query_params.get("deploy") == "true",
            }
        )

    async def shared_vars(self, request: Request) -> Response:
        self._user(request)
        values = self.world.shared.get(request.path_params["environment_id"], {})
        return JSONResponse({"variables": values, "sealed": [], "values_visible": True})

    async def domains(self, request: Request) -> Response:
        user = self._user(request)
        service = self._service(user, request.path_params["service_id"])
        if request.method == "POST":
            body = await request.json()
            domain_id = str(uuid.uuid4())
            hostname = body.get("hostname") or f"{service['name']}-generated.localhost"
            self.world.domains[domain_id] = {
                "id": domain_id,
                "service_id": service["id"],
                "environment_id": body["environment_id"],
                "hostname": hostname,
                "kind": "custom" if body.get("hostname") else "generated",
                "status": "pending",
            }
            return JSONResponse(self.world.domains[domain_id], status_code=201)
        items = [d for d in self.world.domains.values() if d["service_id"] == service["id"]]
        return JSONResponse(_page(items, request))

    async def logs_ws(self, websocket: WebSocket) -> None:
        world = self.world
        if not world.ws_enabled:
            await websocket.close(code=1008)  # before accept: the handshake gets HTTP 403
            return
        await websocket.accept()
        world.ws_connections += 1
        world.ws_queries.append(dict(websocket.query_params))
        try:
            message = await asyncio.wait_for(websocket.receive_json(), 5)
            user = self._user_for_token(str(message.get("token", "")))
            deployment = self._deployment(user, websocket.path_params["deployment_id"])
        except ProblemError as exc:
            await websocket.close(code=4401 if exc.status == 401 else 1008, reason=exc.detail)
            return
        if world.ws_close_code is not None:
            code, world.ws_close_code = world.ws_close_code, None
            await websocket.close(code=code, reason="refused by the test")
            return
        since = websocket.query_params.get("since")
        sent_logs = 0
        sent: set[int] = set()
        if world.ws_batches:
            await websocket.send_json(
                {
                    "type": "status",
                    "deployment_id": deployment.id,
                    "status": deployment.status,
                    "status_reason": deployment.status_reason,
                }
            )
        try:
            while True:
                current = time.time()
                batch: list[dict[str, Any]] = []
                for index, (offset, event) in enumerate(deployment.script):
                    if index in sent or deployment.started + offset > current:
                        continue
                    sent.add(index)
                    if event["type"] == "status":
                        if batch:
                            await self._send_lines(websocket, batch)
                            batch = []
                        await websocket.send_json(event)
                        continue
                    if (
                        since
                        and not _after(event["id"], since)
                        and not (world.ws_since_inclusive and event["id"] == since)
                    ):
                        continue
                    batch.append({k: v for k, v in event.items() if k != "type"})
                    sent_logs += 1
                    if world.ws_drop_after is not None and sent_logs >= world.ws_drop_after:
                        world.ws_drop_after = None
                        await self._send_lines(websocket, batch)
                        await websocket.close(code=1011, reason="simulated drop")
                        return
                if batch:
                    await self._send_lines(websocket, batch)
                if len(sent) == len(deployment.script) and deployment.status in FINAL:
                    await websocket.close(code=1000, reason="The deployment has ended")
                    return
                try:  # wait a little, noticing a client that went away
                    incoming = await asyncio.wait_for(websocket.receive(), STEP_SECONDS / 2)
                except TimeoutError:
                    continue
                if incoming["type"] == "websocket.disconnect":
                    return
        except WebSocketDisconnect:
            return

    async def _send_lines(self, websocket: WebSocket, lines: list[dict[str, Any]]) -> None:
        if self.world.ws_batches:
            await websocket.send_json({"type": "logs", "items": lines})
        else:
            for line in lines:
                await websocket.send_json({"type": "log", **line})


def _after(entry_id: str, since: str) -> bool:
    def key(value: str) -> tuple[int, int]:
        ms, _, seq = value.partition("-")
        return int(ms), int(seq or 0)

    return key(entry_id) > key(since)
