"""Traefik v3 as the edge router: its static configuration, and one dynamic file per route.

Why files: Traefik's file provider watches a directory and applies a change within its throttle
window (set here to tens of milliseconds), with no database or Redis in the loop, and the files
are the state that survives a platform restart (``list_routes`` for reconciliation). Each route is
one file, replaced atomically (temporary file in the same directory, fsync, ``os.replace``):
Traefik parses the whole directory at each change and rejects it entirely if one file is
malformed, so a half-written file would freeze every route. Temporary files end in ``.tmp``,
which the provider ignores.

The files are JSON, which is valid YAML, in ``.yml`` files: no YAML dependency, no quoting rules.
Traefik treats them as Go templates too, which is one more reason every value written comes from
validated hostnames, paths and URLs (:mod:`caboose.engine.routing`).

Traefik's API is served on an internal, loopback-only entrypoint; the platform reads it to know
when a route is live (``wait_applied``) and never exposes it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import http.client
import ipaddress
import json
import os
import re
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from caboose.engine.routing import (
    Route,
    RouteNotAppliedError,
    validate_hostname,
    validate_path_prefix,
    validate_route_name,
    validate_server_url,
)

__all__ = [
    "INTERNAL_ENTRYPOINT",
    "PLATFORM_ROUTE_NAME",
    "TLS_DEFAULTS_NAME",
    "WEBSECURE_ENTRYPOINT",
    "WEB_ENTRYPOINT",
    "AcmeSettings",
    "TraefikRouter",
    "generate_default_certificate",
    "render_platform_config",
    "render_route_config",
    "render_static_config",
    "traefik_command",
    "traefik_env",
    "wait_traefik_ready",
    "write_atomic",
    "write_static_config",
]

WEB_ENTRYPOINT = "web"
WEBSECURE_ENTRYPOINT = "websecure"
INTERNAL_ENTRYPOINT = "traefik"  # the name Traefik serves api.insecure and ping on
_RESERVED_PREFIX = "caboose-"
PLATFORM_ROUTE_NAME = "caboose-platform"
TLS_DEFAULTS_NAME = "caboose-tls"
ACME_RESOLVER = "acme"
_ROUTE_FILE_SUFFIX = ".yml"
_LOG_LEVELS = frozenset({"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL", "PANIC"})
_ADDRESS_RE = re.compile(r"^(?P<host>\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]*):(?P<port>\d{1,5})$")


@dataclass(frozen=True, slots=True)
class AcmeSettings:
    """Let's Encrypt (or another ACME CA) for custom domains, via the HTTP-01 challenge."""

    email: str
    storage: Path  # acme.json: holds private keys, keep it in the private data dir
    ca_server: str | None = None  # None: Let's Encrypt production


def _check_address(address: str, *, loopback_only: bool = False) -> str:
    match = _ADDRESS_RE.fullmatch(address)
    if match is None or not 0 < int(match["port"]) < 65536:
        raise ValueError(f"invalid listen address {address!r}: expected host:port")
    if loopback_only:
        host = match["host"].strip("[]")
        try:
            is_loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            is_loopback = False
        if not is_loopback:
            raise ValueError(f"the internal entrypoint must listen on loopback, not {address!r}")
    return address


