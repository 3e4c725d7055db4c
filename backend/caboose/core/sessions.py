"""Browser and CLI sessions: an access/refresh JWT pair per sign-in, rotated, revocable.

Each sign-in starts a *family*. Redis holds, per family, the id (jti) of the one refresh token that
may still be used. Refreshing rotates it; presenting an older refresh token of the family (a
replay: someone else has a copy) revokes the whole family, so the thief and the victim both have
to sign in again. Access tokens are short and carry the family: once the family is gone they stop
working too, without waiting for them to expire. Single tokens (logout) go into a blacklist of
jtis that lives exactly as long as the token would have.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta

from redis.asyncio import Redis

from caboose.core.errors import AuthenticationError
from caboose.core.jwt import (
    InvalidTokenError,
    TokenClaims,
    TokenType,
    create_token,
    decode_token,
)

_REVOKED = "caboose:jwt:revoked:"
_FAMILY = "caboose:jwt:family:"


@dataclass(frozen=True, slots=True)
class SessionTokens:
    access_token: str
    refresh_token: str
    access: TokenClaims
    refresh: TokenClaims

    @property
    def expires_in(self) -> int:
        return int((self.access.expires_at - self.access.issued_at).total_seconds())


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    secret: str
    access_ttl: timedelta
    refresh_ttl: timedelta


def _mint(policy: SessionPolicy, user_id: str, family: str | None) -> SessionTokens:
    refresh_token, refresh = create_token(
        user_id,
        token_type="refresh",  # noqa: S106 (a token kind, not a secret)
        secret=policy.secret,
        expires_in=policy.refresh_ttl,
        family=family,
    )
    access_token, access = create_token(
        user_id,
        token_type="access",  # noqa: S106 (a token kind, not a secret)
        secret=policy.secret,
        expires_in=policy.access_ttl,
        family=refresh.family,
    )
    return SessionTokens(access_token, refresh_token, access, refresh)


async def issue_session(redis: Redis, policy: SessionPolicy, user_id: str) -> SessionTokens:
    """A new token pair starting a new family (a sign-in)."""
    tokens = _mint(policy, user_id, None)
    assert tokens.refresh.family is not None
    await redis.set(_FAMILY + tokens.refresh.family, tokens.refresh.jti, ex=policy.refresh_ttl)
    return tokens


# Atomically: the family must exist and name the presented jti; then it names the new one and the
# presented one is revoked. A presented jti that is not current is a replay: the family ends.
_ROTATE = """
local current = redis.call('GET', KEYS[1])
if not current then return 0 end
if current ~= ARGV[1] then
  redis.call('DEL', KEYS[1])
  return -1
end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
redis.call('SET', KEYS[2], 'rotated', 'EX', ARGV[4])
return 1
"""


def _decode(token: str, policy: SessionPolicy, token_type: TokenType) -> TokenClaims:
    try:
        return decode_token(token, secret=policy.secret, expected_type=token_type)
    except InvalidTokenError as exc:
        raise AuthenticationError(f"Invalid {token_type} token: {exc.reason.value}") from exc


# Verified access tokens, by (secret, token): a token's bytes fix its claims, so a token seen
# before needs no new signature check, only the time checks (and, always, the revocation check).
_VERIFIED: dict[tuple[str, str], tuple[TokenClaims, float, float]] = {}
_VERIFIED_MAX = 4096


def decode_access_token(policy: SessionPolicy, token: str) -> TokenClaims:
    """:func:`decode_token` for an access token, remembering tokens already verified."""
    key = (policy.secret, token)
    now = time.time()
    cached = _VERIFIED.get(key)
    if cached is not None:
        claims, valid_from, valid_until = cached
        if valid_from <= now < valid_until:
            return claims
        del _VERIFIED[key]  # expired: decode again, for the precise error
    claims = _decode(token, policy, "access")
    if len(_VERIFIED) >= _VERIFIED_MAX:
        del _VERIFIED[next(iter(_VERIFIED))]
    # As PyJWT checks them: valid while nbf <= now < exp, and iat not in the future.
    valid_from = max(claims.not_before.timestamp(), claims.issued_at.timestamp())
    _VERIFIED[key] = (claims, valid_from, claims.expires_at.timestamp())
    return claims


async def check_not_revoked(redis: Redis, claims: TokenClaims, *also: str) -> list[str | None]:
    """Refuse an access token that was revoked or whose family ended. The values of the keys
    ``also`` are fetched in the same round trip and returned."""
    keys = [_REVOKED + claims.jti]
    if claims.family:
        keys.append(_FAMILY + claims.family)
    values = await redis.mget([*keys, *also])
    if values[0] is not None:
        raise AuthenticationError("This session has ended; sign in again")
    if claims.family and values[1] is None:
        raise AuthenticationError("This session has ended; sign in again")
    return [
        None if v is None else v if isinstance(v, str) else v.decode() for v in values[len(keys) :]
    ]


async def check_access_token(redis: Redis, policy: SessionPolicy, token: str) -> TokenClaims:
    """Decode an access token and check that neither it nor its family was revoked."""
    claims = decode_access_token(policy, token)
    await check_not_revoked(redis, claims)
    return claims


async def rotate_session(redis: Redis, policy: SessionPolicy, refresh_token: str) -> SessionTokens:
    """Trade a refresh token for a new pair. A replayed (already rotated) token ends the family."""
    claims = _decode(refresh_token, policy, "refresh")
    assert claims.family is not None
    tokens = _mint(policy, claims.subject, claims.family)
    outcome = await redis.eval(
        _ROTATE,
        2,
        _FAMILY + claims.family,
        _REVOKED + claims.jti,
        claims.jti,
        tokens.refresh.jti,
        int(policy.refresh_ttl.total_seconds()),
        _ttl(claims),
    )
    if int(outcome) == -1:
        raise AuthenticationError("This refresh token was already used; the session has ended")
    if int(outcome) != 1:
        raise AuthenticationError("This session has ended; sign in again")
    return tokens


def _ttl(claims: TokenClaims) -> int:
    return max(1, int(claims.remaining().total_seconds()) + 1)


async def revoke_token(redis: Redis, claims: TokenClaims) -> None:
    await redis.set(_REVOKED + claims.jti, "revoked", ex=_ttl(claims))


async def end_session(
    redis: Redis, policy: SessionPolicy, *, access: str | None, refresh: str | None
) -> None:
    """Logout: revoke what was presented and end its family. Invalid tokens are ignored."""
    presented: tuple[tuple[str | None, TokenType], ...] = ((access, "access"), (refresh, "refresh"))
    for token, token_type in presented:
        if not token:
            continue
        try:
            claims = decode_token(token, secret=policy.secret, expected_type=token_type)
        except InvalidTokenError:
            continue
        await revoke_token(redis, claims)
        if claims.family:
            await redis.delete(_FAMILY + claims.family)
