"""Which public hostname reaches which replicas, independent of the edge router.

The pipeline builds a :class:`Route` per service-environment and hands it to a :class:`Router`
(Traefik today, see :mod:`caboose.engine.routing.traefik`). Hostnames come from users (custom
domains), so they are validated here, once, before any router sees them: a hostname that is a
valid DNS name cannot carry a backtick, a quote or a brace into a router rule or a template.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, cast
from urllib.parse import urlsplit

from caboose.engine.types import EngineError

__all__ = [
    "Route",
    "RouteHealthCheck",
    "RouteNotAppliedError",
    "Router",
    "validate_hostname",
    "validate_route_name",
    "validate_server_url",
]

_LABEL_RE = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_ROUTE_NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,98}[a-z0-9])?$")
_PATH_RE = re.compile(r"^/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$")


class RouteNotAppliedError(EngineError):
    """The router did not serve the expected configuration in time (message: what it served)."""


def validate_hostname(hostname: str) -> str:
    """The hostname in canonical form (lower case, no trailing dot), or ``ValueError``.

    DNS rules: labels of 1-63 letters, digits and hyphens, not starting or ending with a hyphen,
    253 characters in all. Internationalised names must arrive in their ``xn--`` form. No
    wildcards, ports, IP literals or whitespace.
    """
    if not isinstance(hostname, str) or not hostname.isascii():
        raise ValueError(f"invalid hostname {hostname!r}: ASCII (punycode) only")
    name = hostname.lower()
    if name.endswith("."):
        name = name[:-1]
    if not name or len(name) > 253:
        raise ValueError(f"invalid hostname {hostname!r}: empty or longer than 253 characters")
    if not all(_LABEL_RE.fullmatch(label) for label in name.split(".")):
        raise ValueError(f"invalid hostname {hostname!r}: not a DNS name")
    if name.replace(".", "").isdigit():
        raise ValueError(f"invalid hostname {hostname!r}: an IP address, not a name")
    return name


def validate_route_name(name: str) -> str:
    """Route names become file names and Traefik router/service names: ``[a-z0-9-]``, ≤ 100."""
    if not _ROUTE_NAME_RE.fullmatch(name):
        raise ValueError(f"invalid route name {name!r}: use [a-z0-9-], at most 100 characters")
    return name


def validate_path_prefix(prefix: str) -> str:
    """A URL path prefix safe inside a router rule (no backticks, quotes, braces or spaces)."""
    if not _PATH_RE.fullmatch(prefix) or len(prefix) > 1024:
        raise ValueError(f"invalid path {prefix!r}")
    return prefix


def validate_server_url(url: str) -> str:
    """A backend URL ``http(s)://host:port`` in canonical form, or ``ValueError``.

    Servers are built by the platform from allocated ports, but they still end up in a file that
    Traefik parses as a template, so they are rebuilt from their parts rather than copied.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or parts.hostname is None:
        raise ValueError(f"invalid server URL {url!r}: expected http(s)://host:port")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ValueError(f"invalid server URL {url!r}: no credentials, query or fragment")
    if parts.path not in ("", "/"):
        raise ValueError(f"invalid server URL {url!r}: no path")
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"invalid server URL {url!r}: bad port") from exc
    if port is None:
        raise ValueError(f"invalid server URL {url!r}: a port is required")
    host = parts.hostname
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        host = validate_hostname(host)
    else:
        host = f"[{ip}]" if ip.version == 6 else str(ip)
    return f"{parts.scheme}://{host}:{port}"


@dataclass(frozen=True, slots=True)
class RouteHealthCheck:
    """Active health checking by the router (takes a dead replica out of the pool)."""

    path: str
    interval_s: float = 10.0
    timeout_s: float = 3.0

    def __post_init__(self) -> None:
        validate_path_prefix(self.path)
        if self.interval_s <= 0 or self.timeout_s <= 0:
            raise ValueError("health check interval and timeout must be positive")


@dataclass(frozen=True, slots=True)
class Route:
    """All hostnames of one service-environment and the replicas that serve them.

    Hostnames and servers are validated and canonicalised on construction. ``tls_resolver``
    names an ACME certificate resolver (see ``render_static_config``): the route is then also
    served over HTTPS with a certificate obtained for its hostnames.
    """

    name: str
    hostnames: tuple[str, ...]
    servers: tuple[str, ...]
    path_prefix: str | None = None
    health_check: RouteHealthCheck | None = None
    pass_host_header: bool = True
    tls_resolver: str | None = None

    def __post_init__(self) -> None:
        validate_route_name(self.name)
        if isinstance(cast(object, self.hostnames), str) or isinstance(
            cast(object, self.servers), str
        ):
            raise TypeError("hostnames and servers are sequences, not strings")
        if not self.hostnames:
            raise ValueError("a route needs at least one hostname")
        if not self.servers:
            raise ValueError("a route needs at least one server (remove it instead)")
        hostnames = tuple(dict.fromkeys(validate_hostname(h) for h in self.hostnames))
        servers = tuple(dict.fromkeys(validate_server_url(s) for s in self.servers))
        object.__setattr__(self, "hostnames", hostnames)
        object.__setattr__(self, "servers", servers)
        if self.path_prefix is not None:
            validate_path_prefix(self.path_prefix)
        if self.tls_resolver is not None:
            validate_route_name(self.tls_resolver)


class Router(Protocol):
    """An edge router the platform configures route by route."""

    def apply(self, route: Route) -> None:
        """Create or replace ``route`` (atomically: never half-written)."""
        ...

    def remove(self, name: str) -> None:
        """Delete the route called ``name``; a missing route is not an error."""
        ...

    def list_routes(self) -> list[str]:
        """Names of the routes currently configured (for reconciliation)."""
        ...

    def wait_applied(self, name: str, servers: Sequence[str], timeout_s: float) -> float:
        """Block until the router serves route ``name`` with exactly ``servers``; return the
        seconds waited, or raise :class:`RouteNotAppliedError`."""
        ...
