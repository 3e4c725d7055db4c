"""API tokens and keyed secret hashes."""

from __future__ import annotations

import base64
import re
import secrets

import pytest

from caboose.core.api_tokens import (
    API_TOKEN_PREFIX,
    generate_api_token,
    generate_secret,
    hash_api_token,
    hash_secret,
    looks_like_api_token,
    token_prefix,
    verify_api_token,
    verify_secret,
)

SECRET = secrets.token_bytes(32)


def test_token_format() -> None:
    token = generate_api_token()

    assert re.fullmatch(r"cb_[A-Za-z0-9_-]{43}", token)
    assert token.startswith(API_TOKEN_PREFIX)
    raw = base64.urlsafe_b64decode(token[3:] + "=")
    assert len(raw) == 32


def test_tokens_are_unique() -> None:
    assert len({generate_api_token() for _ in range(1000)}) == 1000


def test_looks_like_api_token() -> None:
    assert looks_like_api_token(generate_api_token())
    for value in (
        "",
        "cb_",
        "cb_short",
        generate_api_token() + "x",
        generate_api_token()[:-1],
        "CB_" + generate_api_token()[3:],
        "cb-" + generate_api_token()[3:],
        "cb_" + "a" * 42 + "=",
        "cb_" + "a" * 42 + "+",
        " " + generate_api_token(),
        generate_api_token() + "\n",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig",
        None,
    ):
        assert not looks_like_api_token(value)  # type: ignore[arg-type]


def test_token_prefix() -> None:
    token = generate_api_token()
    prefix = token_prefix(token)

    assert prefix == token[:9]
    assert prefix.startswith("cb_")
    with pytest.raises(ValueError, match="not an API token"):
        token_prefix("not-a-token")


def test_hash_is_hmac_sha256_hex_and_deterministic() -> None:
    token = generate_api_token()
    stored = hash_api_token(token, secret=SECRET)

    assert re.fullmatch(r"[0-9a-f]{64}", stored)
    assert token not in stored
    assert hash_api_token(token, secret=SECRET) == stored  # usable as a lookup index
    assert hash_api_token(generate_api_token(), secret=SECRET) != stored
    assert hash_api_token(token, secret=secrets.token_bytes(32)) != stored


def test_verify_api_token() -> None:
    token = generate_api_token()
    stored = hash_api_token(token, secret=SECRET)

    assert verify_api_token(token, stored, secret=SECRET)
    assert not verify_api_token(generate_api_token(), stored, secret=SECRET)
    assert not verify_api_token(token, stored, secret=secrets.token_bytes(32))
    assert not verify_api_token(
        token[:-1] + ("A" if token[-1] != "A" else "B"), stored, secret=SECRET
    )


@pytest.mark.parametrize("stored", ["", "00", "z" * 64, "é" * 64, "0" * 64])
def test_verify_with_malformed_stored_hash_is_false(stored: str) -> None:
    assert not verify_api_token(generate_api_token(), stored, secret=SECRET)


def test_malformed_tokens_never_verify() -> None:
    # Even if someone stored the hash of a malformed value, it does not authenticate.
    stored = hash_api_token("not-a-token", secret=SECRET)
    assert not verify_api_token("not-a-token", stored, secret=SECRET)


@pytest.mark.parametrize("secret", [b"", b"short", b"x" * 31])
def test_short_hashing_secrets_are_refused(secret: bytes) -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        hash_api_token(generate_api_token(), secret=secret)


def test_purposes_separate_hashes() -> None:
    value = generate_secret()
    invitation = hash_secret(value, secret=SECRET, purpose="invitation")

    assert invitation != hash_secret(value, secret=SECRET, purpose="webhook")
    assert invitation != hash_api_token(value, secret=SECRET)
    assert verify_secret(value, invitation, secret=SECRET, purpose="invitation")
    assert not verify_secret(value, invitation, secret=SECRET, purpose="webhook")
    with pytest.raises(ValueError, match="purpose"):
        hash_secret(value, secret=SECRET, purpose="")
    with pytest.raises(ValueError, match="purpose"):
        hash_secret(value, secret=SECRET, purpose="a\x00b")


def test_generate_secret() -> None:
    value = generate_secret()
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", value)
    assert len(generate_secret(48)) == 64
    assert generate_secret() != generate_secret()
    with pytest.raises(ValueError, match="at least 16"):
        generate_secret(8)
