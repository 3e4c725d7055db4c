"""Which language runtimes this machine has, and whether an app's request is met.

Only one Python (3.11) and one Node (20) are installed. An app that asks for another version
(``runtime.txt``, ``.python-version``, ``requires-python``, ``engines.node``, ``.nvmrc``) is
still built with what is here: refusing would break apps that merely pinned an old patch
release, so the request is only noted at the top of the build log.

The interpreters must be usable by the projects' unprivileged users, so discovery prefers
system locations that every user can reach (a pyenv under ``/root`` is not one).
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import stat
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"
_VERSION = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")


# How this machine reaches the package registries: proxies and the CA bundle (a TLS-inspecting
# proxy needs its CA trusted). Not secrets of the platform, and builds cannot download without
# them, so these (and only these) are passed from the platform's environment to builds and git.
NETWORK_VARIABLES = (
    "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
    "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "PIP_CERT",
    "NODE_EXTRA_CA_CERTS", "GIT_SSL_CAINFO",
)  # fmt: skip


def network_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The ``NETWORK_VARIABLES`` set in ``environ`` (default: the platform's environment)."""
    source = os.environ if environ is None else environ
    return {name: source[name] for name in NETWORK_VARIABLES if source.get(name)}


@dataclass(frozen=True, slots=True)
class Runtimes:
    """Versions of the runtimes builds will use (``None``: not installed)."""

    python: str | None
    node: str | None


def is_world_executable(path: Path) -> bool:
    """True when any user can execute ``path``: every directory above it is traversable."""
    try:
        real = Path(os.path.realpath(path))
        if not real.stat().st_mode & stat.S_IXOTH:
            return False
        return all(parent.stat().st_mode & stat.S_IXOTH for parent in real.parents)
    except OSError:
        return False


def find_python() -> Path | None:
    """A Python 3 interpreter every project user can run (3.11 preferred)."""
    candidates = [Path("/usr/bin/python3.11"), Path("/usr/local/bin/python3.11")]
    for name in ("python3.11", "python3"):
        found = shutil.which(name, path=SYSTEM_PATH)
        if found:
            candidates.append(Path(found))
    for candidate in candidates:
        if candidate.exists() and is_world_executable(candidate):
            return candidate
    return None


def find_node_bin_dir() -> Path | None:
    """The directory holding ``node``/``npm``/``npx``/``corepack``."""
    found = shutil.which("node", path=SYSTEM_PATH)
    return Path(found).parent if found else None


@functools.lru_cache(maxsize=16)
def probe_version(executable: str) -> str | None:
    """``X.Y.Z`` printed by ``executable --version`` (cached: it never changes under us)."""
    try:
        out = subprocess.run(
            [executable, "--version"],
            capture_output=True,
            text=True,
            timeout=20,
            env={"PATH": SYSTEM_PATH, "LANG": "C.UTF-8"},
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = _VERSION.search(out.stdout + out.stderr)
    if match is None:
        return None
    return ".".join(g for g in match.groups() if g is not None)


def detect_runtimes(python: Path | None = None, node_bin_dir: Path | None = None) -> Runtimes:
    """Probe the given (or discovered) interpreters."""
    python = python or find_python()
    node_bin_dir = node_bin_dir or find_node_bin_dir()
    return Runtimes(
        python=probe_version(str(python)) if python else None,
        node=probe_version(str(node_bin_dir / "node")) if node_bin_dir else None,
    )


def version_tuple(version: str) -> tuple[int, ...]:
    match = _VERSION.search(version)
    if match is None:
        return ()
    return tuple(int(g) for g in match.groups() if g is not None)


def python_spec_allows(spec: str, version: str) -> bool | None:
    """Whether a PEP 440 specifier set (``>=3.9,<4``) admits ``version``; None if unreadable."""
    have = version_tuple(version)
    if not have:
        return None
    spec = spec.strip()
    if not spec:
        return True
    for clause in spec.split(","):
        match = re.fullmatch(r"\s*(~=|===|==|!=|<=|>=|<|>)?\s*v?(\d+(?:\.\d+)*)(\.\*)?\s*", clause)
        if match is None:
            return None
        op, raw, wildcard = match.group(1) or "==", match.group(2), match.group(3)
        want = tuple(int(p) for p in raw.split("."))
        if not _compare(op, have, want, prefix=bool(wildcard)):
            return False
    return True


def _compare(op: str, have: tuple[int, ...], want: tuple[int, ...], *, prefix: bool) -> bool:
    n = len(want)
    padded = have + (0,) * max(0, n - len(have))
    if op in ("==", "===") and (prefix or n < 3):
        return padded[:n] == want
    if op == "!=" and (prefix or n < 3):
        return padded[:n] != want
    if op == "~=":
        return padded >= want and padded[: max(n - 1, 1)] == want[: max(n - 1, 1)]
    return {
        "==": padded == want,
        "===": padded == want,
        "!=": padded != want,
        ">=": padded >= want,
        "<=": padded[:n] <= want,
        ">": padded[:n] > want,
        "<": padded < want,
    }[op]


def node_range_allows(spec: str, version: str) -> bool | None:
    """Whether an npm semver range (``>=18``, ``^20.1``, ``18.x || 20.x``) admits ``version``."""
    have = version_tuple(version)
    if not have:
        return None
    spec = spec.strip()
    if spec in ("", "*", "x", "latest", "lts/*", "node"):
        return True
    verdicts: list[bool | None] = []
    for alternative in spec.split("||"):
        verdicts.append(_node_alternative(alternative.strip(), have))
    if any(v is True for v in verdicts):
        return True
    if any(v is None for v in verdicts):
        return None
    return False


def _node_alternative(text: str, have: tuple[int, ...]) -> bool | None:
    hyphen = re.fullmatch(r"(\S+)\s+-\s+(\S+)", text)
    if hyphen:
        text = f">={hyphen.group(1)} <={hyphen.group(2)}"
    ok = True
    for token in re.findall(r"(?:[<>=~^]+\s*)?v?[\dxX*]+(?:\.[\dxX*]+)*", text):
        match = re.fullmatch(r"([<>=~^]*)\s*v?([\dxX*]+(?:\.[\dxX*]+)*)", token)
        if match is None:
            return None
        op, raw = match.group(1) or "=", match.group(2)
        parts: list[int] = []
        for part in raw.split("."):
            if part in ("x", "X", "*"):
                break
            parts.append(int(part))
        want = tuple(parts)
        if not want:
            continue
        n = len(want)
        padded = have + (0,) * 3
        if op in ("=", "=="):
            ok &= padded[:n] == want
        elif op == "^":
            ok &= padded[:3] >= want + (0,) * (3 - n) and padded[0] == want[0]
        elif op == "~":
            ok &= padded[:3] >= want + (0,) * (3 - n) and padded[: min(n, 2)] == want[: min(n, 2)]
        elif op == ">=":
            ok &= padded[:n] >= want
        elif op == ">":
            ok &= padded[:n] > want
        elif op == "<=":
            ok &= padded[:n] <= want
        elif op == "<":
            ok &= padded[:n] < want
        else:
            return None
    return ok