def render_static_config(
    *,
    web_address: str,
    internal_address: str,
    dynamic_dir: Path,
    log_level: str = "INFO",
    log_file: Path | None = None,
    access_log_file: Path | None = None,
    access_log: bool = False,
    throttle_ms: int = 10,
    https_address: str | None = None,
    acme: AcmeSettings | None = None,
    grace_timeout_s: float = 10.0,
    alias_headers_strategy: str = "delete",
) -> dict[str, Any]:
    """Traefik's static configuration (what ``traefik --configFile`` reads).

    - ``web_address``: the public HTTP entrypoint, e.g. ``0.0.0.0:8080``;
    - ``internal_address``: loopback ``host:port`` for ``/ping`` and the API (platform only);
    - ``dynamic_dir``: the directory of route files, watched;
    - ``throttle_ms``: how long Traefik waits after applying a change before taking the next;
      Traefik's 2 s default would make every deploy wait that long for its route;
    - ``https_address`` + ``acme``: an HTTPS entrypoint with certificates from ACME;
    - ``alias_headers_strategy``: what to do with request headers such as ``X_Forwarded_For``
      that WSGI/CGI-style apps would read as ``X-Forwarded-For`` (spoofing what Traefik sets):
      ``delete`` (default), ``reject`` or ``keep``.
    """
    level = log_level.upper()
    if level not in _LOG_LEVELS:
        raise ValueError(f"invalid log level {log_level!r}")
    if alias_headers_strategy not in ("delete", "reject", "keep"):
        raise ValueError(f"invalid alias_headers_strategy {alias_headers_strategy!r}")

    def public_entrypoint(address: str) -> dict[str, Any]:
        return {
            "address": _check_address(address),
            "http": {"aliasHeadersStrategy": alias_headers_strategy},
            # On SIGTERM keep serving in-flight requests this long before closing.
            "transport": {"lifeCycle": {"graceTimeOut": f"{grace_timeout_s:g}s"}},
        }

    entrypoints: dict[str, Any] = {
        WEB_ENTRYPOINT: public_entrypoint(web_address),
        INTERNAL_ENTRYPOINT: {
            "address": _check_address(internal_address, loopback_only=True),
            "http": {"aliasHeadersStrategy": "delete"},
        },
    }
    if https_address is not None:
        entrypoints[WEBSECURE_ENTRYPOINT] = public_entrypoint(https_address)
    log: dict[str, Any] = {"level": level, "noColor": True}
    if log_file is not None:
        log["filePath"] = str(log_file)
    config: dict[str, Any] = {
        "global": {"checkNewVersion": False, "sendAnonymousUsage": False},
        "entryPoints": entrypoints,
        "providers": {
            "providersThrottleDuration": f"{max(0, throttle_ms)}ms",
            "file": {"directory": str(dynamic_dir), "watch": True},
        },
        # api.insecure serves the API on the entrypoint named "traefik" only, which is loopback.
        "api": {"insecure": True, "dashboard": False},
        "ping": {"entryPoint": INTERNAL_ENTRYPOINT},
        "log": log,
    }
    if access_log or access_log_file is not None:
        config["accessLog"] = {"filePath": str(access_log_file)} if access_log_file else {}
    if acme is not None:
        if https_address is None:
            raise ValueError("ACME needs an https_address to serve the certificates on")
        resolver: dict[str, Any] = {
            "email": acme.email,
            "storage": str(acme.storage),
            "httpChallenge": {"entryPoint": WEB_ENTRYPOINT},
        }
        if acme.ca_server is not None:
            resolver["caServer"] = acme.ca_server
        config["certificatesResolvers"] = {ACME_RESOLVER: {"acme": resolver}}
    return config


