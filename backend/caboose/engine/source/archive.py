"""Safe extraction of an uploaded source tarball (what ``caboose up`` sends).

The archive is hostile until proven otherwise: it comes from the network and is unpacked by the
platform, possibly as root. So this module never calls ``TarFile.extract``; it reads the archive
as a stream (nothing is held in memory but one block at a time) and writes every entry itself,
refusing:

- absolute names and names with ``..`` components (they would land outside the tree);
- symbolic links whose target is absolute or leaves the tree, lexically or through other links
  (every link's real path is checked again once everything is written);
- hard links to anything but a regular file extracted earlier from the same archive;
- device, FIFO and sparse entries (nothing a source tree needs, and some are dangerous);
- more than ``max_bytes`` of file content or ``max_files`` entries (413, checked before the
  bytes are written), and a decompressed stream much larger than that (a gzip bomb is stopped
  by the limit while streaming, not after);
- anything that is not a well-formed gzip-compressed tar (400).

Everything is written into a fresh temporary directory beside ``dest`` and renamed to ``dest``
only when the whole archive was accepted, so a refused archive leaves nothing behind, and no
entry is ever written through a symbolic link (files are created with ``O_NOFOLLOW|O_EXCL``
and every parent is checked), so nothing is ever written outside ``dest``, even partially.
"""

from __future__ import annotations

import errno
import gzip
import io
import os
import secrets
import shutil
import stat
import tarfile
import threading
import zlib
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from caboose.engine.sandbox import AppUser, chown_tree
from caboose.engine.types import (
    ExtractedSource,
    OperationCancelledError,
    Reporter,
    SourceError,
    StageStatus,
)

# Room for tar's own bytes (headers, padding, long-name and pax records) on top of file content
# when bounding the decompressed stream.
_PER_ENTRY_OVERHEAD = 3 * tarfile.BLOCKSIZE
_FIXED_OVERHEAD = 1024 * 1024
# Long names and pax headers are read into memory by tarfile: keep them small.
_MAX_METADATA_RECORD = 256 * 1024
_COPY_CHUNK = 256 * 1024
_METADATA_TYPES = frozenset(
    {
        tarfile.XHDTYPE,
        tarfile.XGLTYPE,
        tarfile.SOLARIS_XHDTYPE,
        tarfile.GNUTYPE_LONGNAME,
        tarfile.GNUTYPE_LONGLINK,
    }
)


class _MetadataTooLargeError(Exception):
    pass


class _GuardedTarInfo(tarfile.TarInfo):
    """Refuses oversized pax/long-name records before tarfile reads them into memory."""

    @classmethod
    def frombuf(cls, buf: bytes | bytearray, encoding: str, errors: str) -> _GuardedTarInfo:
        info = super().frombuf(buf, encoding, errors)
        if info.type in _METADATA_TYPES and info.size > _MAX_METADATA_RECORD:
            raise _MetadataTooLargeError
        return info


class _ExpansionLimitError(Exception):
    pass


class _LimitedReader(io.RawIOBase):
    """The decompressed stream, failing once more than ``limit`` bytes came out of it."""

    def __init__(self, inner: BinaryIO, limit: int) -> None:
        super().__init__()
        self._inner = inner
        self._limit = limit
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        want = min(len(buffer), self._limit - self.count + 1)
        data = self._inner.read(max(want, 1))
        n = len(data)
        buffer[:n] = data
        self.count += n
        if self.count > self._limit:
            raise _ExpansionLimitError
        return n


