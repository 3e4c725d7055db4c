"""Password hashing (argon2id through pwdlib) and password rules.

* Hashes are argon2id with pwdlib's recommended parameters. :func:`verify_password` also says
  when a stored hash should be replaced (parameters raised since it was made), so hashes upgrade
  themselves at the next successful login.
* Passwords are NFKC-normalised before hashing, as NIST SP 800-63B asks: the same password typed
  on another keyboard or OS (composed vs decomposed accents, full-width digits) still verifies.
* Login must take as long for an unknown email as for a known one, or the response time tells an
  attacker which accounts exist. :func:`verify_dummy` spends one verification against
  :data:`DUMMY_HASH`, computed once at import so the first request is not the odd one out.
* The rules follow NIST SP 800-63B rather than composition rules: a minimum length, a maximum
  (argon2 work grows with input), and refusing what is trivially guessed (the email, a common
  password, one repeated character, a keyboard or number sequence) instead of demanding
  "one digit and one symbol", which only produces ``Password1!``.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Final

from pwdlib import PasswordHash
from pwdlib.exceptions import UnknownHashError

__all__ = [
    "DUMMY_HASH",
    "MAX_PASSWORD_BYTES",
    "MIN_PASSWORD_LENGTH",
    "PasswordCheck",
    "PasswordTooLongError",
    "hash_password",
    "validate_password_strength",
    "verify_dummy",
    "verify_password",
]

MIN_PASSWORD_LENGTH: Final = 10
"""Characters (code points, after normalisation)."""

MAX_PASSWORD_BYTES: Final = 256
"""UTF-8 bytes: a cap on the work one login request can ask argon2 to do."""

_password_hash: Final = PasswordHash.recommended()

DUMMY_HASH: Final[str] = _password_hash.hash("caboose-dummy-password-for-timing")
"""A real argon2 hash with the current parameters, verified when the account does not exist."""

# Short on purpose: the length rule already refuses shorter ones. Only passwords of at least
# MIN_PASSWORD_LENGTH characters matter; compared case-insensitively.
_COMMON_PASSWORDS: Final = frozenset(
    {
        "1234567890",
        "12345678910",
        "123456789a",
        "1q2w3e4r5t",
        "1qaz2wsx3edc",
        "abc1234567",
        "administrator",
        "letmein123",
        "iloveyou12",
        "password1!",
        "password12",
        "password123",
        "password1234",
        "passw0rd123",
        "qwerty1234",
        "qwerty12345",
        "qwertyuiop",
        "q1w2e3r4t5",
        "welcome123",
        "changeme123",
        "caboose123",
        "trustno1234",
    }
)

# Words that are the whole password once digits and symbols are stripped ("Password!!2024").
_GUESSABLE_WORDS: Final = frozenset(
    {"password", "passwort", "caboose", "admin", "qwerty", "letmein"}
)

_SEQUENCES: Final = (
    "abcdefghijklmnopqrstuvwxyz",
    "0123456789",
    "qwertyuiop",
    "asdfghjkl",
    "zxcvbnm",
    "qwertzuiop",
    "azertyuiop",
)


class PasswordTooLongError(ValueError):
    """A password over :data:`MAX_PASSWORD_BYTES` was given to :func:`hash_password`.

    :func:`validate_password_strength` reports this first; reaching it means validation was
    skipped. The message never contains the password.
    """


@dataclass(frozen=True, slots=True)
class PasswordCheck:
    """The outcome of :func:`verify_password`.

    ``new_hash`` is set when the password matched but the stored hash uses outdated parameters:
    store it in place of the old one.
    """

    is_valid: bool
    new_hash: str | None = None

    @property
    def needs_rehash(self) -> bool:
        return self.new_hash is not None

    def __bool__(self) -> bool:
        return self.is_valid


def _normalize(password: str) -> str:
    return unicodedata.normalize("NFKC", password)


def _is_too_long(password: str) -> bool:
    return len(password.encode("utf-8")) > MAX_PASSWORD_BYTES


def hash_password(password: str) -> str:
    """Hash a password for storage (argon2id, random salt, pwdlib's recommended parameters)."""
    password = _normalize(password)
    if _is_too_long(password):
        raise PasswordTooLongError(f"passwords are limited to {MAX_PASSWORD_BYTES} bytes")
    return _password_hash.hash(password)


def verify_password(password: str, password_hash: str) -> PasswordCheck:
    """Check a password against a stored hash, and say whether to store a fresh hash.

    Never raises for bad input: an over-long password or a stored value that is not a hash we
    know (an account with no password, a corrupt row) is simply "not valid" — after spending
    the same argon2 work, so the answer time does not reveal which case it was.
    """
    password = _normalize(password)
    if _is_too_long(password):
        verify_dummy()
        return PasswordCheck(is_valid=False)
    try:
        is_valid, new_hash = _password_hash.verify_and_update(password, password_hash)
    except UnknownHashError:
        verify_dummy()
        return PasswordCheck(is_valid=False)
    return PasswordCheck(is_valid=is_valid, new_hash=new_hash)


def verify_dummy(password: str = "caboose-not-the-dummy-password") -> None:  # noqa: S107
    """Spend one argon2 verification on nothing, for a login whose account does not exist.

    Pass the submitted password (truncated to the limit here) so the work matches a real check.
    """
    candidate = _normalize(password).encode("utf-8")[:MAX_PASSWORD_BYTES]
    _password_hash.verify(candidate, DUMMY_HASH)


def _is_sequence(text: str) -> bool:
    """Whether ``text`` is a run along a keyboard row or the alphabet/digits, either direction."""
    return any(text in seq or text in seq[::-1] for seq in _SEQUENCES)


def _character_classes(password: str) -> set[str]:
    classes: set[str] = set()
    for char in password:
        if char.isdigit():
            classes.add("digit")
        elif char.isalpha():
            classes.add("letter")
        elif char.isspace():
            classes.add("space")
        else:
            classes.add("symbol")
    return classes


def validate_password_strength(password: str, *, email: str) -> list[str]:
    """Return the problems with a new password, as sentences for the user (empty if fine).

    Never includes the password in a message.
    """
    problems: list[str] = []
    normalized = _normalize(password)
    lowered = normalized.casefold()

    if len(normalized) < MIN_PASSWORD_LENGTH:
        problems.append(f"Password must be at least {MIN_PASSWORD_LENGTH} characters long.")
    if _is_too_long(normalized):
        problems.append(f"Password must be at most {MAX_PASSWORD_BYTES} bytes long.")
    if any(unicodedata.category(char) == "Cc" for char in normalized):
        problems.append("Password must not contain control characters.")
    if normalized and normalized.strip() != normalized:
        # Leading/trailing spaces are almost always a paste accident the user cannot see.
        problems.append("Password must not start or end with a space.")

    email_lowered = email.strip().casefold()
    local_part = email_lowered.rpartition("@")[0] or email_lowered
    if email_lowered and (
        lowered in (email_lowered, local_part) or (len(local_part) >= 4 and local_part in lowered)
    ):
        problems.append("Password must not contain your email address.")

    letters_only = "".join(char for char in lowered if char.isalpha())
    if normalized and len(set(lowered)) == 1:
        problems.append("Password must not be a single repeated character.")
    elif _character_classes(normalized) == {"digit"}:
        problems.append("Password must not be only digits.")
    elif lowered in _COMMON_PASSWORDS or letters_only in _GUESSABLE_WORDS:
        problems.append("Password is too common; choose something less guessable.")
    elif len(lowered) >= 4 and _is_sequence(lowered):
        problems.append("Password must not be a keyboard or alphabet sequence.")
    return problems
