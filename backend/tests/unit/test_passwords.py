"""Password hashing, rehash on login, the unknown-account path, and password rules."""

from __future__ import annotations

import pytest
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from caboose.core.passwords import (
    DUMMY_HASH,
    MAX_PASSWORD_BYTES,
    PasswordCheck,
    PasswordTooLongError,
    hash_password,
    validate_password_strength,
    verify_dummy,
    verify_password,
)

GOOD = "correct horse battery staple"
EMAIL = "ada.lovelace@example.com"


def test_hash_and_verify() -> None:
    stored = hash_password(GOOD)

    assert stored.startswith("$argon2id$")
    assert GOOD not in stored
    check = verify_password(GOOD, stored)
    assert check == PasswordCheck(is_valid=True, new_hash=None)
    assert check
    assert not check.needs_rehash


def test_salted_hashes_differ() -> None:
    assert hash_password(GOOD) != hash_password(GOOD)


@pytest.mark.parametrize("attempt", ["correct horse battery stapl", GOOD.upper(), GOOD + " ", ""])
def test_wrong_password(attempt: str) -> None:
    check = verify_password(attempt, hash_password(GOOD))
    assert not check
    assert check.new_hash is None


def test_outdated_hash_asks_for_a_rehash() -> None:
    weak = PasswordHash((Argon2Hasher(time_cost=1, memory_cost=8 * 1024),)).hash(GOOD)

    check = verify_password(GOOD, weak)

    assert check.is_valid
    assert check.needs_rehash
    assert check.new_hash is not None
    assert check.new_hash != weak
    assert verify_password(GOOD, check.new_hash) == PasswordCheck(is_valid=True)
    # A wrong password never produces a new hash.
    assert verify_password("not the password!", weak) == PasswordCheck(is_valid=False)


@pytest.mark.parametrize("stored", ["", "not-a-hash", "$2b$12$abcdefghijklmnopqrstuv", "!"])
def test_unknown_stored_value_is_invalid_not_an_error(stored: str) -> None:
    assert verify_password(GOOD, stored) == PasswordCheck(is_valid=False)


def test_unicode_is_normalised() -> None:
    composed, decomposed = "caf\u00e9 au lait s'il vous plait", "cafe\u0301 au lait s'il vous plait"
    assert composed != decomposed
    assert verify_password(decomposed, hash_password(composed)).is_valid


def test_over_long_passwords() -> None:
    too_long = "a" * (MAX_PASSWORD_BYTES + 1)
    with pytest.raises(PasswordTooLongError) as caught:
        hash_password(too_long)
    assert too_long not in str(caught.value)
    # Multi-byte characters count in bytes.
    with pytest.raises(PasswordTooLongError):
        hash_password("é" * (MAX_PASSWORD_BYTES // 2 + 1))
    assert not verify_password(too_long, hash_password(GOOD))
    assert hash_password("b" * MAX_PASSWORD_BYTES)


def test_dummy_hash_is_a_real_hash_that_nothing_common_matches() -> None:
    assert DUMMY_HASH.startswith("$argon2id$")
    assert not verify_password("", DUMMY_HASH)
    assert not verify_password(GOOD, DUMMY_HASH)


@pytest.mark.parametrize("password", [GOOD, "", "x" * 10_000, "\u00e9" * 300])
def test_verify_dummy_accepts_anything(password: str) -> None:
    verify_dummy(password)
    verify_dummy()


# --- rules ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "password",
    [
        GOOD,
        "Tr0ub4dor&3xyz",
        "ünïcødé-pässwörd",
        "a reasonably long passphrase with spaces",
        "letters only but long enough",
    ],
)
def test_good_passwords_pass(password: str) -> None:
    assert validate_password_strength(password, email=EMAIL) == []


def _problems(password: str, email: str = EMAIL) -> str:
    return " ".join(validate_password_strength(password, email=email))


@pytest.mark.parametrize(
    ("password", "fragment"),
    [
        ("short1!", "at least 10 characters"),
        ("", "at least 10 characters"),
        ("é" * 129, "at most 256 bytes"),
        ("a" * 257, "at most 256 bytes"),
        ("ada.lovelace", "email"),
        ("ADA.LOVELACE@example.com", "email"),
        ("my-ada.lovelace-pass", "email"),
        ("aaaaaaaaaaaa", "single repeated character"),
        ("            ", "single repeated character"),
        ("31415926535", "only digits"),
        ("password123", "too common"),
        ("Password!!2024", "too common"),
        ("CABOOSE-2025!", "too common"),
        ("qwertyuiop", "too common"),
        ("abcdefghijkl", "sequence"),
        ("zyxwvutsrqpo", "sequence"),
        ("poiuytrewq", "sequence"),
        (" leading space here", "space"),
        ("tab\tinside password", "control characters"),
    ],
)
def test_weak_passwords_are_reported(password: str, fragment: str) -> None:
    problems = validate_password_strength(password, email=EMAIL)
    assert problems
    assert fragment in " ".join(problems)


def test_messages_never_contain_the_password() -> None:
    for password in ("hunter2-x", "ada.lovelace", "password123", "a" * 300):
        for problem in validate_password_strength(password, email=EMAIL):
            assert password not in problem


def test_short_local_parts_are_only_refused_whole() -> None:
    assert _problems("bob-has-a-long-passphrase", email="bob@example.com") == ""
    assert "email" in _problems("bobbobbobbob", email="bobbobbobbob@example.com")
