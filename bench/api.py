"""API throughput and latency: authenticated reads against a bare FastAPI hello-world.

Starts the real API (`caboosed api`: uvicorn, one worker, SQLite + embedded Redis in a temporary
data dir, rate limits off) and a hello-world FastAPI app under the same uvicorn settings, then
drives each with the same asyncio load generator (keep-alive HTTP/1.1, N concurrent clients,
fixed duration) and prints requests/s, p50 and p99 for:

- `GET /api/v1/workspaces/{id}/projects` (100 projects), authenticated with a Bearer JWT, as
  served (from the per-process read cache, `core/read_cache.py`, between changes), and the same
  from a second API process on the same database and Redis with the cache off
  (`CABOOSE_READ_CACHE_ENABLED=false`): every request runs the route, as after a change
- `GET /api/v1/me`, authenticated
- the hello-world `GET /`
- and the time of one `GET …/projects?limit=1000` page of 1000 projects, both ways.

Usage: .venv/bin/python bench/api.py [--seconds 10] [--concurrency 32]
                                      [--database-url postgresql+asyncpg://…] [--rate-limits]

`--database-url` runs the API on that (empty) database instead of SQLite; `--rate-limits` turns
the limiter on as in production (Redis-backed, one hit per request) with budgets too large to
refuse anything, to measure what it costs.
Targets (issue 3): list ≥ 40 % of hello-world throughput; p99 < 50 ms at 32 clients; a
1000-item page < 300 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = REPO / ".venv" / "bin"

HELLO_APP = textwrap.dedent(
    """
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/")
    async def hello() -> dict[str, str]:
        return {"hello": "world"}
    """
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


@dataclass
class Result:
    name: str
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def pct(self, p: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(len(ordered) * p))] if ordered else float("nan")


async def drive(
    name: str, url: str, headers: dict[str, str], seconds: float, concurrency: int
) -> Result:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    latencies: list[float] = []
    errors = 0
    async with httpx.AsyncClient(limits=limits, timeout=10) as client:
        for _ in range(3):  # warm-up: connections, caches
            await client.get(url, headers=headers)
        stop_at = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < stop_at:
                started = time.perf_counter()
                response = await client.get(url, headers=headers)
                latencies.append((time.perf_counter() - started) * 1000)
                if response.status_code != 200:
                    errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return Result(name, len(latencies), errors, elapsed, latencies)


_WRK_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _wrk_ms(text: str) -> float:
    for unit in ("us", "ms", "s"):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * _WRK_UNITS[unit]
    return float(text)


def drive_wrk(
    name: str, url: str, headers: dict[str, str], seconds: float, concurrency: int
) -> Result:
    """The same measurement with wrk (C, off the server's Python): used when it is installed,
    because a Python load generator on a 2-core machine measures itself as much as the server."""
    command = ["wrk", "--latency", "-t", "2", "-c", str(concurrency)]
    for key, value in headers.items():
        command += ["-H", f"{key}: {value}"]
    # Warm-up, as the asyncio client does: connections opened, caches filled, not measured.
    subprocess.run([*command, "-d", "2s", url], capture_output=True, check=True)
    output = subprocess.run(
        [*command, "-d", f"{seconds:.0f}s", url], capture_output=True, text=True, check=True
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p50 = _wrk_ms(re.search(r"\s50%\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    p99 = _wrk_ms(re.search(r"\s99%\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = int(non_2xx.group(1)) if non_2xx else 0
    requests = int(rps * seconds)
    # wrk reports percentiles, not samples: keep the two the table prints.
    return Result(name, requests, errors, seconds, [p50] * 51 + [p99] * 49)


def start(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(cmd, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument(
        "--python-client", action="store_true", help="Use the asyncio client even if wrk exists."
    )
    parser.add_argument("--database-url", help="An empty database (default: SQLite in a temp dir).")
    parser.add_argument("--rate-limits", action="store_true", help="Limiter on, huge budgets.")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="caboose-bench-api-"))
    api_port, uncached_port, hello_port = free_port(), free_port(), free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CABOOSE_")},
        "CABOOSE_DATA_DIR": str(tmp / "data"),
        "CABOOSE_RATE_LIMITS_ENABLED": "true" if args.rate_limits else "false",
        "CABOOSE_LOG_LEVEL": "WARNING",
    }
    if args.rate_limits:
        for kind in ("READS", "WRITES", "AUTH"):
            env[f"CABOOSE_RATE_LIMIT_{kind}"] = "100000000/minute"
    if args.database_url:
        env["CABOOSE_DATABASE_URL"] = args.database_url
    (tmp / "hello.py").write_text(HELLO_APP)
    subprocess.run(
        [str(VENV_BIN / "caboosed"), "migrate"], env=env, check=True, capture_output=True
    )
    # The bench's own Redis (the API attaches to it), stopped by its process id at the end.
    from caboose.server.redis_embedded import EmbeddedRedis

    redis = EmbeddedRedis(tmp / "data")
    redis.start()
    uvicorn_flags = [
        "--host",
        "127.0.0.1",
        "--workers",
        "1",
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    api_command = [str(VENV_BIN / "uvicorn"), "caboose.main:create_app", "--factory"]
    processes = [
        start([*api_command, "--port", str(api_port), *uvicorn_flags], env, tmp / "api.log"),
        start(
            [*api_command, "--port", str(uncached_port), *uvicorn_flags],
            {**env, "CABOOSE_READ_CACHE_ENABLED": "false"},
            tmp / "api-uncached.log",
        ),
        start(
            [
                str(VENV_BIN / "uvicorn"),
                "hello:app",
                "--app-dir",
                str(tmp),
                "--port",
                str(hello_port),
                *uvicorn_flags,
            ],
            env,
            tmp / "hello.log",
        ),
    ]
    try:
        api = f"http://127.0.0.1:{api_port}"
        uncached = f"http://127.0.0.1:{uncached_port}"
        wait_http(f"{api}/health")
        wait_http(f"{uncached}/health")
        wait_http(f"http://127.0.0.1:{hello_port}/")
        with httpx.Client(base_url=api, timeout=30) as http:
            email, password = "bench@example.com", "measure twice cut once 42"
            http.post(
                "/api/v1/auth/register",
                json={"email": email, "password": password, "name": "Bench"},
            ).raise_for_status()
            token = http.post(
                "/api/v1/auth/login", json={"email": email, "password": password}
            ).json()["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            http.cookies.clear()
            workspace = http.get("/api/v1/me", headers=headers).json()["workspaces"][0]["id"]
            big = http.post("/api/v1/workspaces", json={"name": "Big"}, headers=headers).json()[
                "id"
            ]

        async def seed() -> None:
            async with httpx.AsyncClient(base_url=api, timeout=30, headers=headers) as client:
                sem = asyncio.Semaphore(8)

                async def create(ws: str, name: str) -> None:
                    async with sem:
                        r = await client.post(
                            f"/api/v1/workspaces/{ws}/projects", json={"name": name}
                        )
                        r.raise_for_status()

                await asyncio.gather(*(create(workspace, f"p-{i:03d}") for i in range(100)))
                await asyncio.gather(*(create(big, f"b-{i:04d}") for i in range(1000)))

        asyncio.run(seed())

        targets: list[tuple[str, str, dict[str, str]]] = [
            ("hello-world GET /", f"http://127.0.0.1:{hello_port}/", {}),
            (
                "GET /workspaces/{id}/projects (100)",
                f"{api}/api/v1/workspaces/{workspace}/projects",
                headers,
            ),
            (
                "same, read cache off (route every time)",
                f"{uncached}/api/v1/workspaces/{workspace}/projects",
                headers,
            ),
            ("GET /me", f"{api}/api/v1/me", headers),
        ]
        use_wrk = shutil.which("wrk") is not None and not args.python_client
        results = [
            drive_wrk(name, url, hdrs, args.seconds, args.concurrency)
            if use_wrk
            else asyncio.run(drive(name, url, hdrs, args.seconds, args.concurrency))
            for name, url, hdrs in targets
        ]
        page_times: dict[str, list[float]] = {"cached": [], "cache off": []}
        with httpx.Client(timeout=30) as http:
            for label, base in (("cached", api), ("cache off", uncached)):
                for _ in range(10):
                    started = time.perf_counter()
                    r = http.get(
                        f"{base}/api/v1/workspaces/{big}/projects?limit=1000", headers=headers
                    )
                    page_times[label].append((time.perf_counter() - started) * 1000)
                    assert r.status_code == 200 and len(r.json()["items"]) == 1000, r.text[:200]
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=20)
        redis.stop()

    baseline = results[0].rps
    print(
        f"\nAPI benchmark — {args.concurrency} concurrent clients, {args.seconds:.0f} s each, "
        f"{os.cpu_count()} cores, Python {sys.version.split()[0]}, "
        f"{'PostgreSQL' if args.database_url else 'SQLite'}, "
        f"rate limits {'on' if args.rate_limits else 'off'}, "
        f"load average after the run {os.getloadavg()[0]:.1f}\n"
    )
    print(
        f"{'endpoint':<40} {'req/s':>9} {'vs hello':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}"
    )
    for result in results:
        print(
            f"{result.name:<40} {result.rps:>9.0f} {result.rps / baseline:>8.0%} "
            f"{result.pct(0.50):>8.1f} {result.pct(0.99):>8.1f} {result.errors:>7}"
        )
    print()
    for label, times in page_times.items():
        median, worst = statistics.median(times), max(times)
        print(f"1000-item page, {label}: median {median:.0f} ms, max {worst:.0f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