def extract_tarball(
    source: Path | BinaryIO,
    dest: Path,
    *,
    max_bytes: int,
    max_files: int,
    owner: AppUser | None = None,
    reporter: Reporter | None = None,
    cancel: threading.Event | None = None,
) -> ExtractedSource:
    """Extract the gzip tarball ``source`` (a path or a binary stream) to ``dest``.

    ``dest`` must not exist; its parent must. On success ``dest`` is a directory of mode 0700
    (owned by ``owner`` when given and the platform is root) holding the archive's tree; on any
    refusal a ``SourceError`` (status 400 or 413) is raised and nothing is left on disk.
    When a ``reporter`` is given, the ``fetch`` stage and a summary line are reported to it.
    """
    if dest.exists() or dest.is_symlink():
        raise SourceError(f"extraction target {dest} already exists", status=500)
    if not dest.parent.is_dir():
        raise SourceError(f"extraction parent {dest.parent} does not exist", status=500)
    if reporter is not None:
        reporter.stage("fetch", StageStatus.RUNNING)
    tmp = dest.parent / f".{dest.name}.extracting-{secrets.token_hex(6)}"
    tmp.mkdir(mode=0o700)
    try:
        if isinstance(source, Path):
            with source.open("rb") as stream:
                files, total = _extract_stream(stream, tmp, max_bytes, max_files, cancel)
        else:
            files, total = _extract_stream(source, tmp, max_bytes, max_files, cancel)
        _verify_links(tmp)
        tmp.rename(dest)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if reporter is not None:
            cancelled = isinstance(exc, OperationCancelledError)
            if isinstance(exc, SourceError | OperationCancelledError):
                reporter.log(exc.message, stream="system")
            reporter.stage("fetch", StageStatus.CANCELLED if cancelled else StageStatus.FAILED)
        raise
    dest.chmod(0o700)
    if owner is not None:
        chown_tree(dest, owner)
    if reporter is not None:
        reporter.log(
            f"Extracted {files} files ({_human(total)}) from the uploaded archive", stream="system"
        )
        reporter.stage("fetch", StageStatus.SUCCEEDED)
    return ExtractedSource(path=dest, files=files, bytes=total)


def _extract_stream(
    raw: BinaryIO,
    root: Path,
    max_bytes: int,
    max_files: int,
    cancel: threading.Event | None,
) -> tuple[int, int]:
    allowance = max_bytes + max_files * _PER_ENTRY_OVERHEAD + _FIXED_OVERHEAD
    gz = gzip.GzipFile(fileobj=raw, mode="rb")
    limited = _LimitedReader(gz, allowance)  # type: ignore[arg-type]
    state = _State(root)
    try:
        with tarfile.open(fileobj=limited, mode="r|", tarinfo=_GuardedTarInfo) as archive:
            for member in archive:
                if cancel is not None and cancel.is_set():
                    raise OperationCancelledError("extraction cancelled")
                state.entries += 1
                if state.entries > max_files:
                    raise SourceError(
                        f"the archive has more than {max_files} entries (the limit)", status=413
                    )
                _extract_member(archive, member, state, max_bytes)
    except _ExpansionLimitError:
        raise SourceError(
            f"the archive expands to more than {_human(max_bytes)} (the limit)", status=413
        ) from None
    except _MetadataTooLargeError:
        raise SourceError("the archive has an oversized long-name or pax header") from None
    except gzip.BadGzipFile:
        raise SourceError("the upload is not a gzip-compressed tar archive") from None
    except (EOFError, zlib.error):
        raise SourceError("the gzip stream is truncated or corrupt") from None
    except tarfile.ReadError as exc:
        if "zlib" in str(exc) or "gzip" in str(exc).lower():
            raise SourceError("the gzip stream is truncated or corrupt") from None
        raise SourceError("the upload is not a valid tar archive") from None
    except tarfile.TarError as exc:
        raise SourceError(f"the tar archive is malformed: {exc}") from None
    if state.entries == 0:
        raise SourceError("the archive is empty")
    return state.files, state.bytes


