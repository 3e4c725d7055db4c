"""The per-project dependency cache, and the file-tree chores around it.

Layout of a project's cache directory (owned by the project's user, mode 0700)::

    <cache_dir>/
      bin/                  uv, and yarn/pnpm shims from corepack (on PATH in builds and apps)
      uv/  npm/  yarn/  pnpm-store/  corepack/      the tools' download caches
      python/<key>/venv     a virtualenv; immutable once python/<key>/.complete exists
      node/<key>/node_modules   installed packages; hard-linked into each build (cp -Rl)
      locks/<key>.lock      serialises two builds filling the same entry

``<key>`` hashes everything that decides the installed set: the provider, package manager,
runtime version, the dependency files' contents and the package-tool variables (``PIP_*``,
``UV_*``, ``NPM_CONFIG_*``...). A build whose key exists skips its install step entirely: a
virtualenv is not relocatable, so it stays at its stable path and the artifact points at it;
node_modules is hard-linked (``cp -Rl``), which costs milliseconds for a typical app.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import stat
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

CACHE_SCHEMA = "caboose-dependency-cache-v1"
COMPLETE_MARKER = ".complete"
_TOOL_VARIABLE_PREFIXES = ("PIP_", "UV_", "NPM_CONFIG_", "YARN_", "PNPM_", "COREPACK_")


def cache_key(parts: Iterable[str | bytes]) -> str:
    """A stable hash of ``parts`` (length-prefixed, so no two lists collide)."""
    digest = hashlib.sha256(CACHE_SCHEMA.encode())
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()[:40]


def tool_variables(variables: Mapping[str, str]) -> list[str]:
    """The user's variables that change what a package manager installs (index URLs...)."""
    picked = sorted(
        (k, v) for k, v in variables.items() if k.upper().startswith(_TOOL_VARIABLE_PREFIXES)
    )
    return [json.dumps(picked)]


@contextmanager
def entry_lock(cache_dir: Path, key: str) -> Iterator[None]:
    """Hold an exclusive lock on one cache entry (two builds of a project may race)."""
    locks = cache_dir / "locks"
    locks.mkdir(mode=0o700, exist_ok=True)
    fd = os.open(locks / f"{key}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def is_complete(entry: Path) -> bool:
    return (entry / COMPLETE_MARKER).is_file()


def mark_complete(entry: Path, info: Mapping[str, object]) -> None:
    tmp = entry / f"{COMPLETE_MARKER}.tmp"
    tmp.write_text(json.dumps(dict(info), sort_keys=True))
    tmp.rename(entry / COMPLETE_MARKER)


def make_readonly(root: Path, *, keep_writable: Iterable[str] = ()) -> None:
    """Drop every write bit under ``root`` (links are left alone): the tree is now immutable.

    Paths in ``keep_writable`` (relative to root; e.g. ``.next/cache``) and everything under
    them stay as they are: some frameworks insist on a cache beside their build output.
    """
    keep = {root / rel for rel in keep_writable}
    for dirpath, dirnames, filenames in os.walk(root, topdown=True):
        here = Path(dirpath)
        dirnames[:] = [d for d in dirnames if here / d not in keep]
        for name in filenames:
            _drop_write(here / name)
        _drop_write(here)


def _drop_write(path: Path) -> None:
    try:
        st = path.lstat()
    except FileNotFoundError:
        return
    if stat.S_ISLNK(st.st_mode) or not st.st_mode & 0o222:
        return
    path.chmod(stat.S_IMODE(st.st_mode) & ~0o222)


def force_rmtree(path: Path) -> None:
    """Remove a tree even where write bits were dropped (``make_readonly``) and we are not root."""
    if not path.exists() and not path.is_symlink():
        return
    if path.is_symlink() or not path.is_dir():
        path.unlink()
        return
    try:
        shutil.rmtree(path)
        return
    except PermissionError:
        pass
    for dirpath, dirnames, _ in os.walk(path):
        here = Path(dirpath)
        for directory in (here, *(here / d for d in dirnames)):
            try:
                if not directory.is_symlink():
                    directory.chmod(0o700)
            except OSError:
                pass
    shutil.rmtree(path, ignore_errors=True)
