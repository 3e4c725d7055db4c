"""Deploy latency and zero downtime, end to end, on the real platform (`caboosed up`).

For the Flask (gunicorn) and Express samples of ``backend/tests/fixtures/apps``, each in a
project of its own (so the first deploy has an empty dependency cache):

- **cold deploy**: upload → the app answers through Traefik (dependencies installed);
- **warm redeploy**: a code-only change (dependencies unchanged: cache hit) → the new content
  answers through Traefik;
- **rollback**: ``POST /deployments/{first}/rollback`` → the first version answers again;
- for each, the platform's **overhead**: total - install step - the app's boot time, both
  measured in the same run (the build's install seconds and the deploy's health-check wait,
  recorded by the worker for that deployment);
- **zero downtime**: a redeploy while a client sends a steady 50 requests/s through Traefik;
  every failed request (error or non-2xx) is counted.

Every time is from the API call to the new content answering through Traefik (polled every
10 ms on a kept-alive connection). Usage::

    .venv/bin/python bench/deploy.py [--rounds 3]

Targets (issue 4): warm redeploy ≤ 1.5 s, rollback ≤ 1 s, overhead ≤ 1 s, cold Flask deploy
≤ 5 s, zero failed requests. Figures are medians over ``--rounds``.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import statistics
import sys
import tarfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "backend"))

from caboose.engine.build.cache import force_rmtree  # noqa: E402
from tests.e2e.conftest import Platform, _traversable_root, start_platform  # noqa: E402

APPS = REPO / "backend" / "tests" / "fixtures" / "apps"
PASSWORD = "correct horse battery staple 42"  # noqa: S105 - a throwaway account
ENDED = {"FAILED", "CRASHED", "CANCELLED", "REMOVED"}
TARGETS = {"warm": 1.5, "rollback": 1.0, "overhead": 1.0, "cold_flask": 5.0}


@dataclass(frozen=True)
class Sample:
    """A sample app and how to make a code-only change to it."""

    name: str
    directory: str
    file: str
    original: str

    def tree(self, root: Path, marker: str | None) -> Path:
        dest = root / f"{self.name}-{marker or 'v1'}-{uuid.uuid4().hex[:6]}"
        shutil.copytree(APPS / self.directory, dest)
        if marker is not None:
            path = dest / self.file
            text = path.read_text()
            assert self.original in text, f"{self.file} changed: update bench/deploy.py"
            path.write_text(text.replace(self.original, self.original.replace("hello", marker)))
        return dest


SAMPLES = [
    Sample("flask", "flask-gunicorn", "app.py", 'f"hello from flask-gunicorn'),
    Sample("express", "express", "server.js", '"hello from express'),
]


def tarball(directory: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path in sorted(directory.rglob("*")):
            archive.add(path, arcname=str(path.relative_to(directory)), recursive=False)
    return buffer.getvalue()


class Api:
    """The platform's API through Traefik, as one signed-in user, on a kept-alive connection."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.http = httpx.Client(
            base_url=platform.base_url, headers={"Host": platform.host}, timeout=60
        )
        credentials = {"email": f"bench-{uuid.uuid4().hex[:8]}@example.com", "password": PASSWORD}
        registered = self.http.post("/api/v1/auth/register", json=credentials)
        assert registered.status_code == 201, registered.text
        login = self.http.post("/api/v1/auth/login", json=credentials)
        assert login.status_code == 200, login.text
        self.http.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
        me = self.http.get("/api/v1/me").json()
        self.workspace = me["workspaces"][0]["id"]

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, f"/api/v1{path}", **kwargs)
        assert response.status_code < 300, (
            f"{method} {path}: {response.status_code} {response.text}"
        )
        return response.json() if response.content else None

    def service(self, project: str, name: str) -> tuple[str, str]:
        created = self.call(
            "POST", f"/workspaces/{self.workspace}/projects", json={"name": project}
        )
        environment = created["environments"][0]["id"]
        service = self.call("POST", f"/projects/{created['id']}/services", json={"name": name})
        return service["id"], environment

    def upload(self, service: str, environment: str, tree: Path) -> dict[str, Any]:
        body = tarball(tree)
        return dict(
            self.call(
                "POST",
                f"/services/{service}/uploads?environment_id={environment}",
                content=body,
                headers={"Content-Type": "application/gzip"},
            )
        )

    def deployment(self, deployment_id: str) -> dict[str, Any]:
        return dict(self.call("GET", f"/deployments/{deployment_id}"))

    def hostname(self, service: str) -> str:
        return str(self.call("GET", f"/services/{service}/domains")["items"][0]["hostname"])


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.01)  # poll interval of the measurement, bounded by the deadline


