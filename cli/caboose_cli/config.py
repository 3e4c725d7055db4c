"""Where the CLI keeps its state: the login and the folder links, both in the config directory.

``$XDG_CONFIG_HOME/caboose`` (``~/.config/caboose`` by default) holds:

- ``credentials.json`` — the host and either a session (JWT access + refresh token) or an API
  token. It is a secret, so it is written with mode 0600 in a 0700 directory.
- ``links.json`` — which workspace, project, environment and service each folder deploys to, keyed
  by the folder's absolute path. Links live here rather than in a file inside the user's repository
  so they are never committed, and so the same checkout can be linked differently per machine.

Every write goes to a temporary file in the same directory that is then renamed over the old one:
a crash or a full disk leaves the previous file intact, never half a JSON document, and a reader
never sees a partial write. ``CABOOSE_TOKEN`` / ``CABOOSE_HOST`` override the stored login (for CI).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from caboose_cli.errors import CliError

DEFAULT_HOST = "http://localhost:8080"
CREDENTIALS_FILE = "credentials.json"
LINKS_FILE = "links.json"
_LOCK_FILE = "credentials.lock"
_FILE_VERSION = 1


def config_dir() -> Path:
    """``$XDG_CONFIG_HOME/caboose``, else ``~/.config/caboose``.

    The XDG spec says a relative ``XDG_CONFIG_HOME`` is invalid and must be ignored, so it is.
    """
    base = os.environ.get("XDG_CONFIG_HOME", "")
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".config"
    return root / "caboose"


def normalize_host(host: str) -> str:
    """``localhost:8080`` → ``http://localhost:8080``; no trailing slash, so URLs join cleanly."""
    host = host.strip().rstrip("/")
    if not host:
        raise CliError("The host is empty")
    if "://" not in host:
        host = f"http://{host}"
    scheme = host.split("://", 1)[0].lower()
    if scheme not in {"http", "https"}:
        raise CliError(f"The host must be an http:// or https:// URL, not {host!r}")
    return host


# Files -------------------------------------------------------------------------------------


def write_private_json(path: Path, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` atomically, readable by the owner only (0600).

    ``mkstemp`` creates the temporary file with mode 0600 before any byte is written, so the
    secret is never readable by others even for an instant; ``os.replace`` is atomic on POSIX.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        Path(temporary).chmod(0o600)  # in case a umask or filesystem widened it
        Path(temporary).replace(path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            Path(temporary).unlink()
        raise
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    # Makes the rename itself durable; not every platform can open a directory.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise CliError(f"Cannot read {path}: {exc.strerror}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        raise CliError(
            f"{path} is not valid JSON",
            hint="Delete it (then `caboose login` / `caboose link` again) or fix it by hand.",
        ) from None
    return data if isinstance(data, dict) else {}


@contextlib.contextmanager
def credentials_lock() -> Iterator[None]:
    """Serialise token refreshes between CLI processes running at the same time.

    Refresh tokens are single-use (the API ends the whole session when an old one is reused), so
    two processes refreshing concurrently would log the user out. With the lock, the second one
    re-reads the file and finds the already-rotated tokens.
    """
    directory = config_dir()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks; a rare race is tolerable
        yield
        return
    with (directory / _LOCK_FILE).open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


# Credentials -------------------------------------------------------------------------------


@dataclass
class Credentials:
    """One login: the instance and how to prove who we are there."""

    host: str
    access_token: str | None = None
    refresh_token: str | None = None
    api_token: str | None = None
    email: str | None = None

    @property
    def bearer(self) -> str | None:
        return self.access_token or self.api_token

    @property
    def is_session(self) -> bool:
        """A JWT session (refreshable, ended with logout) rather than an API token."""
        return self.access_token is not None


def load_credentials() -> Credentials | None:
    data = _read_json(config_dir() / CREDENTIALS_FILE)
    host = data.get("host")
    if not isinstance(host, str) or not host:
        return None

    def text(key: str) -> str | None:
        value = data.get(key)
        return value if isinstance(value, str) and value else None

    return Credentials(
        host=host,
        access_token=text("access_token"),
        refresh_token=text("refresh_token"),
        api_token=text("api_token"),
        email=text("email"),
    )


def save_credentials(credentials: Credentials) -> None:
    write_private_json(
        config_dir() / CREDENTIALS_FILE, {"version": _FILE_VERSION, **asdict(credentials)}
    )


def delete_credentials() -> bool:
    """Remove the stored login; ``False`` when there was none."""
    try:
        (config_dir() / CREDENTIALS_FILE).unlink()
    except FileNotFoundError:
        return False
    return True


# Links -------------------------------------------------------------------------------------


@dataclass
class Link:
    """What a folder deploys to. Names are kept for display only; ids are what is used."""

    host: str
    workspace_id: str
    project_id: str
    environment_id: str
    workspace_name: str = ""
    project_name: str = ""
    environment_name: str = ""
    service_id: str | None = None
    service_name: str | None = None


def _folder_key(folder: Path) -> str:
    return str(folder.expanduser().resolve())


def _load_links() -> dict[str, dict[str, Any]]:
    links = _read_json(config_dir() / LINKS_FILE).get("links")
    return links if isinstance(links, dict) else {}


def _save_links(links: dict[str, dict[str, Any]]) -> None:
    write_private_json(config_dir() / LINKS_FILE, {"version": _FILE_VERSION, "links": links})


def _parse_link(raw: Any) -> Link | None:
    if not isinstance(raw, dict):
        return None
    known = {f.name for f in fields(Link)}
    try:
        return Link(**{k: v for k, v in raw.items() if k in known})
    except TypeError:  # a required field is missing: an old or hand-edited file
        return None


def find_link(folder: Path) -> tuple[Path, Link] | None:
    """The link of ``folder`` or of its nearest linked parent (like git finds its repository), so
    commands work from any subdirectory of a linked project."""
    links = _load_links()
    current = Path(_folder_key(folder))
    for candidate in (current, *current.parents):
        link = _parse_link(links.get(str(candidate)))
        if link is not None:
            return candidate, link
    return None


def save_link(folder: Path, link: Link) -> Path:
    key = _folder_key(folder)
    links = _load_links()
    links[key] = asdict(link)
    _save_links(links)
    return Path(key)


def delete_link(folder: Path) -> Path | None:
    """Unlink ``folder`` or its nearest linked parent; the unlinked path, or ``None``."""
    found = find_link(folder)
    if found is None:
        return None
    path, _ = found
    links = _load_links()
    links.pop(str(path), None)
    _save_links(links)
    return path