class _State:
    """What has been extracted so far, to judge later entries against it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.entries = 0
        self.files = 0
        self.bytes = 0
        self.regular: set[PurePosixPath] = set()
        self.symlinks: set[PurePosixPath] = set()
        self.dirs: set[PurePosixPath] = set()


def _member_path(name: str, what: str = "entry") -> PurePosixPath | None:
    """The normalised relative path of an archive name, or None for the root itself."""
    if "\x00" in name:
        raise SourceError(f"archive {what} has a NUL byte in its name")
    if name.startswith("/"):
        raise SourceError(f"archive {what} {name!r} has an absolute path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise SourceError(f"archive {what} {name!r} has a '..' component")
    return PurePosixPath(*parts) if parts else None


def _prepare_parents(rel: PurePosixPath, state: _State) -> None:
    """Create the parent directories of ``rel``, refusing to pass through any link."""
    current = PurePosixPath()
    for part in rel.parts[:-1]:
        current = current / part
        if current in state.symlinks:
            raise SourceError(
                f"archive entry {str(rel)!r} goes through the symbolic link {str(current)!r}"
            )
        path = state.root / current
        try:
            st = path.lstat()
        except FileNotFoundError:
            path.mkdir(mode=0o755)
            state.dirs.add(current)
            continue
        if not stat.S_ISDIR(st.st_mode):
            raise SourceError(
                f"archive entry {str(rel)!r} needs {str(current)!r} to be a "
                "directory, but it is a file"
            )


def _clear_for(rel: PurePosixPath, state: _State, *, keep_dir: bool = False) -> None:
    """Make room for a later duplicate of an entry (tar semantics: the last one wins)."""
    path = state.root / rel
    try:
        st = path.lstat()
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        if keep_dir:
            return
        raise SourceError(f"archive entry {str(rel)!r} replaces a directory")
    path.unlink()
    state.regular.discard(rel)
    state.symlinks.discard(rel)


def _extract_member(
    archive: tarfile.TarFile, member: tarfile.TarInfo, state: _State, max_bytes: int
) -> None:
    rel = _member_path(member.name)
    if rel is None:
        if member.isdir():
            return
        raise SourceError("archive entry with an empty name")
    if member.ischr() or member.isblk() or member.isfifo() or member.isdev():
        raise SourceError(f"archive entry {member.name!r} is a device or FIFO, which is refused")
    if member.issparse():
        raise SourceError(f"archive entry {member.name!r} is a sparse file, which is refused")
    try:
        _prepare_parents(rel, state)
        path = state.root / rel
        if member.isdir():
            _clear_for(rel, state, keep_dir=True)
            if not path.is_dir():
                path.mkdir(mode=0o755)
            state.dirs.add(rel)
        elif member.issym():
            _check_symlink(rel, member.linkname)
            _clear_for(rel, state)
            path.symlink_to(member.linkname)
            state.symlinks.add(rel)
        elif member.islnk():
            target = _member_path(member.linkname, "hard link target")
            if target is None or target not in state.regular:
                raise SourceError(
                    f"archive hard link {member.name!r} points at {member.linkname!r}, "
                    "which is not a file extracted earlier from the archive"
                )
            _clear_for(rel, state)
            os.link(state.root / target, path, follow_symlinks=False)
            state.regular.add(rel)
            state.files += 1
        elif member.isreg():
            if state.bytes + member.size > max_bytes:
                raise SourceError(
                    f"the archive holds more than {_human(max_bytes)} of files (the limit)",
                    status=413,
                )
            _clear_for(rel, state)
            _write_file(archive, member, path)
            state.bytes += member.size
            state.regular.add(rel)
            state.files += 1
        else:
            raise SourceError(f"archive entry {member.name!r} has an unsupported type")
    except OSError as exc:
        status = 507 if exc.errno in (errno.ENOSPC, errno.EDQUOT) else 400
        raise SourceError(
            f"could not extract {member.name!r}: {exc.strerror or exc}", status=status
        ) from None


def _check_symlink(rel: PurePosixPath, target: str) -> None:
    if not target or "\x00" in target:
        raise SourceError(f"archive link {str(rel)!r} has an empty or invalid target")
    if target.startswith("/"):
        raise SourceError(f"archive link {str(rel)!r} points at the absolute path {target!r}")
    depth = len(rel.parts) - 1
    for part in target.split("/"):
        if part in ("", "."):
            continue
        depth += -1 if part == ".." else 1
        if depth < 0:
            raise SourceError(f"archive link {str(rel)!r} points outside the tree ({target!r})")


def _write_file(archive: tarfile.TarFile, member: tarfile.TarInfo, path: Path) -> None:
    mode = 0o755 if member.mode & 0o111 else 0o644
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(path, flags, 0o600)
    with os.fdopen(fd, "wb") as out:
        data = archive.extractfile(member)
        if data is None:  # pragma: no cover - isreg() members always have data
            raise SourceError(f"archive entry {member.name!r} has no data")
        remaining = member.size
        while remaining > 0:
            chunk = data.read(min(_COPY_CHUNK, remaining))
            if not chunk:
                raise SourceError("the tar archive is truncated")
            out.write(chunk)
            remaining -= len(chunk)
        os.fchmod(out.fileno(), mode)


def _verify_links(root: Path) -> None:
    """Second line of defence: every link must really resolve inside the tree.

    The lexical check cannot see chains (``a -> .`` then ``b -> a/..``); real paths can.
    """
    real_root = os.path.realpath(root)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in (*dirnames, *filenames):
            path = Path(dirpath, name)
            if path.is_symlink():
                real = os.path.realpath(path)
                if real != real_root and not real.startswith(real_root + os.sep):
                    rel = path.relative_to(root)
                    raise SourceError(f"archive link {str(rel)!r} resolves outside the tree")


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover
