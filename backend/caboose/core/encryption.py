"""Envelope encryption for secrets at rest (service variables, OAuth tokens).

Every stored secret is an *envelope*::

    encrypted:v1:<key id>:<base64url(nonce || ciphertext || tag)>

* AES-256-GCM with a fresh random 96-bit nonce per value: the same plaintext never produces the
  same envelope, and any change to the envelope fails authentication instead of returning garbage.
* The envelope names the key that sealed it, so a :class:`Keyring` can hold the current key and
  older ones: values decrypt with whichever key they name and are written back under the current
  key (``caboosed rotate-key``) while the platform keeps running.
* Associated data binds a value to its row (e.g. ``variable:<row id>:<key>``). The database is not
  trusted to keep ciphertexts where they belong: an envelope copied into another row, or another
  variable's name, fails to decrypt rather than silently leaking one secret under another's name.
* One master key (32 bytes, from ``CABOOSE_MASTER_KEY`` or a 0600 file in the data dir) is never
  used directly. HKDF-SHA256 derives one AES key per purpose (``info``), so a ciphertext of one
  purpose is useless under another and a bug in one never hands out the other's key. The key id is
  derived from the master key too, so it is stable across restarts and needs no storage.

This module is pure: keys come in as arguments and nothing is logged. Error messages never
contain a plaintext, a key, or the associated data.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import errno
import hashlib
import os
import re
import secrets
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = [
    "ENVELOPE_PREFIX",
    "KEY_SIZE",
    "OAUTH_TOKENS_INFO",
    "VARIABLES_INFO",
    "DecryptionError",
    "Keyring",
    "MasterKeyError",
    "derive_key",
    "envelope_key_id",
    "is_envelope",
    "key_id_for",
    "load_or_create_key_file",
    "parse_master_key",
]

KEY_SIZE: Final = 32
"""Bytes in a master key and in every derived AES-256 key."""

NONCE_SIZE: Final = 12
"""96-bit nonces: the size GCM is designed for (other sizes are hashed and weaken the bounds)."""

TAG_SIZE: Final = 16

ENVELOPE_PREFIX: Final = "encrypted:v1:"

VARIABLES_INFO: Final = b"caboose/variables/v1"
"""HKDF ``info`` for service and shared variables."""

OAUTH_TOKENS_INFO: Final = b"caboose/oauth-tokens/v1"
"""HKDF ``info`` for stored GitHub/GitLab access tokens."""

_KEY_ID_INFO: Final = b"caboose/key-id/v1"
_HKDF_SALT: Final = b"caboose/hkdf-salt/v1"

_KEY_ID_RE: Final = re.compile(r"[0-9a-f]{8}")
_B64URL_RE: Final = re.compile(r"[A-Za-z0-9_-]+")
_HEX_KEY_RE: Final = re.compile(r"[0-9a-fA-F]{64}")
_B64_KEY_RE: Final = re.compile(r"[A-Za-z0-9+/_-]{43}=?")

# A random 32-byte key has ~30 distinct byte values (fewer than 16 happens with probability
# about 2**-55); fewer is a placeholder such as 32 zero bytes or a repeated "0123…abcdef",
# which would make every secret readable by anyone who guesses it.
_MIN_DISTINCT_KEY_BYTES: Final = 16


class DecryptionError(Exception):
    """An envelope could not be opened: malformed, sealed by an unknown key, or not authentic.

    One exception type on purpose: callers treat every case the same way (the value is unusable),
    and a single type cannot be turned into an oracle that tells an attacker which check failed.
    The message says which, for the operator, without echoing the value.
    """


class MasterKeyError(Exception):
    """The master key (setting or key file) is missing, malformed, or unsafely stored."""


# --------------------------------------------------------------------------------------------
# Key derivation
# --------------------------------------------------------------------------------------------


def _check_master_key(master_key: bytes) -> None:
    if not isinstance(master_key, bytes) or len(master_key) != KEY_SIZE:
        raise MasterKeyError(f"the master key must be exactly {KEY_SIZE} bytes")


def _hkdf(master_key: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=KEY_SIZE, salt=_HKDF_SALT, info=info).derive(
        master_key
    )


def derive_key(master_key: bytes, *, info: bytes) -> bytes:
    """Derive the AES-256 key for one purpose from the master key (HKDF-SHA256).

    Distinct ``info`` values give independent keys, so the master key itself never touches data.
    """
    _check_master_key(master_key)
    if not info:
        raise ValueError("info must name the key's purpose")
    if info == _KEY_ID_INFO:
        raise ValueError("this info is reserved for key ids")
    return _hkdf(master_key, info)


def key_id_for(master_key: bytes) -> str:
    """The key id of a master key: 8 hex chars of SHA-256 over a key derived for this use only.

    Deterministic, so envelopes written before a restart still name a known key; derived through
    HKDF, so publishing the id (it is in every envelope) reveals nothing about any data key.
    The id is per master key, not per purpose: rotation replaces the master key, and one id then
    names that generation across every table.
    """
    _check_master_key(master_key)
    return hashlib.sha256(_hkdf(master_key, _KEY_ID_INFO)).hexdigest()[:8]


# --------------------------------------------------------------------------------------------
# Envelopes
# --------------------------------------------------------------------------------------------


def _b64url_encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64url_decode_strict(text: str) -> bytes:
    """Decode unpadded base64url, refusing any text that is not the canonical encoding.

    ``base64`` ignores stray characters and the unused low bits of the last character; accepting
    either would let two different envelope strings carry the same ciphertext, which defeats
    "any change to the envelope is detected".
    """
    if not _B64URL_RE.fullmatch(text) or len(text) % 4 == 1:
        raise ValueError("not base64url")
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64url_encode(raw) != text:
        raise ValueError("not canonical base64url")
    return raw


def _split_envelope(envelope: object) -> tuple[str, bytes]:
    """Return ``(key id, nonce || ciphertext || tag)`` or raise :class:`DecryptionError`."""
    if not isinstance(envelope, str) or not envelope.startswith(ENVELOPE_PREFIX):
        raise DecryptionError("malformed envelope: expected 'encrypted:v1:<key id>:<data>'")
    key_id, sep, body = envelope[len(ENVELOPE_PREFIX) :].partition(":")
    if not sep or not _KEY_ID_RE.fullmatch(key_id):
        raise DecryptionError("malformed envelope: bad key id")
    try:
        raw = _b64url_decode_strict(body)
    except (ValueError, binascii.Error):
        raise DecryptionError("malformed envelope: data is not base64url") from None
    if len(raw) < NONCE_SIZE + TAG_SIZE:
        raise DecryptionError("malformed envelope: data too short")
    return key_id, raw


def is_envelope(value: object) -> bool:
    """Whether ``value`` is shaped like an envelope (no key needed; says nothing of authenticity).

    For migrations and ``rotate-key`` that must tell sealed values from anything else.
    """
    try:
        _split_envelope(value)
    except DecryptionError:
        return False
    return True


def envelope_key_id(envelope: str) -> str:
    """The key id an envelope names. Raises :class:`DecryptionError` if it is malformed."""
    return _split_envelope(envelope)[0]


def _associated_data(key_id: str, aad: str) -> bytes:
    # The envelope header is bound in as well as the caller's row binding, so the authenticated
    # bytes are exactly what the envelope claims to be.
    return f"{ENVELOPE_PREFIX}{key_id}:".encode() + aad.encode("utf-8")


def _check_aad(aad: str) -> None:
    if not isinstance(aad, str) or not aad:
        # Empty associated data would let a ciphertext move freely between rows.
        raise ValueError("aad must bind the value to its row, e.g. 'variable:<row id>:<key>'")


class Keyring:
    """The AES keys of one purpose, by key id, and which one seals new values.

    Build it with :meth:`from_master_keys`: the current master key plus any previous ones still
    needed to read envelopes that have not been rotated yet.
    """

    __slots__ = ("_aead", "_current_key_id")

    def __init__(self, keys: Mapping[str, bytes], *, current_key_id: str) -> None:
        """Hold already-derived 32-byte AES keys by key id (most callers want the factory)."""
        if current_key_id not in keys:
            raise ValueError("the current key id must be one of the keyring's keys")
        aead: dict[str, AESGCM] = {}
        for key_id, key in keys.items():
            if not _KEY_ID_RE.fullmatch(key_id):
                raise ValueError("key ids are 8 lowercase hex characters")
            if len(key) != KEY_SIZE:
                raise ValueError(f"AES-256 keys are {KEY_SIZE} bytes")
            aead[key_id] = AESGCM(key)
        self._aead: Final = aead
        self._current_key_id: Final = current_key_id

    @classmethod
    def from_master_keys(
        cls, current: bytes, *, previous: Iterable[bytes] = (), info: bytes
    ) -> Keyring:
        """Derive this purpose's keys from the current master key and any previous ones.

        ``info`` names the purpose (:data:`VARIABLES_INFO`, :data:`OAUTH_TOKENS_INFO`).
        """
        masters: dict[str, bytes] = {}
        for master_key in (current, *previous):
            key_id = key_id_for(master_key)
            if masters.setdefault(key_id, master_key) != master_key:
                # 1 in 2**32 per pair: refuse rather than open values with the wrong key.
                raise ValueError("two different master keys share a key id; generate a new key")
        keys = {key_id: derive_key(master, info=info) for key_id, master in masters.items()}
        return cls(keys, current_key_id=key_id_for(current))

    @property
    def current_key_id(self) -> str:
        """The key id new envelopes are sealed with."""
        return self._current_key_id

    @property
    def key_ids(self) -> frozenset[str]:
        """Every key id this keyring can open."""
        return frozenset(self._aead)

    def __repr__(self) -> str:
        # Never the keys themselves.
        return f"Keyring(current_key_id={self._current_key_id!r}, key_ids={sorted(self._aead)!r})"

    def encrypt(self, plaintext: str, *, aad: str) -> str:
        """Seal ``plaintext`` under the current key, bound to ``aad`` (the row it belongs to)."""
        if not isinstance(plaintext, str):
            raise TypeError("plaintext must be a str")
        _check_aad(aad)
        key_id = self._current_key_id
        nonce = secrets.token_bytes(NONCE_SIZE)
        sealed = self._aead[key_id].encrypt(
            nonce, plaintext.encode("utf-8"), _associated_data(key_id, aad)
        )
        return f"{ENVELOPE_PREFIX}{key_id}:{_b64url_encode(nonce + sealed)}"

    def decrypt(self, envelope: str, *, aad: str) -> str:
        """Open an envelope sealed for ``aad`` with whichever of our keys it names.

        Raises :class:`DecryptionError` if the envelope is malformed, names a key we do not hold,
        or fails authentication (wrong key, wrong row, any tampering). Never returns garbage.
        """
        _check_aad(aad)
        key_id, raw = _split_envelope(envelope)
        aead = self._aead.get(key_id)
        if aead is None:
            raise DecryptionError(
                f"unknown key id {key_id!r}: the master key that sealed this value is not "
                "configured (was the master key replaced without keeping the previous one?)"
            )
        try:
            plaintext = aead.decrypt(
                raw[:NONCE_SIZE], raw[NONCE_SIZE:], _associated_data(key_id, aad)
            )
        except InvalidTag:
            raise DecryptionError(
                "authentication failed: the value was tampered with, moved from another row, "
                "or sealed by a different key"
            ) from None
        try:
            return plaintext.decode("utf-8")
        except UnicodeDecodeError:  # pragma: no cover - only reachable with a forged key
            raise DecryptionError("decrypted value is not UTF-8") from None

    def needs_rotation(self, envelope: str) -> bool:
        """Whether the envelope is sealed by a key other than the current one.

        Looks at the header only. Raises :class:`DecryptionError` if it is not an envelope, so a
        stray plaintext is noticed instead of being reported as "up to date".
        """
        return envelope_key_id(envelope) != self._current_key_id

    def reencrypt(self, envelope: str, *, aad: str) -> str:
        """Return the envelope sealed under the current key, with a fresh nonce.

        The envelope is always decrypted first (so a corrupt one is reported, not carried along);
        one already under the current key is returned unchanged, so callers can skip the write
        when ``new == old``.
        """
        plaintext = self.decrypt(envelope, aad=aad)
        if not self.needs_rotation(envelope):
            return envelope
        return self.encrypt(plaintext, aad=aad)


# --------------------------------------------------------------------------------------------
# Master key
# --------------------------------------------------------------------------------------------


def parse_master_key(text: str) -> bytes:
    """Parse a master key written as base64 (standard or URL-safe) or hex of 32 bytes.

    This is the format of ``CABOOSE_MASTER_KEY`` and of the key file; generate one with
    ``openssl rand -base64 32``. The message on error never repeats the key.
    """
    if not isinstance(text, str):
        raise MasterKeyError("the master key must be text (base64 or hex)")
    text = text.strip()
    key: bytes | None = None
    if _HEX_KEY_RE.fullmatch(text):
        key = bytes.fromhex(text)
    elif _B64_KEY_RE.fullmatch(text):
        normalized = text.rstrip("=").replace("+", "-").replace("/", "_")
        with contextlib.suppress(ValueError, binascii.Error):
            key = _b64url_decode_strict(normalized)
    if key is None or len(key) != KEY_SIZE:
        raise MasterKeyError(
            f"the master key must be {KEY_SIZE} random bytes encoded as base64 (44 characters) "
            f"or hex (64 characters); got {len(text)} characters that are neither"
        )
    if len(set(key)) < _MIN_DISTINCT_KEY_BYTES:
        raise MasterKeyError(
            "the master key looks like a placeholder, not random bytes; generate one with "
            "`openssl rand -base64 32`"
        )
    return key


def _check_key_file(fd: int, path: Path) -> None:
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        raise MasterKeyError(f"master key file {path} is not a regular file")
    if info.st_uid != os.geteuid():
        raise MasterKeyError(
            f"master key file {path} is owned by uid {info.st_uid}, not by this user "
            f"(uid {os.geteuid()}); whoever owns it controls every secret"
        )
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        raise MasterKeyError(
            f"master key file {path} has mode {mode:04o}, so other users may read it; "
            f"run `chmod 600 {path}` (it must be 0600)"
        )


def _read_key_file(path: Path) -> bytes:
    # O_NOFOLLOW: a symlink planted at the key path must not redirect us to another file.
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        _check_key_file(fd, path)
        content = os.read(fd, 1024)
    finally:
        os.close(fd)
    try:
        return parse_master_key(content.decode("ascii"))
    except (UnicodeDecodeError, MasterKeyError) as exc:
        raise MasterKeyError(f"master key file {path} does not hold a valid key: {exc}") from None


def _write_new_file(path: Path, content: bytes) -> None:
    """Create ``path`` (failing if it exists, never following a symlink) as 0600 and fsync it."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(path, flags, 0o600)
    try:
        view = memoryview(content)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def _make_private_dirs(directory: Path) -> None:
    """Create ``directory`` and any missing ancestors as 0700 (existing ones are left alone)."""
    missing = [d for d in (directory, *directory.parents) if not d.exists()]
    for each in reversed(missing):
        each.mkdir(mode=0o700, exist_ok=True)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def load_or_create_key_file(path: str | os.PathLike[str]) -> bytes:
    """Read the master key from ``path``, creating it (32 random bytes, base64, 0600) if missing.

    Creation is atomic and never overwrites: the key is written and fsynced to a private
    temporary file, then hard-linked into place, which fails if another process got there first
    (we then use its key). A reader therefore never sees a half-written key, and two processes
    starting together never end up encrypting with different keys. A missing parent directory is
    created 0700. An existing file readable by group or others, owned by someone else, or not a
    regular file is refused: losing this file loses every secret, leaking it leaks them all.
    """
    path = Path(path)
    try:
        return _read_key_file(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise MasterKeyError(f"master key file {path} is a symlink; refusing it") from None
        raise MasterKeyError(f"cannot read master key file {path}: {exc.strerror}") from None

    directory = path.parent
    _make_private_dirs(directory)
    key = secrets.token_bytes(KEY_SIZE)
    content = base64.b64encode(key) + b"\n"
    tmp = directory / f".{path.name}.{secrets.token_hex(8)}.tmp"
    _write_new_file(tmp, content)
    try:
        os.link(tmp, path)
    except FileExistsError:
        # Another process created the key between our read and our link: use theirs.
        return _read_key_file(path)
    except OSError:
        # A filesystem without hard links: create the final path exclusively instead (a
        # concurrent reader could then briefly see a short file and fail, never a wrong key).
        try:
            _write_new_file(path, content)
        except FileExistsError:
            return _read_key_file(path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    _fsync_dir(directory)
    return key
