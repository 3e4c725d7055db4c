"""``create_app()``: the FastAPI application — routers, middleware, error handlers, lifespan."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.routing import APIRoute
from redis.asyncio import BlockingConnectionPool, Redis

from caboose import __version__
from caboose.api import (
    auth,
    deployments,
    domains,
    environments,
    events,
    github_oauth,
    health,
    logs,
    metrics,
    projects,
    services,
    tokens,
    variables,
    webhooks,
    workspaces,
)
from caboose.api.deps import enforce_rate_limit
from caboose.config import Settings, get_settings
from caboose.core.logging import configure_logging
from caboose.core.principals import PrincipalCache
from caboose.core.rate_limit import RateLimiter, RateLimitPolicy
from caboose.core.read_cache import ReadCache
from caboose.database import Database
from caboose.middleware.body_limit import BodySizeLimitMiddleware
from caboose.middleware.cached_reads import CachedReadsMiddleware
from caboose.middleware.exception_handlers import install_exception_handlers
from caboose.middleware.request_context import RequestContextMiddleware
from caboose.monitoring.prometheus import PrometheusMiddleware
from caboose.server.redis_embedded import EmbeddedRedis

logger = logging.getLogger("caboose")

API_PREFIX = "/api/v1"
# Source uploads (`caboose up`) are tarballs: they get their own, larger body limit.
UPLOAD_PATH_PATTERN = r"^/api/v1/services/[^/]+/uploads$"
UPLOAD_LIMIT_BYTES = 200 * 1024 * 1024


def operation_id(route: APIRoute) -> str:
    """Stable ``{tag}-{name}`` operation ids: the generated dashboard client keys on them."""
    tag = str(route.tags[0]) if route.tags else "default"
    return f"{tag}-{route.name}"


def route_path(router: APIRouter, endpoint: object) -> str:
    """The path of ``router``'s route whose endpoint is ``endpoint``."""
    for route in router.routes:
        if isinstance(route, APIRoute) and route.endpoint is endpoint:
            return route.path
    raise LookupError(f"no route of {router} serves {endpoint}")


def api_router() -> APIRouter:
    """Everything under ``/api/v1``, each request counted against the caller's rate limit."""
    router = APIRouter(prefix=API_PREFIX, dependencies=[Depends(enforce_rate_limit)])
    modules = (
        auth,
        github_oauth,
        tokens,
        workspaces,
        projects,
        environments,
        services,
        deployments,
        logs,
        events,
        metrics,
        variables,
        domains,
        webhooks,
    )
    for module in modules:
        router.include_router(module.router)
    router.include_router(auth.me_router)
    return router


# How long a command waits for a free connection when all are in use, before it fails.
REDIS_POOL_WAIT_S = 5.0


def api_redis(redis_url: str, max_connections: int) -> Redis:
    """The API process's Redis client, shared by every request and WebSocket.

    redis-py's default pool fails a command at once ("Too many connections") when its 100
    connections are in use, and a hundred log viewers connecting together use that many for a
    moment (authentication, their slot, their subscription): every other request then answered
    500. This pool is larger and, when full, makes a command wait for a connection instead.
    """
    pool = BlockingConnectionPool.from_url(
        redis_url,
        decode_responses=True,
        max_connections=max_connections,
        timeout=REDIS_POOL_WAIT_S,
    )
    return Redis.from_pool(pool)  # closing the client closes the pool


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    embedded: EmbeddedRedis | None = None
    redis_url = settings.redis_url
    if redis_url is None:
        # No Redis configured: use the data dir's embedded one (`caboosed up` runs it), or start it.
        settings.ensure_data_dir()
        embedded = EmbeddedRedis(settings.data_dir)
        redis_url = embedded.attach()
        if redis_url is None:
            redis_url = embedded.start()
        else:
            embedded = None  # someone else owns it
    app.state.database = Database(settings.resolved_database_url, settings)
    app.state.redis = api_redis(redis_url, settings.redis_max_connections)
    app.state.rate_limiter = (
        RateLimiter(
            redis_url,
            RateLimitPolicy.parse(
                reads=settings.rate_limit_reads,
                writes=settings.rate_limit_writes,
                auth=settings.rate_limit_auth,
            ),
        )
        if settings.rate_limits_enabled
        else None
    )
    logger.info("caboose %s started (%s)", __version__, settings.environment.value)
    # What start-up built (modules, routes, models, mappers: ~170 000 objects) lives as long as
    # the process. Left in the collector's oldest generation, every full collection walks it:
    # 100-160 ms with no request answered, a dozen times a minute under load, which made the
    # slowest percent of answers (bench/api.py: list p99 132 ms -> 22 ms). Frozen, collections
    # only walk what requests allocated.
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        await app.state.redis.aclose()
        await app.state.database.dispose()
        if embedded is not None:
            embedded.stop()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(level=settings.log_level, as_json=settings.logs_as_json)
    app = FastAPI(
        title="Caboose",
        version=__version__,
        description="The HTTP API of Caboose, a self-hosted platform-as-a-service.",
        lifespan=lifespan,
        docs_url="/docs" if settings.docs_enabled else None,
        redoc_url=None,
        openapi_url="/openapi.json" if settings.docs_enabled else None,
        generate_unique_id_function=operation_id,
    )
    app.state.settings = settings
    app.state.principal_cache = PrincipalCache()

    install_exception_handlers(app)
    app.include_router(health.router)
    app.include_router(metrics.metrics_router)  # GET /metrics, outside /api/v1
    app.include_router(api_router())

    # Added last = outermost: request id first, so every later layer (and error) can use it.
    if settings.read_cache_enabled:  # innermost: it stands in front of routing only
        app.state.read_cache = ReadCache()
        app.add_middleware(
            CachedReadsMiddleware,
            path=API_PREFIX + route_path(projects.router, projects.list_projects),
            cache=app.state.read_cache,
        )
    app.add_middleware(
        BodySizeLimitMiddleware,
        default_limit=settings.max_request_body_bytes,
        overrides=[
            (UPLOAD_PATH_PATTERN, UPLOAD_LIMIT_BYTES),
            (webhooks.HOOKS_PATH_PATTERN, webhooks.HOOK_BODY_LIMIT_BYTES),
        ],
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=True,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "X-CSRF-Token", "X-Request-ID"],
            expose_headers=["X-Request-ID", "Retry-After"],
            max_age=600,
        )
    app.add_middleware(RequestContextMiddleware)
    app.add_middleware(PrometheusMiddleware)  # outermost: counts every request, errors included
    return app
