"""CPU per request of the authenticated read path, in process, without HTTP or a load generator.

`bench/api.py` measures the real server under load; on a shared 2-core machine its figures
move with whatever else runs. This script calls the ASGI app directly (raw ASGI messages, no
socket, no client library), one request at a time and then 32 at once on one event loop, and
reports CPU milliseconds per request against the same for a bare FastAPI hello-world in the same
process: a steadier figure to compare changes with, and the one `--profile` breaks down.

Usage:
  .venv/bin/python bench/api_inprocess.py [--requests 2000] [--database-url URL]
                                           [--rate-limits] [--profile list|me] [--top 40]

The database is a SQLite file in a temporary data dir unless `--database-url` names another
(it must be empty: the schema is migrated and rows are added). Redis: `CABOOSE_REDIS_URL` if set,
else the embedded one, started in the temporary data dir.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "backend"))

from fastapi import FastAPI  # noqa: E402

App = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


def hello_app() -> FastAPI:
    app = FastAPI()

    @app.get("/")
    async def hello() -> dict[str, str]:
        return {"hello": "world"}

    return app


async def call(app: App, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
    """One GET through the ASGI interface, as uvicorn would call it."""
    raw_path, _, query = path.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": raw_path,
        "raw_path": raw_path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"bench")]
        + [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, body


async def measure(
    app: App, path: str, headers: dict[str, str], requests: int, concurrency: int
) -> tuple[float, float]:
    """(CPU ms per request, wall ms per request) over ``requests`` requests."""
    for _ in range(20):  # warm-up: caches, connections, compiled queries
        status, body = await call(app, path, headers)
        assert status == 200, (status, body[:300])
    remaining = requests

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            status, body = await call(app, path, headers)
            assert status == 200, (status, body[:300])

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return cpu * 1000 / requests, wall * 1000 / requests


async def run(args: argparse.Namespace) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="caboose-bench-inprocess-"))
    os.environ["CABOOSE_DATA_DIR"] = str(tmp / "data")
    os.environ["CABOOSE_LOG_LEVEL"] = "WARNING"
    os.environ["CABOOSE_RATE_LIMITS_ENABLED"] = "true" if args.rate_limits else "false"
    if args.database_url:
        os.environ["CABOOSE_DATABASE_URL"] = args.database_url
    import httpx

    from caboose.config import Settings
    from caboose.main import create_app
    from caboose.migrations import upgrade

    settings = Settings()
    await asyncio.to_thread(upgrade, settings.resolved_database_url)
    app = create_app(settings)
    hello = hello_app()
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
            email, password = "bench@example.com", "measure twice cut once 42"
            r = await http.post(
                "/api/v1/auth/register", json={"email": email, "password": password, "name": "B"}
            )
            r.raise_for_status()
            login = await http.post(
                "/api/v1/auth/login", json={"email": email, "password": password}
            )
            headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
            http.cookies.clear()
            me = (await http.get("/api/v1/me", headers=headers)).json()
            workspace = me["workspaces"][0]["id"]
            for i in range(100):
                r = await http.post(
                    f"/api/v1/workspaces/{workspace}/projects",
                    json={"name": f"p-{i:03d}"},
                    headers=headers,
                )
                r.raise_for_status()
        targets = {
            "hello": (hello, "/", {}),
            "list": (app, f"/api/v1/workspaces/{workspace}/projects", headers),
            "me": (app, "/api/v1/me", headers),
        }
        if args.profile:
            target_app, path, hdrs = targets[args.profile]
            profiler = cProfile.Profile()
            profiler.enable()
            await measure(target_app, path, hdrs, args.requests, 1)
            profiler.disable()
            stats = pstats.Stats(profiler)
            stats.sort_stats(args.sort).print_stats(args.top)
            return 0
        print(
            f"\nIn-process CPU per request — {args.requests} requests each, "
            f"{'SQLite' if 'sqlite' in settings.resolved_database_url else 'PostgreSQL'}, "
            f"rate limits {'on' if args.rate_limits else 'off'}, load average "
            f"{os.getloadavg()[0]:.1f}\n"
        )
        print(
            f"{'endpoint':<12} {'clients':>7} {'CPU ms/req':>11} {'wall ms/req':>12} "
            f"{'vs hello':>9}"
        )
        baseline: dict[int, float] = {}
        for name, (target_app, path, hdrs) in targets.items():
            if args.only and name not in {"hello", args.only}:
                continue
            for concurrency in (1, 32):
                runs = [
                    await measure(target_app, path, hdrs, args.requests, concurrency)
                    for _ in range(args.repeat)
                ]
                cpu = statistics.median(r[0] for r in runs)
                wall = statistics.median(r[1] for r in runs)
                baseline.setdefault(concurrency, cpu)
                print(
                    f"{name:<12} {concurrency:>7} {cpu:>11.3f} {wall:>12.3f} "
                    f"{baseline[concurrency] / cpu:>8.1%}"
                )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--database-url")
    parser.add_argument("--rate-limits", action="store_true", help="As configured in production.")
    parser.add_argument("--profile", choices=["list", "me", "hello"], help="cProfile one target.")
    parser.add_argument("--only", choices=["list", "me"], help="Measure this (and hello) only.")
    parser.add_argument("--sort", default="cumulative")
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args()
    try:  # uvicorn's default loop when installed, as in bench/api.py
        import uvloop
    except ImportError:
        return asyncio.run(run(args))
    return uvloop.run(run(args))


if __name__ == "__main__":
    raise SystemExit(main())
