"""Session tokens: short-lived access JWTs and long-lived, rotated refresh JWTs (HS256).

Why so strict:

* Only HS256 is accepted, whatever the token's header says. Letting the header choose the
  algorithm is the classic JWT hole: ``alg: none`` (no signature at all) or an RS256/HS256
  confusion where a public key is used as an HMAC secret. The list of algorithms is fixed here.
* Every claim we rely on is required and type-checked: ``sub``, ``type``, ``jti``, ``iat``,
  ``nbf``, ``exp``, ``iss``. ``type`` stops a refresh token from being used as an access token
  (and the reverse); ``jti`` is what logout puts on the Redis blacklist; ``fam`` (refresh
  family) lets the auth layer revoke every descendant when a rotated refresh token is replayed.
* One exception, :class:`InvalidTokenError`, with a machine-readable :class:`TokenErrorReason`,
  so the API can answer "expired, refresh" differently from "forged" without importing PyJWT.

Pure functions: the secret is an argument and nothing is logged. Revocation (the blacklist) and
family tracking live in the auth layer, which has Redis.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Final, Literal, get_args

import jwt

__all__ = [
    "ALGORITHM",
    "ISSUER",
    "MIN_SECRET_BYTES",
    "InvalidTokenError",
    "TokenClaims",
    "TokenErrorReason",
    "TokenType",
    "create_token",
    "decode_token",
]

TokenType = Literal["access", "refresh"]

ALGORITHM: Final = "HS256"
ISSUER: Final = "caboose"

MIN_SECRET_BYTES: Final = 32
"""HS256 keys shorter than the hash output weaken it (RFC 7518 §3.2); refuse them outright."""

MAX_TOKEN_LENGTH: Final = 8192
"""Our tokens are a few hundred bytes; anything far larger is refused before parsing."""

_REQUIRED_CLAIMS: Final = ("sub", "type", "jti", "iat", "nbf", "exp", "iss")
_RESERVED_CLAIMS: Final = frozenset({*_REQUIRED_CLAIMS, "fam", "aud"})
_JTI_RE: Final = re.compile(r"[0-9a-f]{32}")


class TokenErrorReason(StrEnum):
    """Why a token was refused. Values are stable strings, fit for logs and problem details."""

    MALFORMED = "malformed"
    BAD_SIGNATURE = "bad_signature"
    BAD_ALGORITHM = "bad_algorithm"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    WRONG_TYPE = "wrong_type"
    WRONG_ISSUER = "wrong_issuer"
    MISSING_CLAIM = "missing_claim"
    INVALID_CLAIM = "invalid_claim"


class InvalidTokenError(Exception):
    """A token was refused. ``reason`` says why; the message never contains the token."""

    def __init__(self, reason: TokenErrorReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason: Final = reason
        self.detail: Final = detail


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """The verified contents of a token.

    Field to claim: ``subject``/``sub``, ``token_type``/``type``, ``jti``, ``issued_at``/``iat``,
    ``not_before``/``nbf``, ``expires_at``/``exp``, ``family``/``fam``, ``issuer``/``iss``. Times
    are timezone-aware UTC with whole seconds, as in the token. ``extra`` holds any other claims.
    """

    subject: str
    token_type: TokenType
    jti: str
    issued_at: datetime
    not_before: datetime
    expires_at: datetime
    family: str | None = None
    issuer: str = ISSUER
    extra: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}), hash=False)

    def remaining(self, *, now: datetime | None = None) -> timedelta:
        """Time until expiry (never negative): the TTL for a blacklist entry of this ``jti``."""
        now = now or datetime.now(UTC)
        return max(self.expires_at - now, timedelta(0))


def _check_secret(secret: str) -> bytes:
    if not isinstance(secret, str) or len(secret.encode("utf-8")) < MIN_SECRET_BYTES:
        raise ValueError(f"the JWT secret must be at least {MIN_SECRET_BYTES} bytes")
    return secret.encode("utf-8")


def create_token(
    subject: str,
    *,
    token_type: TokenType,
    secret: str,
    expires_in: timedelta,
    family: str | None = None,
    extra: Mapping[str, object] | None = None,
    now: datetime | None = None,
) -> tuple[str, TokenClaims]:
    """Sign a new token and return it with its claims.

    A refresh token always belongs to a family: pass the family of the refresh token being
    rotated, or none to start a new family (a fresh login). Access tokens carry ``fam`` only if
    given, so the auth layer can tie them to the session that minted them. ``now`` is for tests;
    times are truncated to whole seconds, as JWT numeric dates are.
    """
    if token_type not in get_args(TokenType):
        raise ValueError("token_type must be 'access' or 'refresh'")
    if not subject:
        raise ValueError("subject must not be empty")
    if expires_in <= timedelta(0):
        raise ValueError("expires_in must be positive")
    extra = dict(extra or {})
    if clash := _RESERVED_CLAIMS.intersection(extra):
        raise ValueError(f"extra claims may not override registered claims: {sorted(clash)}")
    if token_type == "refresh" and family is None:  # noqa: S105 - a token kind
        family = uuid.uuid4().hex
    if family is not None and not family:
        raise ValueError("family must not be empty")

    issued_at = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    # JWT numeric dates are whole seconds: report exactly what is signed.
    expires_at = datetime.fromtimestamp(int((issued_at + expires_in).timestamp()), UTC)
    claims = TokenClaims(
        subject=subject,
        token_type=token_type,
        jti=uuid.uuid4().hex,
        issued_at=issued_at,
        not_before=issued_at,
        expires_at=expires_at,
        family=family,
        extra=MappingProxyType(extra),
    )
    payload: dict[str, object] = {
        **extra,
        "iss": ISSUER,
        "sub": claims.subject,
        "type": claims.token_type,
        "jti": claims.jti,
        "iat": int(claims.issued_at.timestamp()),
        "nbf": int(claims.not_before.timestamp()),
        "exp": int(claims.expires_at.timestamp()),
    }
    if family is not None:
        payload["fam"] = family
    return jwt.encode(payload, _check_secret(secret), algorithm=ALGORITHM), claims


def _numeric_date(payload: Mapping[str, object], name: str) -> datetime:
    value = payload[name]
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidTokenError(TokenErrorReason.INVALID_CLAIM, f"'{name}' must be an integer")
    return datetime.fromtimestamp(value, UTC)


def _string_claim(payload: Mapping[str, object], name: str) -> str:
    value = payload[name]
    if not isinstance(value, str) or not value:
        raise InvalidTokenError(
            TokenErrorReason.INVALID_CLAIM, f"'{name}' must be a non-empty string"
        )
    return value


def _verify(token: str, key: bytes, leeway: timedelta) -> dict[str, object]:
    """Signature, algorithm and time checks through PyJWT, mapped onto our reasons."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise InvalidTokenError(TokenErrorReason.MALFORMED, "not a JWT") from None
    if header.get("alg") != ALGORITHM:
        # Checked before PyJWT so 'none' and RS/ES/HS512 tokens get a reason of their own.
        raise InvalidTokenError(TokenErrorReason.BAD_ALGORITHM, f"only {ALGORITHM} is accepted")
    try:
        return jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            leeway=leeway,
            options={
                "require": list(_REQUIRED_CLAIMS),
                "verify_signature": True,
                "verify_exp": True,
                "verify_nbf": True,
                "verify_iat": True,
                "verify_iss": True,
                "verify_aud": False,
                "enforce_minimum_key_length": True,
            },
        )
    except jwt.ExpiredSignatureError:
        raise InvalidTokenError(TokenErrorReason.EXPIRED, "token has expired") from None
    except jwt.ImmatureSignatureError:
        raise InvalidTokenError(TokenErrorReason.NOT_YET_VALID, "token is not valid yet") from None
    except jwt.InvalidSignatureError:
        raise InvalidTokenError(TokenErrorReason.BAD_SIGNATURE, "signature mismatch") from None
    except jwt.InvalidAlgorithmError:
        raise InvalidTokenError(TokenErrorReason.BAD_ALGORITHM, "algorithm not allowed") from None
    except jwt.MissingRequiredClaimError as exc:
        raise InvalidTokenError(
            TokenErrorReason.MISSING_CLAIM, f"'{exc.claim}' claim is missing"
        ) from None
    except jwt.InvalidIssuerError:
        raise InvalidTokenError(TokenErrorReason.WRONG_ISSUER, "unexpected issuer") from None
    except jwt.DecodeError:
        raise InvalidTokenError(TokenErrorReason.MALFORMED, "token cannot be decoded") from None
    except jwt.PyJWTError:
        # Ill-typed iat/sub/jti and anything PyJWT adds later: refuse, never pass through.
        raise InvalidTokenError(TokenErrorReason.INVALID_CLAIM, "invalid claim") from None