class Probe:
    """Fetches the app through Traefik on one kept-alive connection."""

    def __init__(self, platform: Platform, hostname: str) -> None:
        self.hostname = hostname
        self.http = httpx.Client(base_url=platform.base_url, headers={"Host": hostname}, timeout=5)

    def answers(self, text: str) -> bool:
        try:
            response = self.http.get("/")
        except httpx.HTTPError:
            return False
        return response.status_code == 200 and text in response.text


@dataclass
class Load:
    """A steady ``rate`` requests/s through Traefik; counts every failure."""

    platform: Platform
    hostname: str
    rate: float = 50.0
    sent: int = 0
    failed: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        client = httpx.Client(
            base_url=self.platform.base_url, headers={"Host": self.hostname}, timeout=10
        )
        interval = 1.0 / self.rate
        next_at = time.monotonic()
        while not self.stop.is_set():
            self.sent += 1
            try:
                response = client.get("/")
                if response.status_code >= 300:
                    self.failed.append(f"HTTP {response.status_code}")
            except httpx.HTTPError as exc:
                self.failed.append(type(exc).__name__)
            next_at += interval
            self.stop.wait(max(0.0, next_at - time.monotonic()))  # the load's own pace
        client.close()

    def finish(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(30)


class Bench:
    def __init__(self, platform: Platform, root: Path, *, verbose: bool = False) -> None:
        self.verbose = verbose
        self.api_seconds: list[float] = []
        self.platform = platform
        self.root = root
        self.api = Api(platform)
        self.redis = redis.Redis.from_url(platform.redis_url, decode_responses=True)

    def warm_up(self) -> None:
        """One static-site deploy in a project of its own: every process of the platform has
        then done its first-time work (connections, imports, the PM2 bridge), which a
        long-running platform has long done. The samples' own caches stay empty."""
        assert self.platform.celery().send_task("platform.ping").get(timeout=120) == "pong"
        service, environment = self.api.service(f"warmup-{uuid.uuid4().hex[:6]}", "site")
        tree = self.root / "warmup"
        shutil.copytree(APPS / "static-site", tree)
        deployment = self.api.upload(service, environment, tree)
        probe = Probe(self.platform, self.api.hostname(service))
        wait_for(lambda: probe.answers("static-site"), 300, "the warm-up deploy answering")
        self.settle(deployment["id"])

    def timings(self, deployment_id: str) -> dict[str, float]:
        raw = self.redis.hgetall(f"caboose:deployment:{deployment_id}:timings")
        return {str(k): float(v) for k, v in raw.items()}

    def settle(self, deployment_id: str) -> None:
        """Wait until the deploy task is done (the previous deployment retired)."""

        def done() -> bool:
            # The deploy task records its timings last, after the retirement.
            if "deploy_prepare_s" in self.timings(deployment_id):
                return True
            return self.api.deployment(deployment_id)["status"] in ENDED

        wait_for(done, 120, f"deployment {deployment_id} settled")

    def measure(
        self, probe: Probe, text: str, start: Callable[[], dict[str, Any]]
    ) -> tuple[float, dict[str, Any]]:
        started = time.monotonic()
        deployment = start()
        self.api_seconds.append(time.monotonic() - started)
        wait_for(lambda: probe.answers(text), 300, f"{text!r} answering")
        elapsed = time.monotonic() - started
        final = self.api.deployment(deployment["id"])
        if final["status"] not in ("ACTIVE", "DEPLOYING"):
            raise RuntimeError(f"deployment ended {final['status']}: {final['status_reason']}")
        self.settle(deployment["id"])
        return elapsed, deployment

    def run_sample(self, sample: Sample, rounds: int) -> dict[str, list[float]]:
        figures: dict[str, list[float]] = {}
        for round_number in range(rounds):
            self.run_round(sample, round_number, figures)
        return figures

    def run_round(self, sample: Sample, round_number: int, figures: dict[str, list[float]]) -> None:
        # A new project each round: the first deploy meets an empty dependency cache.
        project = f"bench-{sample.name}-{uuid.uuid4().hex[:6]}"
        service, environment = self.api.service(project, sample.name)

        def upload(marker: str | None) -> Callable[[], dict[str, Any]]:
            tree = sample.tree(self.root, marker)
            return lambda: self.api.upload(service, environment, tree)

        started = time.monotonic()
        cold_deployment = upload(None)()
        probe = Probe(self.platform, self.api.hostname(service))
        wait_for(lambda: probe.answers("hello from"), 300, "the cold deploy answering")
        cold = time.monotonic() - started
        self.settle(cold_deployment["id"])
        self.record(figures, "cold", cold, cold_deployment["id"])

        marker = f"v{uuid.uuid4().hex[:6]}"
        warm, deployment = self.measure(probe, marker, upload(marker))
        self.record(figures, "warm", warm, deployment["id"])

        rollback_path = f"/deployments/{cold_deployment['id']}/rollback"
        rollback, deployment = self.measure(
            probe, "hello from", lambda: dict(self.api.call("POST", rollback_path))
        )
        self.record(figures, "rollback", rollback, deployment["id"])

        # Zero downtime: a redeploy under a steady load.
        load = Load(self.platform, probe.hostname)
        load.start()
        time.sleep(1.0)  # a second of load before the redeploy (load, not synchronisation)
        marker = f"v{uuid.uuid4().hex[:6]}"
        self.measure(probe, marker, upload(marker))
        time.sleep(1.0)  # and a second after the previous deployment was stopped
        load.finish()
        figures.setdefault("load_sent", []).append(float(load.sent))
        figures.setdefault("failed", []).append(float(len(load.failed)))
        if load.failed:
            print(f"  {sample.name}: failures {load.failed[:5]}", flush=True)
        print(
            f"  {sample.name} round {round_number + 1}: cold {cold:.2f} s, warm {warm:.2f} s,"
            f" rollback {rollback:.2f} s, {len(load.failed)}/{load.sent} failed",
            flush=True,
        )

    def record(
        self, figures: dict[str, list[float]], kind: str, total: float, deployment_id: str
    ) -> None:
        timings = self.timings(deployment_id)
        install = timings.get("install_s", 0.0)
        boot = timings.get("health", 0.0)
        figures.setdefault(kind, []).append(total)
        figures.setdefault(f"{kind}_install", []).append(install)
        figures.setdefault(f"{kind}_boot", []).append(boot)
        figures.setdefault(f"{kind}_overhead", []).append(total - install - boot)
        figures.setdefault(f"{kind}_pm2_start", []).append(timings.get("start", 0.0))
        if self.verbose:
            deployment = self.api.deployment(deployment_id)
            shown = {k: round(v, 3) for k, v in sorted(timings.items()) if not k.endswith("_at")}
            api = f"api {self.api_seconds[-1]:.3f} s " if self.api_seconds else ""
            print(f"    {kind}: {total:.2f} s {api}{shown}", flush=True)
            print(
                f"      created {deployment['created_at']} started {deployment['started_at']}"
                f" finished {deployment['finished_at']}",
                flush=True,
            )


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def report(results: dict[str, dict[str, list[float]]]) -> str:
    lines = [
        "| sample | step | total (s) | install (s) | app boot (s) | overhead (s) | target | ok |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for sample, figures in results.items():
        for kind in ("cold", "warm", "rollback"):
            total = median(figures[kind])
            overhead = median(figures[f"{kind}_overhead"])
            if kind == "cold":
                target = TARGETS["cold_flask"] if sample == "flask" else None
            else:
                target = TARGETS[kind]
            ok_total = target is None or total <= target
            ok_overhead = overhead <= TARGETS["overhead"]
            verdict = "yes" if ok_total and ok_overhead else "no"
            lines.append(
                f"| {sample} | {kind} | {total:.2f} | {median(figures[f'{kind}_install']):.2f} | "
                f"{median(figures[f'{kind}_boot']):.2f} | {overhead:.2f} | "
                f"{f'≤ {target:.1f}' if target else '-'} (overhead ≤ 1.0) | {verdict} |"
            )
        failed = sum(figures["failed"])
        sent = sum(figures["load_sent"])
        lines.append(
            f"| {sample} | redeploy at 50 req/s | {int(failed)} failed of {int(sent)} | | | | 0 |"
            f" {'yes' if failed == 0 else 'no'} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--samples", default="flask,express")
    parser.add_argument("--verbose", action="store_true", help="print each deploy's timings")
    parser.add_argument(
        "--pm2-cli",
        action="store_true",
        help="drive PM2 through its CLI only (CABOOSE_PM2_BRIDGE=0): the baseline of the bridge",
    )
    args = parser.parse_args()
    root = _traversable_root()
    platform: Platform | None = None
    try:
        started = time.monotonic()
        extra = {"CABOOSE_PM2_BRIDGE": "0"} if args.pm2_cli else None
        platform = start_platform(root, extra_env=extra)
        print(f"platform up in {time.monotonic() - started:.1f} s ({root})", flush=True)
        bench = Bench(platform, root, verbose=args.verbose)
        bench.warm_up()
        wanted = set(args.samples.split(","))
        results = {
            sample.name: bench.run_sample(sample, args.rounds)
            for sample in SAMPLES
            if sample.name in wanted
        }
        print()
        print(report(results))
        print()
        print(json.dumps({s: {k: v for k, v in f.items()} for s, f in results.items()}))
        return 0
    finally:
        if platform is not None:
            platform.shutdown()
        force_rmtree(root)


if __name__ == "__main__":
    raise SystemExit(main())
