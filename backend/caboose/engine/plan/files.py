"""Reading files of an untrusted source tree from the platform's side.

Planning runs as the platform (root, on a server) over a tree whose contents someone else
wrote: a ``railway.json`` that is a symbolic link to ``/etc/shadow`` must not end up quoted in
an error message, and a 2 GB ``package.json`` must not be read into memory. Every read here
resolves the path, refuses anything that leaves the tree, is not a regular file, or is larger
than a small limit, and decodes strictly.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from caboose.engine.types import PlanError

MAX_MANIFEST_BYTES = 2 * 1024 * 1024
MAX_SCAN_BYTES = 512 * 1024


def inside(root: Path, rel: str) -> Path | None:
    """The real path of ``root/rel`` if it exists and stays inside ``root``, else None."""
    real_root = os.path.realpath(root)
    real = os.path.realpath(root / rel)
    if real != real_root and not real.startswith(real_root + os.sep):
        return None
    path = Path(real)
    return path if path.exists() else None


def is_file(root: Path, rel: str) -> bool:
    """True for a regular file inside the tree (a link to one inside the tree counts)."""
    path = inside(root, rel)
    return path is not None and path.is_file()


def is_dir(root: Path, rel: str) -> bool:
    path = inside(root, rel)
    return path is not None and path.is_dir()


def read_bytes(root: Path, rel: str, *, limit: int = MAX_MANIFEST_BYTES) -> bytes | None:
    """The bytes of ``root/rel``, None when absent; PlanError when unsafe or too large."""
    if not (root / rel).exists() and not (root / rel).is_symlink():
        return None
    path = inside(root, rel)
    if path is None:
        if (root / rel).is_symlink():
            raise PlanError(f"{rel} is a symbolic link that points outside the source tree")
        return None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as exc:
        raise PlanError(f"{rel} cannot be read: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        st = os.fstat(handle.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise PlanError(f"{rel} is not a regular file")
        if st.st_size > limit:
            raise PlanError(f"{rel} is too large ({st.st_size} bytes; the limit is {limit})")
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise PlanError(f"{rel} is too large (the limit is {limit} bytes)")
    return data


def read_text(root: Path, rel: str, *, limit: int = MAX_MANIFEST_BYTES) -> str | None:
    """``read_bytes`` decoded as UTF-8 (a BOM is tolerated); PlanError when it is not UTF-8."""
    data = read_bytes(root, rel, limit=limit)
    if data is None:
        return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PlanError(f"{rel} is not valid UTF-8 (byte {exc.start})") from None


def scan_text(root: Path, rel: str) -> str | None:
    """Best-effort read of a source file to look for an app object; never raises."""
    try:
        return read_text(root, rel, limit=MAX_SCAN_BYTES)
    except PlanError:
        return None


def listing(root: Path, limit: int = 12) -> list[str]:
    """A few top-level names, for 'found instead' in error messages."""
    try:
        names = sorted(p.name for p in root.iterdir())
    except OSError:
        return []
    shown = [
        n + ("/" if (root / n).is_dir() and not (root / n).is_symlink() else "")
        for n in names[:limit]
    ]
    if len(names) > limit:
        shown.append(f"... ({len(names) - limit} more)")
    return shown
