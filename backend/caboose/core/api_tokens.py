"""API tokens and other random secrets that are stored only as keyed hashes.

Format: ``cb_`` followed by 32 random bytes as unpadded base64url (43 characters, 46 in all).
base64url because it is the shortest encoding that survives URLs, headers, shells and ``.env``
files unquoted; the ``cb_`` prefix lets secret scanners and :func:`looks_like_api_token` tell a
Caboose token from a JWT or a password without a database lookup.

Tokens are shown once and stored as HMAC-SHA256 with a server-side secret (from settings), not
as a plain hash: a leaked database then does not even allow offline checks of candidate tokens.
With 256 bits of randomness no slow hash is needed, and HMAC makes the lookup-by-hash index
possible. Comparison is constant time. Each kind of secret hashes under its own ``purpose``, so
a hash of one kind can never be matched as another.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import Final

__all__ = [
    "API_TOKEN_PREFIX",
    "MIN_HASH_SECRET_BYTES",
    "generate_api_token",
    "generate_secret",
    "hash_api_token",
    "hash_secret",
    "looks_like_api_token",
    "token_prefix",
    "verify_api_token",
    "verify_secret",
]

API_TOKEN_PREFIX: Final = "cb_"  # noqa: S105 - a format marker, not a credential
API_TOKEN_BYTES: Final = 32
_API_TOKEN_RE: Final = re.compile(r"cb_[A-Za-z0-9_-]{43}")
_API_TOKEN_PURPOSE: Final = "api-token"  # noqa: S105 - a domain label

TOKEN_PREFIX_LENGTH: Final = len(API_TOKEN_PREFIX) + 6
"""Characters of a token kept in clear for lists (``cb_`` + 6 = 36 of 256 bits: identifies,
does not help guess)."""

MIN_SECRET_BYTES: Final = 16
"""The fewest random bytes :func:`generate_secret` will produce (128 bits)."""

MIN_HASH_SECRET_BYTES: Final = 32
"""The shortest HMAC key accepted: a short server secret would be the weak link."""


def generate_secret(nbytes: int = 32) -> str:
    """Return ``nbytes`` of CSPRNG output as unpadded base64url (webhook secrets, invitations)."""
    if nbytes < MIN_SECRET_BYTES:
        raise ValueError(f"secrets need at least {MIN_SECRET_BYTES} random bytes")
    return secrets.token_urlsafe(nbytes)


def generate_api_token() -> str:
    """Return a new API token: ``cb_`` + 32 random bytes as unpadded base64url."""
    return API_TOKEN_PREFIX + secrets.token_urlsafe(API_TOKEN_BYTES)


def looks_like_api_token(value: str) -> bool:
    """Whether ``value`` has the shape of an API token (says nothing about whether it exists).

    Lets the auth layer route a Bearer value to the token table or to JWT decoding cheaply.
    """
    return isinstance(value, str) and _API_TOKEN_RE.fullmatch(value) is not None


def token_prefix(token: str) -> str:
    """The start of a token, stored in clear so users can tell their tokens apart (``cb_Ab12Cd``).

    The display layer adds the ellipsis.
    """
    if not looks_like_api_token(token):
        raise ValueError("not an API token")
    return token[:TOKEN_PREFIX_LENGTH]


def _hmac_key(secret: bytes) -> bytes:
    if not isinstance(secret, bytes) or len(secret) < MIN_HASH_SECRET_BYTES:
        raise ValueError(f"the hashing secret must be at least {MIN_HASH_SECRET_BYTES} bytes")
    return secret


def hash_secret(value: str, *, secret: bytes, purpose: str) -> str:
    """HMAC-SHA256 (hex) of ``value`` under ``secret``, separated by ``purpose``.

    ``purpose`` (e.g. ``"invitation"``, ``"api-token"``) is bound into the MAC, so the same
    server secret can hash several kinds of secret without one kind's hash matching another's.
    """
    if not purpose or "\x00" in purpose:
        raise ValueError("purpose must be a non-empty name without NUL")
    message = purpose.encode("utf-8") + b"\x00" + value.encode("utf-8")
    return hmac.new(_hmac_key(secret), message, hashlib.sha256).hexdigest()


def verify_secret(value: str, stored_hash: str, *, secret: bytes, purpose: str) -> bool:
    """Whether ``value`` hashes to ``stored_hash``, compared in constant time."""
    expected = hash_secret(value, secret=secret, purpose=purpose)
    return hmac.compare_digest(expected.encode("ascii"), stored_hash.encode("utf-8"))


def hash_api_token(token: str, *, secret: bytes) -> str:
    """The value stored for an API token: HMAC-SHA256 hex (64 chars), indexable for lookup."""
    return hash_secret(token, secret=secret, purpose=_API_TOKEN_PURPOSE)


def verify_api_token(token: str, stored_hash: str, *, secret: bytes) -> bool:
    """Whether ``token`` matches ``stored_hash``, in constant time. Malformed tokens never match."""
    # The shape is public, so refusing a malformed token early leaks nothing.
    return looks_like_api_token(token) and verify_secret(
        token, stored_hash, secret=secret, purpose=_API_TOKEN_PURPOSE
    )