def write_atomic(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` so that readers see the old or the new file, never a part.

    The temporary file lives in the same directory (``os.replace`` is atomic only within one
    filesystem) and ends in ``.tmp`` (ignored by Traefik's file provider); it is fsynced before
    the rename and the directory after it, so a crash cannot leave an empty route file behind.
    """
    directory = path.parent
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fchmod(fh.fileno(), mode)
            os.fsync(fh.fileno())
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(directory)


def _fsync_dir(directory: Path) -> None:
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _dump(document: Mapping[str, Any]) -> bytes:
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()


def write_static_config(path: Path, config: Mapping[str, Any]) -> Path:
    """Write a static configuration (JSON in a ``.yml`` file) atomically; return the path."""
    if path.suffix not in (".yml", ".yaml"):
        raise ValueError("Traefik reads a static config from .yml/.yaml (or .toml)")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, _dump(config), mode=0o600)
    return path


def traefik_command(traefik_bin: Path | str, config_path: Path) -> list[str]:
    """The argv that runs Traefik with a static configuration file (for a supervisor).

    Run it with :func:`traefik_env`, not the platform's environment: Traefik's file provider
    evaluates Go templates, whose ``env`` function would read the platform's secrets, and
    ``TRAEFIK_*`` variables would silently override the static configuration.
    """
    return [str(traefik_bin), f"--configFile={config_path}"]


def traefik_env() -> dict[str, str]:
    """The whole environment Traefik needs: a ``PATH``, nothing of the platform's."""
    return {"PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"), "LANG": "C.UTF-8"}


def _api_get(api_url: str, path: str, timeout_s: float = 2.0) -> tuple[int, bytes]:
    """GET ``path`` from Traefik's internal entrypoint (stdlib only: one short connection)."""
    parts = urlsplit(api_url)
    if parts.scheme != "http" or parts.hostname is None or parts.port is None:
        raise ValueError(f"expected http://host:port for Traefik's API, got {api_url!r}")
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout_s)
    try:
        conn.request("GET", path, headers={"Accept": "application/json"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def wait_traefik_ready(api_url: str, *, timeout_s: float = 15.0) -> float:
    """Poll ``<api_url>/ping`` until Traefik answers; return the seconds waited.

    Raises ``TimeoutError`` when it does not: the caller should show Traefik's log.
    """
    started = time.monotonic()
    deadline = started + timeout_s
    delay = 0.02
    last = "no answer"
    while True:
        try:
            status, _ = _api_get(api_url, "/ping", timeout_s=1.0)
            if status == 200:
                return time.monotonic() - started
            last = f"HTTP {status}"
        except (OSError, http.client.HTTPException) as exc:
            last = type(exc).__name__
        if time.monotonic() >= deadline:
            raise TimeoutError(f"Traefik not ready after {timeout_s:g} s ({last})")
        time.sleep(delay)  # a poll interval, bounded by the deadline above
        delay = min(delay * 1.5, 0.25)


def generate_default_certificate(
    cert_path: Path, key_path: Path, *, common_name: str = "caboose.invalid"
) -> None:
    """Write a self-signed ECDSA P-256 certificate and key (key mode 0600), if absent.

    Why: without a default certificate, Traefik generates an RSA one on *every* configuration
    change, which here took 100-400 ms and delayed each route switch by as much. An ECDSA key
    on disk makes a switch take ~10-40 ms. The certificate is only what Traefik presents on HTTPS
    to a hostname it has no real certificate for.
    """
    if cert_path.exists() and key_path.exists():
        return
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    key_path.parent.mkdir(parents=True, exist_ok=True)
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    write_atomic(key_path, key_pem, mode=0o600)
    write_atomic(cert_path, cert.public_bytes(serialization.Encoding.PEM), mode=0o644)


def _host_rule(hostnames: Sequence[str], path_prefix: str | None = None) -> str:
    hosts = " || ".join(f"Host(`{validate_hostname(h)}`)" for h in hostnames)
    if path_prefix is None:
        return hosts
    rule_hosts = f"({hosts})" if len(hostnames) > 1 else hosts
    return f"{rule_hosts} && PathPrefix(`{validate_path_prefix(path_prefix)}`)"


def render_route_config(route: Route) -> dict[str, Any]:
    """The dynamic configuration of one route: a router (and its HTTPS twin) and a service."""
    load_balancer: dict[str, Any] = {
        "servers": [{"url": s} for s in route.servers],
        "passHostHeader": route.pass_host_header,
    }
    if route.health_check is not None:
        load_balancer["healthCheck"] = {
            "path": route.health_check.path,
            "interval": f"{route.health_check.interval_s:g}s",
            "timeout": f"{route.health_check.timeout_s:g}s",
        }
    rule = _host_rule(route.hostnames, route.path_prefix)
    routers: dict[str, Any] = {
        route.name: {"entryPoints": [WEB_ENTRYPOINT], "rule": rule, "service": route.name}
    }
    if route.tls_resolver is not None:
        routers[f"{route.name}-tls"] = {
            "entryPoints": [WEBSECURE_ENTRYPOINT],
            "rule": rule,
            "service": route.name,
            "tls": {
                "certResolver": route.tls_resolver,
                "domains": [{"main": h} for h in route.hostnames],
            },
        }
    return {"http": {"routers": routers, "services": {route.name: {"loadBalancer": load_balancer}}}}


def render_platform_config(
    host: str,
    api_url: str,
    dashboard_url: str | None = None,
    *,
    api_prefixes: Sequence[str] = ("/api",),
) -> dict[str, Any]:
    """The platform's own route: one origin for dashboard and API (so cookies need no CORS).

    ``host`` + any of ``api_prefixes`` → ``api_url``; the rest of ``host`` → ``dashboard_url``,
    or to the API too when there is no dashboard (API-only installs still answer ``/health``).
    """
    host = validate_hostname(host)
    api_server = validate_server_url(api_url)
    api_name = f"{PLATFORM_ROUTE_NAME}-api"
    services: dict[str, Any] = {
        api_name: {"loadBalancer": {"servers": [{"url": api_server}], "passHostHeader": True}}
    }
    prefixes = " || ".join(f"PathPrefix(`{validate_path_prefix(p)}`)" for p in api_prefixes)
    routers: dict[str, Any] = {
        api_name: {
            "entryPoints": [WEB_ENTRYPOINT],
            "rule": f"Host(`{host}`) && ({prefixes})",
            "service": api_name,
            "priority": 200,
        }
    }
    fallback = api_name
    if dashboard_url is not None:
        fallback = f"{PLATFORM_ROUTE_NAME}-dashboard"
        services[fallback] = {
            "loadBalancer": {
                "servers": [{"url": validate_server_url(dashboard_url)}],
                "passHostHeader": True,
            }
        }
    routers[f"{PLATFORM_ROUTE_NAME}-dashboard"] = {
        "entryPoints": [WEB_ENTRYPOINT],
        "rule": f"Host(`{host}`)",
        "service": fallback,
        "priority": 100,
    }
    return {"http": {"routers": routers, "services": services}}


class TraefikRouter:
    """A :class:`~caboose.engine.routing.Router` writing route files into Traefik's watched
    ``dynamic_dir`` and reading Traefik's API at ``api_url`` (the internal entrypoint).

    File names starting with ``caboose-`` are the platform's own (its route, TLS defaults): route
    names must not use that prefix, and :meth:`list_routes` leaves those files out.
    """

    def __init__(self, dynamic_dir: Path, api_url: str, *, poll_interval_s: float = 0.01) -> None:
        self.dynamic_dir = dynamic_dir
        self.api_url = api_url.rstrip("/")
        self.poll_interval_s = poll_interval_s
        dynamic_dir.mkdir(parents=True, exist_ok=True)

    def path_of(self, name: str) -> Path:
        return self.dynamic_dir / f"{validate_route_name(name)}{_ROUTE_FILE_SUFFIX}"

    def apply(self, route: Route) -> None:
        """Write ``route``'s file atomically (Traefik picks it up within its throttle window)."""
        if route.name.startswith(_RESERVED_PREFIX):
            raise ValueError(f"route names starting with {_RESERVED_PREFIX!r} are reserved")
        write_atomic(self.path_of(route.name), _dump(render_route_config(route)))

    def apply_platform(
        self,
        host: str,
        api_url: str,
        dashboard_url: str | None = None,
        *,
        api_prefixes: Sequence[str] = ("/api",),
    ) -> None:
        """Write the platform's own route (see :func:`render_platform_config`)."""
        document = render_platform_config(host, api_url, dashboard_url, api_prefixes=api_prefixes)
        write_atomic(self.path_of(PLATFORM_ROUTE_NAME), _dump(document))

    def install_default_certificate(self, cert_path: Path, key_path: Path) -> None:
        """Generate (once) and declare Traefik's default certificate; see
        :func:`generate_default_certificate` for why this matters to deploy latency. Keep the
        files outside ``dynamic_dir`` (Traefik watches their directory separately)."""
        generate_default_certificate(cert_path, key_path)
        document = {
            "tls": {
                "stores": {
                    "default": {
                        "defaultCertificate": {"certFile": str(cert_path), "keyFile": str(key_path)}
                    }
                }
            }
        }
        write_atomic(self.path_of(TLS_DEFAULTS_NAME), _dump(document))

    def remove(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path_of(name).unlink()
            _fsync_dir(self.dynamic_dir)

    def list_routes(self) -> list[str]:
        """Names of the service routes on disk (the platform's own files left out)."""
        names = []
        for path in self.dynamic_dir.glob(f"*{_ROUTE_FILE_SUFFIX}"):
            name = path.name[: -len(_ROUTE_FILE_SUFFIX)]
            with contextlib.suppress(ValueError):
                if not validate_route_name(name).startswith(_RESERVED_PREFIX):
                    names.append(name)
        return sorted(names)

    def read_route(self, name: str) -> dict[str, Any] | None:
        """The dynamic configuration on disk for ``name`` (None when absent)."""
        try:
            data = json.loads(self.path_of(name).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        return data if isinstance(data, dict) else None

    def _get_json(self, path: str) -> Any:
        status, body = _api_get(self.api_url, path)
        if status == 404:
            return None
        if status != 200:
            raise RouteNotAppliedError(f"Traefik API {path}: HTTP {status}")
        return json.loads(body)

    def served_servers(self, name: str) -> list[str] | None:
        """The server URLs Traefik currently uses for route ``name`` (None: not loaded)."""
        key = quote(f"{validate_route_name(name)}@file", safe="@")
        router = self._get_json(f"/api/http/routers/{key}")
        if not isinstance(router, dict) or router.get("status") != "enabled":
            return None
        service = self._get_json(f"/api/http/services/{key}")
        if not isinstance(service, dict) or service.get("status") != "enabled":
            return None
        servers = (service.get("loadBalancer") or {}).get("servers") or []
        return [str(s.get("url")) for s in servers if isinstance(s, dict)]

    def wait_applied(self, name: str, servers: Sequence[str], timeout_s: float = 10.0) -> float:
        """Poll Traefik's API until route ``name`` is enabled with exactly ``servers``.

        Returns the seconds waited. The API is rebuilt from the same configuration the
        entrypoints are switched to, in the same step, so once it shows the new servers, new
        requests go to them.
        """
        expected = {validate_server_url(s) for s in servers}
        return self._poll(name, timeout_s, lambda got: got is not None and set(got) == expected)

    def wait_removed(self, name: str, timeout_s: float = 10.0) -> float:
        """Poll until Traefik no longer serves route ``name``; return the seconds waited."""
        return self._poll(name, timeout_s, lambda got: got is None)

    def _poll(self, name: str, timeout_s: float, done: Callable[[list[str] | None], bool]) -> float:
        started = time.monotonic()
        deadline = started + timeout_s
        got: list[str] | None = None
        last_error = ""
        while True:
            try:
                got = self.served_servers(name)
                last_error = ""
            except (OSError, http.client.HTTPException, ValueError, RouteNotAppliedError) as exc:
                last_error = f" (API error: {exc or type(exc).__name__})"
            else:
                if done(got):
                    return time.monotonic() - started
            if time.monotonic() >= deadline:
                raise RouteNotAppliedError(
                    f"route {name!r} not applied after {timeout_s:g} s: Traefik serves "
                    f"{got if got is not None else 'nothing'}{last_error}"
                )
            time.sleep(self.poll_interval_s)  # poll interval, bounded by the deadline
