"""Session JWTs: round trip, and every way a forged or stale token must be refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from caboose.core.jwt import (
    InvalidTokenError,
    TokenClaims,
    TokenErrorReason,
    create_token,
    decode_token,
)

SECRET = "s3cret-for-tests-" + "0123456789abcdef" * 4  # long enough for HS512 too
OTHER_SECRET = "another-secret-for-tests-0123456789abcdef"
USER_ID = "0b7c6f1e-5a53-4c1e-9d59-2f0f2d3c1a10"
FIFTEEN_MINUTES = timedelta(minutes=15)


def _b64(data: dict[str, Any] | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(datetime.now(UTC).timestamp())
    claims: dict[str, Any] = {
        "iss": "caboose",
        "sub": USER_ID,
        "type": "access",
        "jti": "0123456789abcdef0123456789abcdef",
        "iat": now,
        "nbf": now,
        "exp": now + 900,
    }
    claims.update(overrides)
    return {name: value for name, value in claims.items() if value is not None}


def _sign(payload: dict[str, Any], *, secret: str = SECRET, algorithm: str = "HS256") -> str:
    return pyjwt.encode(payload, secret, algorithm=algorithm)


def _refused(token: str, reason: TokenErrorReason, *, expected: str = "access") -> None:
    with pytest.raises(InvalidTokenError) as caught:
        decode_token(token, secret=SECRET, expected_type=expected)  # type: ignore[arg-type]
    assert caught.value.reason is reason, str(caught.value)
    assert token not in str(caught.value)


# --- issuing ----------------------------------------------------------------------------------


def test_access_token_round_trip() -> None:
    token, claims = create_token(
        USER_ID, token_type="access", secret=SECRET, expires_in=FIFTEEN_MINUTES
    )

    decoded = decode_token(token, secret=SECRET, expected_type="access")

    assert decoded == claims
    assert decoded.subject == USER_ID
    assert decoded.token_type == "access"
    assert decoded.issuer == "caboose"
    assert decoded.family is None
    assert len(decoded.jti) == 32
    assert decoded.not_before == decoded.issued_at
    assert decoded.expires_at - decoded.issued_at == FIFTEEN_MINUTES
    assert decoded.issued_at.tzinfo is not None


def test_payload_has_the_documented_claims() -> None:
    token, _ = create_token(
        USER_ID, token_type="refresh", secret=SECRET, expires_in=timedelta(days=7)
    )
    header = pyjwt.get_unverified_header(token)
    payload = pyjwt.decode(token, options={"verify_signature": False})

    assert header["alg"] == "HS256"
    assert set(payload) == {"iss", "sub", "type", "jti", "iat", "nbf", "exp", "fam"}
    assert all(isinstance(payload[name], int) for name in ("iat", "nbf", "exp"))


def test_refresh_tokens_start_or_continue_a_family() -> None:
    _, first = create_token(
        USER_ID, token_type="refresh", secret=SECRET, expires_in=timedelta(days=7)
    )
    token, rotated = create_token(
        USER_ID,
        token_type="refresh",
        secret=SECRET,
        expires_in=timedelta(days=7),
        family=first.family,
    )
    _, other_login = create_token(
        USER_ID, token_type="refresh", secret=SECRET, expires_in=timedelta(days=7)
    )

    assert first.family
    assert rotated.family == first.family
    assert rotated.jti != first.jti
    assert other_login.family != first.family
    assert decode_token(token, secret=SECRET, expected_type="refresh").family == first.family


def test_access_token_may_carry_a_family() -> None:
    token, _ = create_token(
        USER_ID, token_type="access", secret=SECRET, expires_in=FIFTEEN_MINUTES, family="f" * 32
    )
    assert decode_token(token, secret=SECRET, expected_type="access").family == "f" * 32


def test_jti_is_unique() -> None:
    jtis = {
        create_token(USER_ID, token_type="access", secret=SECRET, expires_in=FIFTEEN_MINUTES)[1].jti
        for _ in range(200)
    }
    assert len(jtis) == 200


def test_extra_claims() -> None:
    token, claims = create_token(
        USER_ID,
        token_type="access",
        secret=SECRET,
        expires_in=FIFTEEN_MINUTES,
        extra={"ws": "abc", "n": 3},
    )
    decoded = decode_token(token, secret=SECRET, expected_type="access")
    assert dict(decoded.extra) == {"ws": "abc", "n": 3} == dict(claims.extra)
    with pytest.raises(TypeError):
        decoded.extra["ws"] = "other"  # type: ignore[index]
    hash(decoded)  # frozen and hashable despite the mapping


@pytest.mark.parametrize("claim", ["sub", "type", "jti", "exp", "iss", "fam", "nbf", "iat"])
def test_extra_claims_cannot_override_registered_ones(claim: str) -> None:
    with pytest.raises(ValueError, match="registered claims"):
        create_token(
            USER_ID,
            token_type="access",
            secret=SECRET,
            expires_in=FIFTEEN_MINUTES,
            extra={claim: "x"},
        )


def test_bad_arguments_to_create_token() -> None:
    with pytest.raises(ValueError, match="positive"):
        create_token(USER_ID, token_type="access", secret=SECRET, expires_in=timedelta(0))
    with pytest.raises(ValueError, match="subject"):
        create_token("", token_type="access", secret=SECRET, expires_in=FIFTEEN_MINUTES)
    with pytest.raises(ValueError, match="token_type"):
        create_token(USER_ID, token_type="id", secret=SECRET, expires_in=FIFTEEN_MINUTES)  # type: ignore[arg-type]


@pytest.mark.parametrize("secret", ["", "short", "x" * 31])
def test_short_secrets_are_refused(secret: str) -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        create_token(USER_ID, token_type="access", secret=secret, expires_in=FIFTEEN_MINUTES)
    with pytest.raises(ValueError, match="at least 32 bytes"):
        decode_token("a.b.c", secret=secret, expected_type="access")


def test_remaining() -> None:
    _, claims = create_token(
        USER_ID, token_type="access", secret=SECRET, expires_in=FIFTEEN_MINUTES
    )
    assert claims.remaining(now=claims.issued_at) == FIFTEEN_MINUTES
    assert claims.remaining(now=claims.expires_at + timedelta(hours=1)) == timedelta(0)


# --- forgery ----------------------------------------------------------------------------------


def test_token_signed_with_another_secret() -> None:
    token, _ = create_token(
        USER_ID, token_type="access", secret=OTHER_SECRET, expires_in=FIFTEEN_MINUTES
    )
    _refused(token, TokenErrorReason.BAD_SIGNATURE)


def test_payload_changed_under_a_valid_signature() -> None:
    token, _ = create_token(USER_ID, token_type="access", secret=SECRET, expires_in=FIFTEEN_MINUTES)
    header, _, signature = token.split(".")
    forged = f"{header}.{_b64(_claims(sub='someone-else'))}.{signature}"
    _refused(forged, TokenErrorReason.BAD_SIGNATURE)


def test_signature_changed() -> None:
    token, _ = create_token(USER_ID, token_type="access", secret=SECRET, expires_in=FIFTEEN_MINUTES)
    head, _, signature = token.rpartition(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    _refused(f"{head}.{flipped}", TokenErrorReason.BAD_SIGNATURE)
    _refused(f"{head}.", TokenErrorReason.BAD_SIGNATURE)


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
def test_alg_none_token_crafted_by_hand(alg: str) -> None:
    header = _b64({"alg": alg, "typ": "JWT"})
    payload = _b64(_claims())
    for signature in ("", _b64(b"anything")):
        _refused(f"{header}.{payload}.{signature}", TokenErrorReason.BAD_ALGORITHM)


def test_missing_alg_header() -> None:
    _refused(f"{_b64({'typ': 'JWT'})}.{_b64(_claims())}.", TokenErrorReason.BAD_ALGORITHM)


@pytest.mark.parametrize("alg", ["HS384", "HS512"])
def test_other_hmac_algorithms_with_the_right_secret(alg: str) -> None:
    _refused(_sign(_claims(), algorithm=alg), TokenErrorReason.BAD_ALGORITHM)


def test_rs256_and_key_confusion() -> None:
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    # A genuine RS256 token: the algorithm itself is refused.
    _refused(
        pyjwt.encode(_claims(), private_key, algorithm="RS256"), TokenErrorReason.BAD_ALGORITHM
    )
    # The classic confusion: HS256 "signed" with a public key as the HMAC secret.
    header = _b64({"alg": "HS256", "typ": "JWT"})
    payload = _b64(_claims())
    signature = hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    _refused(f"{header}.{payload}.{_b64(signature)}", TokenErrorReason.BAD_SIGNATURE)


# --- time -------------------------------------------------------------------------------------


def test_expired() -> None:
    token, _ = create_token(
        USER_ID,
        token_type="access",
        secret=SECRET,
        expires_in=FIFTEEN_MINUTES,
        now=datetime.now(UTC) - timedelta(minutes=16),
    )
    _refused(token, TokenErrorReason.EXPIRED)


def test_leeway_tolerates_small_skew() -> None:
    token = _sign(_claims(exp=int(datetime.now(UTC).timestamp()) - 2))
    _refused(token, TokenErrorReason.EXPIRED)
    assert decode_token(token, secret=SECRET, expected_type="access", leeway=timedelta(seconds=30))


def test_not_yet_valid() -> None:
    later = int(datetime.now(UTC).timestamp()) + 3600
    _refused(_sign(_claims(nbf=later)), TokenErrorReason.NOT_YET_VALID)
    _refused(_sign(_claims(iat=later, nbf=later)), TokenErrorReason.NOT_YET_VALID)
    token, _ = create_token(
        USER_ID,
        token_type="access",
        secret=SECRET,
        expires_in=FIFTEEN_MINUTES,
        now=datetime.now(UTC) + timedelta(minutes=5),
    )
    _refused(token, TokenErrorReason.NOT_YET_VALID)


# --- claims -----------------------------------------------------------------------------------


def test_wrong_type_both_ways() -> None:
    access, _ = create_token(
        USER_ID, token_type="access", secret=SECRET, expires_in=FIFTEEN_MINUTES
    )
    refresh, _ = create_token(
        USER_ID, token_type="refresh", secret=SECRET, expires_in=timedelta(days=7)
    )
    _refused(access, TokenErrorReason.WRONG_TYPE, expected="refresh")
    _refused(refresh, TokenErrorReason.WRONG_TYPE, expected="access")
    _refused(_sign(_claims(type="id")), TokenErrorReason.WRONG_TYPE)


@pytest.mark.parametrize("claim", ["sub", "type", "jti", "iat", "nbf", "exp", "iss"])
def test_missing_claim(claim: str) -> None:
    payload = _claims()
    del payload[claim]
    _refused(_sign(payload), TokenErrorReason.MISSING_CLAIM)


def test_missing_jti_names_it() -> None:
    payload = _claims()
    del payload["jti"]
    with pytest.raises(InvalidTokenError, match="'jti'"):
        decode_token(_sign(payload), secret=SECRET, expected_type="access")


def test_refresh_without_family() -> None:
    _refused(_sign(_claims(type="refresh")), TokenErrorReason.MISSING_CLAIM, expected="refresh")


@pytest.mark.parametrize("issuer", ["someone-else", "Caboose", ""])
def test_wrong_issuer(issuer: str) -> None:
    _refused(_sign(_claims(iss=issuer)), TokenErrorReason.WRONG_ISSUER)


@pytest.mark.parametrize(
    "overrides",
    [
        {"jti": "not-hex"},
        {"jti": 12345},
        {"jti": ""},
        {"sub": 42},
        {"sub": ""},
        {"fam": 7},
        {"fam": ""},
        {"iat": "yesterday"},
        {"exp": True},  # PyJWT reads it as 1: refused as expired, which is as good
        {"exp": 10**12 + 0.5},
    ],
)
def test_ill_typed_claims(overrides: dict[str, Any]) -> None:
    with pytest.raises(InvalidTokenError) as caught:
        decode_token(_sign(_claims(**overrides)), secret=SECRET, expected_type="access")
    assert caught.value.reason in {
        TokenErrorReason.INVALID_CLAIM,
        TokenErrorReason.MALFORMED,
        TokenErrorReason.EXPIRED,
    }


@pytest.mark.parametrize(
    "token",
    [
        "",
        "abc",
        "a.b",
        "a.b.c",
        "....",
        f"{_b64({'alg': 'HS256'})}.not-json.",
        f"{_b64(b'not json')}.{_b64(_claims())}.",
        f"{_b64({'alg': 'HS256'})}.{_b64(b'[1, 2]')}.",
        "x" * 10_000,
    ],
)
def test_malformed_tokens(token: str) -> None:
    with pytest.raises(InvalidTokenError) as caught:
        decode_token(token, secret=SECRET, expected_type="access")
    assert caught.value.reason in {TokenErrorReason.MALFORMED, TokenErrorReason.BAD_SIGNATURE}


def test_hand_signed_valid_token_is_accepted() -> None:
    claims = decode_token(_sign(_claims(extra_claim="kept")), secret=SECRET, expected_type="access")
    assert isinstance(claims, TokenClaims)
    assert claims.extra == {"extra_claim": "kept"}


def test_error_carries_reason_and_detail() -> None:
    error = InvalidTokenError(TokenErrorReason.EXPIRED, "token has expired")
    assert error.reason is TokenErrorReason.EXPIRED
    assert str(error) == "expired: token has expired"
    assert TokenErrorReason.EXPIRED.value == "expired"
