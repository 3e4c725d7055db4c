"""The master keys a process holds: the current one, and the previous ones still being read.

Rotation replaces the master key without downtime because every process can hold several:
values are sealed under the current key, and opened with whichever key their envelope names
(``core/encryption``). Where the keys come from:

* ``CABOOSE_MASTER_KEY`` (current) and ``CABOOSE_PREVIOUS_MASTER_KEYS`` (comma-separated) — a
  fleet, where every node must hold the same keys;
* else ``<data>/secrets/master.key`` (current, generated on first run) and every
  ``<data>/secrets/previous-keys/<key id>.key`` — one machine. ``caboosed rotate-key --generate``
  retires the current file into ``previous-keys/`` and writes a new one.

Both sources of previous keys are read together, so a key file left behind does no harm. Keys
are never logged or echoed: errors say which entry is wrong, not what it holds.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import os
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from caboose.core.encryption import (
    KEY_SIZE,
    Keyring,
    MasterKeyError,
    _read_key_file,
    key_id_for,
    load_or_create_key_file,
    parse_master_key,
)

__all__ = [
    "PREVIOUS_KEYS_DIRNAME",
    "MasterKeys",
    "generate_master_key",
    "key_files_stamp",
    "load_master_keys",
    "split_previous_master_keys",
]

PREVIOUS_KEYS_DIRNAME: Final = "previous-keys"
"""Under the secrets dir: one ``<key id>.key`` file (0600) per retired master key."""

_LOCK_NAME: Final = ".rotate-key.lock"


@dataclass(frozen=True)
class MasterKeys:
    """The current master key and the previous ones (deduplicated, current excluded)."""

    current: bytes = field(repr=False)
    previous: tuple[bytes, ...] = field(default=(), repr=False)

    @property
    def current_key_id(self) -> str:
        return key_id_for(self.current)

    @property
    def previous_key_ids(self) -> list[str]:
        return [key_id_for(key) for key in self.previous]

    def keyring(self, info: bytes) -> Keyring:
        """The keyring of one purpose (HKDF ``info``): seals with the current key, opens all."""
        return Keyring.from_master_keys(self.current, previous=self.previous, info=info)

    def __repr__(self) -> str:
        return f"MasterKeys(current={self.current_key_id!r}, previous={self.previous_key_ids!r})"


def split_previous_master_keys(value: str | Sequence[str] | None) -> list[str]:
    """``CABOOSE_PREVIOUS_MASTER_KEYS`` as a list: comma-separated, blanks ignored."""
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    return [item.strip() for item in items if item.strip()]


def _previous_key_files(directory: Path) -> Iterator[Path]:
    try:
        paths = sorted(directory.iterdir())
    except FileNotFoundError:
        return
    for path in paths:
        if path.suffix == ".key" and not path.name.startswith("."):
            yield path


def load_master_keys(
    *,
    master_key: str | None,
    previous_master_keys: Sequence[str] = (),
    master_key_file: Path,
    previous_keys_dir: Path | None = None,
) -> MasterKeys:
    """Read the current key (the setting, else the key file, created on first run) and every
    previous key (the setting's list and the files of ``previous_keys_dir``).

    A malformed previous key is an error, not skipped: starting without it would make every
    value it sealed unreadable, which is worse than not starting.
    """
    current = (
        parse_master_key(master_key) if master_key else load_or_create_key_file(master_key_file)
    )
    previous: list[bytes] = []
    for index, text in enumerate(split_previous_master_keys(previous_master_keys), start=1):
        try:
            previous.append(parse_master_key(text))
        except MasterKeyError as exc:
            raise MasterKeyError(
                f"CABOOSE_PREVIOUS_MASTER_KEYS entry {index} is not a valid key: {exc}"
            ) from None
    if previous_keys_dir is not None:
        for path in _previous_key_files(previous_keys_dir):
            try:
                previous.append(_read_key_file(path))
            except OSError as exc:
                raise MasterKeyError(
                    f"cannot read previous key file {path}: {exc.strerror}"
                ) from None
    unique: dict[bytes, None] = dict.fromkeys(key for key in previous if key != current)
    return MasterKeys(current, tuple(unique))


def key_files_stamp(master_key_file: Path, previous_keys_dir: Path) -> tuple[int, ...]:
    """Inode and modification time of the key file and the previous-keys dir (0 if missing).

    Two ``stat`` calls, cheap enough on every request: a process that caches its keys by this
    stamp picks up ``rotate-key --generate`` without a restart, so reads keep working while a
    rotation runs. (The key file is replaced by a rename, so its inode changes too.)
    """
    stamps: list[int] = []
    for path in (master_key_file, previous_keys_dir):
        try:
            info = path.stat()
        except FileNotFoundError:
            stamps += (0, 0)
        else:
            stamps += (info.st_ino, info.st_mtime_ns)
    return tuple(stamps)


def _write_private(path: Path, content: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, content)
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _rotation_lock(secrets_dir: Path) -> Iterator[None]:
    """One ``--generate`` at a time: two would each retire the same key and write a new one."""
    fd = os.open(secrets_dir / _LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def generate_master_key(master_key_file: Path, previous_keys_dir: Path) -> tuple[str, str]:
    """Retire the current key file into ``previous_keys_dir`` and write a new current key.

    Order matters for processes reading the files meanwhile: the old key is first copied to
    ``previous-keys/<key id>.key`` (fsynced), and only then is ``master.key`` atomically replaced
    (``rename``), so at every instant the files hold a key for every envelope in the database.
    Returns ``(old key id, new key id)``. Only for the key-file setup: a key given in
    ``CABOOSE_MASTER_KEY`` is rotated by changing the setting.
    """
    secrets_dir = master_key_file.parent
    with _rotation_lock(secrets_dir):
        try:
            old = _read_key_file(master_key_file)
        except FileNotFoundError:
            raise MasterKeyError(f"no master key file at {master_key_file} to rotate") from None
        old_id = key_id_for(old)
        previous_keys_dir.mkdir(mode=0o700, exist_ok=True)
        retired = previous_keys_dir / f"{old_id}.key"
        content = base64.b64encode(old) + b"\n"
        try:
            _write_private(retired, content)
        except FileExistsError:
            if _read_key_file(retired) != old:  # pragma: no cover - a 2**-32 key id collision
                raise MasterKeyError(f"{retired} holds a different key with the same id") from None
        _fsync_dir(previous_keys_dir)

        new = secrets.token_bytes(KEY_SIZE)
        tmp = secrets_dir / f".{master_key_file.name}.{secrets.token_hex(8)}.tmp"
        _write_private(tmp, base64.b64encode(new) + b"\n")
        try:
            tmp.replace(master_key_file)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        _fsync_dir(secrets_dir)
        # The dir's mtime is what running processes watch (key_files_stamp); touch it even if
        # the retired file already existed.
        os.utime(previous_keys_dir)
        return old_id, key_id_for(new)