def decode_token(
    token: str,
    *,
    secret: str,
    expected_type: TokenType,
    leeway: timedelta = timedelta(0),
) -> TokenClaims:
    """Verify a token and return its claims, or raise :class:`InvalidTokenError`.

    Checks, in order: shape, algorithm (HS256 only), signature, required claims, issuer, time
    (``exp``, ``nbf``, ``iat``, with ``leeway`` for clock skew), then ``type`` against
    ``expected_type`` and the types of ``jti``/``sub``/``fam``. Revocation is the caller's job.
    """
    key = _check_secret(secret)
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        raise InvalidTokenError(TokenErrorReason.MALFORMED, "not a JWT")
    payload = _verify(token, key, leeway)

    token_type = payload["type"]
    if token_type != expected_type:
        raise InvalidTokenError(
            TokenErrorReason.WRONG_TYPE, f"expected a token of type {expected_type!r}"
        )
    jti = _string_claim(payload, "jti")
    if not _JTI_RE.fullmatch(jti):
        raise InvalidTokenError(TokenErrorReason.INVALID_CLAIM, "'jti' is not a token id")
    family: str | None = None
    if payload.get("fam") is not None or expected_type == "refresh":
        if "fam" not in payload:
            raise InvalidTokenError(TokenErrorReason.MISSING_CLAIM, "'fam' claim is missing")
        family = _string_claim(payload, "fam")

    return TokenClaims(
        subject=_string_claim(payload, "sub"),
        token_type=expected_type,
        jti=jti,
        issued_at=_numeric_date(payload, "iat"),
        not_before=_numeric_date(payload, "nbf"),
        expires_at=_numeric_date(payload, "exp"),
        family=family,
        issuer=_string_claim(payload, "iss"),
        extra=MappingProxyType(
            {name: value for name, value in payload.items() if name not in _RESERVED_CLAIMS}
        ),
    )
