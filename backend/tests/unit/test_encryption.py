"""Envelope encryption: round trip, tamper, wrong row, wrong key, rotation, master key storage."""

from __future__ import annotations

import base64
import os
import re
import secrets
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from caboose.core.encryption import (
    ENVELOPE_PREFIX,
    OAUTH_TOKENS_INFO,
    VARIABLES_INFO,
    DecryptionError,
    Keyring,
    MasterKeyError,
    derive_key,
    envelope_key_id,
    is_envelope,
    key_id_for,
    load_or_create_key_file,
    parse_master_key,
)

AAD = "variable:0b7c6f1e-5a53-4c1e-9d59-2f0f2d3c1a10:DATABASE_URL"
SECRET = "postgres://app:hunter2-very-secret@db/app"
ENVELOPE_RE = re.compile(r"encrypted:v1:[0-9a-f]{8}:[A-Za-z0-9_-]+")


@pytest.fixture
def master() -> bytes:
    return secrets.token_bytes(32)


@pytest.fixture
def keyring(master: bytes) -> Keyring:
    return Keyring.from_master_keys(master, info=VARIABLES_INFO)


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _split(envelope: str) -> tuple[str, str, bytes]:
    head, key_id, body = envelope.rsplit(":", 2)
    return head, key_id, _unb64url(body)


# --- round trip -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "plaintext", ["", "x", SECRET, "ünïcødé ✓ 🔑", "line1\nline2\x00nul", "A" * 100_000]
)
def test_round_trip(keyring: Keyring, plaintext: str) -> None:
    envelope = keyring.encrypt(plaintext, aad=AAD)

    assert ENVELOPE_RE.fullmatch(envelope)
    assert envelope.startswith(f"{ENVELOPE_PREFIX}{keyring.current_key_id}:")
    assert keyring.decrypt(envelope, aad=AAD) == plaintext


def test_envelope_never_contains_plaintext(keyring: Keyring) -> None:
    envelope = keyring.encrypt(SECRET, aad=AAD)
    assert "hunter2" not in envelope
    assert b"hunter2" not in _split(envelope)[2]


def test_fresh_nonce_every_time(keyring: Keyring) -> None:
    envelopes = [keyring.encrypt(SECRET, aad=AAD) for _ in range(50)]
    nonces = {_split(envelope)[2][:12] for envelope in envelopes}

    assert len(set(envelopes)) == 50
    assert len(nonces) == 50
    assert all(keyring.decrypt(envelope, aad=AAD) == SECRET for envelope in envelopes)


def test_layout_is_nonce_ciphertext_tag(keyring: Keyring) -> None:
    raw = _split(keyring.encrypt("abc", aad=AAD))[2]
    assert len(raw) == 12 + 3 + 16


# --- tampering --------------------------------------------------------------------------------


def test_flipping_any_byte_of_nonce_ciphertext_or_tag_fails(keyring: Keyring) -> None:
    envelope = keyring.encrypt(SECRET, aad=AAD)
    head, key_id, raw = _split(envelope)
    for index in range(len(raw)):
        for bit in (0x01, 0x80):
            forged = bytearray(raw)
            forged[index] ^= bit
            with pytest.raises(DecryptionError, match="authentication failed"):
                keyring.decrypt(f"{head}:{key_id}:{_b64url(bytes(forged))}", aad=AAD)


def test_changing_any_character_of_the_envelope_fails(keyring: Keyring) -> None:
    envelope = keyring.encrypt("short", aad=AAD)
    for index, char in enumerate(envelope):
        for replacement in {"A", "b", "0", "-", ":", "_"} - {char}:
            forged = envelope[:index] + replacement + envelope[index + 1 :]
            with pytest.raises(DecryptionError):
                keyring.decrypt(forged, aad=AAD)


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda e: e[:-1], id="truncated-by-one"),
        pytest.param(lambda e: e[: len(ENVELOPE_PREFIX) + 9 + 20], id="truncated-short"),
        pytest.param(lambda e: e + "A", id="appended"),
        pytest.param(lambda e: e + "=", id="padding"),
        pytest.param(lambda e: e + "\n", id="newline"),
        pytest.param(lambda e: " " + e, id="leading-space"),
        pytest.param(lambda e: e.replace("encrypted:v1:", "encrypted:v2:"), id="version"),
        pytest.param(lambda e: e.replace("encrypted:", "Encrypted:"), id="prefix-case"),
        pytest.param(lambda e: e.rsplit(":", 1)[0], id="no-data"),
        pytest.param(lambda e: e.rsplit(":", 1)[0] + ":", id="empty-data"),
        pytest.param(lambda e: e.rsplit(":", 1)[1], id="data-only"),
        pytest.param(lambda e: e.replace(":", "::", 3), id="extra-colons"),
    ],
)
def test_malformed_envelopes_fail(keyring: Keyring, mutate: Callable[[str], str]) -> None:
    envelope = keyring.encrypt(SECRET, aad=AAD)
    forged = mutate(envelope)
    with pytest.raises(DecryptionError):
        keyring.decrypt(forged, aad=AAD)


def test_non_canonical_base64_is_refused(keyring: Keyring) -> None:
    # 31 raw bytes -> 42 base64 characters, the last carrying 4 unused bits. Setting them gives
    # a different string that lenient decoders map to the same bytes: it must not be accepted.
    envelope = keyring.encrypt("abc", aad=AAD)
    head, key_id, raw = _split(envelope)
    body = _b64url(raw)
    assert len(body) % 4 == 2
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(body[-1])
    sibling = body[:-1] + alphabet[last | 0b1111]
    assert sibling != body
    assert _unb64url(sibling) == raw
    with pytest.raises(DecryptionError, match="malformed"):
        keyring.decrypt(f"{head}:{key_id}:{sibling}", aad=AAD)


@pytest.mark.parametrize("value", [None, 42, b"encrypted:v1:", "", "plain text"])
def test_non_envelopes_fail(keyring: Keyring, value: object) -> None:
    with pytest.raises(DecryptionError, match="malformed"):
        keyring.decrypt(value, aad=AAD)  # type: ignore[arg-type]


# --- associated data: the row binding ---------------------------------------------------------


@pytest.mark.parametrize(
    "other_aad",
    [
        "variable:0b7c6f1e-5a53-4c1e-9d59-2f0f2d3c1a11:DATABASE_URL",  # another row
        "variable:0b7c6f1e-5a53-4c1e-9d59-2f0f2d3c1a10:REDIS_URL",  # another key
        "oauth:0b7c6f1e-5a53-4c1e-9d59-2f0f2d3c1a10:DATABASE_URL",  # another table
        AAD + " ",
        AAD.upper(),
    ],
)
def test_wrong_associated_data_fails(keyring: Keyring, other_aad: str) -> None:
    envelope = keyring.encrypt(SECRET, aad=AAD)
    with pytest.raises(DecryptionError, match="authentication failed"):
        keyring.decrypt(envelope, aad=other_aad)


def test_empty_associated_data_is_a_programming_error(keyring: Keyring) -> None:
    with pytest.raises(ValueError, match="aad"):
        keyring.encrypt(SECRET, aad="")
    envelope = keyring.encrypt(SECRET, aad=AAD)
    with pytest.raises(ValueError, match="aad"):
        keyring.decrypt(envelope, aad="")


# --- keys -------------------------------------------------------------------------------------


def test_wrong_key_with_the_same_key_id_fails(keyring: Keyring) -> None:
    envelope = keyring.encrypt(SECRET, aad=AAD)
    impostor = Keyring(
        {keyring.current_key_id: secrets.token_bytes(32)}, current_key_id=keyring.current_key_id
    )
    with pytest.raises(DecryptionError, match="authentication failed"):
        impostor.decrypt(envelope, aad=AAD)


def test_unknown_key_id_fails(keyring: Keyring) -> None:
    envelope = keyring.encrypt(SECRET, aad=AAD)
    other = Keyring.from_master_keys(secrets.token_bytes(32), info=VARIABLES_INFO)
    with pytest.raises(DecryptionError, match="unknown key id"):
        other.decrypt(envelope, aad=AAD)


def test_purposes_have_independent_keys(master: bytes) -> None:
    variables = Keyring.from_master_keys(master, info=VARIABLES_INFO)
    oauth = Keyring.from_master_keys(master, info=OAUTH_TOKENS_INFO)
    envelope = variables.encrypt(SECRET, aad=AAD)

    assert variables.current_key_id == oauth.current_key_id  # one id per master key
    assert derive_key(master, info=VARIABLES_INFO) != derive_key(master, info=OAUTH_TOKENS_INFO)
    assert derive_key(master, info=VARIABLES_INFO) != master
    with pytest.raises(DecryptionError, match="authentication failed"):
        oauth.decrypt(envelope, aad=AAD)


def test_key_id_is_stable_across_restarts(master: bytes) -> None:
    first = Keyring.from_master_keys(master, info=VARIABLES_INFO)
    envelope = first.encrypt(SECRET, aad=AAD)
    second = Keyring.from_master_keys(bytes(master), info=VARIABLES_INFO)

    assert re.fullmatch(r"[0-9a-f]{8}", key_id_for(master))
    assert first.current_key_id == second.current_key_id == key_id_for(master)
    assert key_id_for(master) != key_id_for(secrets.token_bytes(32))
    assert second.decrypt(envelope, aad=AAD) == SECRET


def test_key_id_does_not_reveal_the_key(master: bytes) -> None:
    assert key_id_for(master) not in master.hex()
    assert key_id_for(master) not in derive_key(master, info=VARIABLES_INFO).hex()


@pytest.mark.parametrize("bad", [b"", b"x" * 31, b"x" * 33])
def test_master_keys_must_be_32_bytes(bad: bytes) -> None:
    with pytest.raises(MasterKeyError):
        Keyring.from_master_keys(bad, info=VARIABLES_INFO)


def test_keyring_constructor_validates(master: bytes) -> None:
    key = derive_key(master, info=VARIABLES_INFO)
    with pytest.raises(ValueError, match="current key id"):
        Keyring({"aaaaaaaa": key}, current_key_id="bbbbbbbb")
    with pytest.raises(ValueError, match="hex"):
        Keyring({"not-hex!": key}, current_key_id="not-hex!")
    with pytest.raises(ValueError, match="32 bytes"):
        Keyring({"aaaaaaaa": key[:16]}, current_key_id="aaaaaaaa")
    with pytest.raises(ValueError, match="info"):
        derive_key(master, info=b"")


def test_repr_shows_key_ids_not_keys(master: bytes, keyring: Keyring) -> None:
    text = repr(keyring)
    assert keyring.current_key_id in text
    assert master.hex() not in text
    assert derive_key(master, info=VARIABLES_INFO).hex() not in text
    assert str(derive_key(master, info=VARIABLES_INFO)) not in text


def test_error_messages_never_contain_plaintext_or_aad(keyring: Keyring) -> None:
    envelope = keyring.encrypt(SECRET, aad=AAD)
    errors: list[DecryptionError] = []
    attempts: list[Callable[[], str]] = [
        lambda: keyring.decrypt(envelope, aad=AAD + "x"),
        lambda: keyring.decrypt(envelope[:-2], aad=AAD),
        lambda: keyring.decrypt(SECRET, aad=AAD),
        lambda: Keyring.from_master_keys(secrets.token_bytes(32), info=VARIABLES_INFO).decrypt(
            envelope, aad=AAD
        ),
    ]
    for attempt in attempts:
        with pytest.raises(DecryptionError) as caught:
            attempt()
        errors.append(caught.value)
    for error in errors:
        assert "hunter2" not in str(error)
        assert AAD not in str(error)
        assert error.__cause__ is None


# --- rotation ---------------------------------------------------------------------------------


def test_rotation_reads_old_and_writes_new() -> None:
    old_master, new_master = secrets.token_bytes(32), secrets.token_bytes(32)
    old = Keyring.from_master_keys(old_master, info=VARIABLES_INFO)
    old_envelope = old.encrypt(SECRET, aad=AAD)

    rotating = Keyring.from_master_keys(new_master, previous=[old_master], info=VARIABLES_INFO)
    assert rotating.current_key_id == key_id_for(new_master)
    assert rotating.key_ids == {key_id_for(old_master), key_id_for(new_master)}
    assert rotating.decrypt(old_envelope, aad=AAD) == SECRET
    assert rotating.needs_rotation(old_envelope)

    new_envelope = rotating.reencrypt(old_envelope, aad=AAD)
    assert envelope_key_id(new_envelope) == key_id_for(new_master)
    assert not rotating.needs_rotation(new_envelope)
    assert rotating.decrypt(new_envelope, aad=AAD) == SECRET

    # Once everything is rotated the old key can go.
    new_only = Keyring.from_master_keys(new_master, info=VARIABLES_INFO)
    assert new_only.decrypt(new_envelope, aad=AAD) == SECRET
    with pytest.raises(DecryptionError, match="unknown key id"):
        new_only.decrypt(old_envelope, aad=AAD)
    # New values are always sealed with the current key.
    assert envelope_key_id(rotating.encrypt("fresh", aad=AAD)) == key_id_for(new_master)


def test_reencrypt_keeps_the_row_binding() -> None:
    old_master, new_master = secrets.token_bytes(32), secrets.token_bytes(32)
    old_envelope = Keyring.from_master_keys(old_master, info=VARIABLES_INFO).encrypt(
        SECRET, aad=AAD
    )
    rotating = Keyring.from_master_keys(new_master, previous=[old_master], info=VARIABLES_INFO)

    with pytest.raises(DecryptionError):
        rotating.reencrypt(old_envelope, aad=AAD + "-other-row")
    new_envelope = rotating.reencrypt(old_envelope, aad=AAD)
    with pytest.raises(DecryptionError):
        rotating.decrypt(new_envelope, aad=AAD + "-other-row")


def test_reencrypt_of_current_envelope_is_a_no_op_but_still_verified(keyring: Keyring) -> None:
    envelope = keyring.encrypt(SECRET, aad=AAD)
    assert not keyring.needs_rotation(envelope)
    assert keyring.reencrypt(envelope, aad=AAD) == envelope

    head, key_id, raw = _split(envelope)
    forged = f"{head}:{key_id}:{_b64url(raw[:-1] + bytes([raw[-1] ^ 1]))}"
    with pytest.raises(DecryptionError):
        keyring.reencrypt(forged, aad=AAD)


def test_needs_rotation_refuses_non_envelopes(keyring: Keyring) -> None:
    with pytest.raises(DecryptionError):
        keyring.needs_rotation("plaintext-value")


def test_duplicate_master_keys_are_harmless(master: bytes) -> None:
    ring = Keyring.from_master_keys(master, previous=[master, master], info=VARIABLES_INFO)
    assert ring.key_ids == {key_id_for(master)}


def test_is_envelope(keyring: Keyring) -> None:
    envelope = keyring.encrypt(SECRET, aad=AAD)
    assert is_envelope(envelope)
    assert is_envelope(
        Keyring.from_master_keys(secrets.token_bytes(32), info=VARIABLES_INFO).encrypt("x", aad=AAD)
    )
    for value in (None, 1, b"x", "", "encrypted:v1:", "plain", envelope[:-1] + "=", envelope[:40]):
        assert not is_envelope(value)


# --- master key text --------------------------------------------------------------------------


def test_parse_master_key_accepts_base64_and_hex() -> None:
    key = secrets.token_bytes(32)
    standard = base64.b64encode(key).decode()
    urlsafe = base64.urlsafe_b64encode(key).decode()
    for text in (
        standard,
        standard.rstrip("="),
        urlsafe,
        urlsafe.rstrip("="),
        key.hex(),
        key.hex().upper(),
        f"  {standard}\n",
    ):
        assert parse_master_key(text) == key


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "changeme",
        base64.b64encode(secrets.token_bytes(31)).decode(),
        base64.b64encode(secrets.token_bytes(33)).decode(),
        secrets.token_bytes(32).hex()[:-2],
        secrets.token_bytes(32).hex() + "00",
        "g" * 64,
        base64.b64encode(secrets.token_bytes(32)).decode()[:-2] + "!=",
        base64.b64encode(bytes(32)).decode(),  # all zeros: a placeholder
        "00" * 32,
        "0123456789abcdef" * 4,
    ],
)
def test_parse_master_key_refuses_bad_keys(text: str) -> None:
    with pytest.raises(MasterKeyError) as caught:
        parse_master_key(text)
    if len(text.strip()) > 8:
        assert text.strip() not in str(caught.value)


# --- master key file --------------------------------------------------------------------------


def test_key_file_is_created_0600_in_a_0700_directory(tmp_path: Path) -> None:
    path = tmp_path / "data" / "keys" / "master.key"

    key = load_or_create_key_file(path)

    assert len(key) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.parent.parent.stat().st_mode) == 0o700
    assert parse_master_key(path.read_text()) == key
    assert [p.name for p in path.parent.iterdir()] == ["master.key"]  # no temp file left
    # The next start reads the same key.
    assert load_or_create_key_file(path) == key
    assert load_or_create_key_file(str(path)) == key


def test_each_new_key_file_gets_a_new_key(tmp_path: Path) -> None:
    assert load_or_create_key_file(tmp_path / "a.key") != load_or_create_key_file(
        tmp_path / "b.key"
    )


def test_losing_the_creation_race_uses_the_winners_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "master.key"
    winner = secrets.token_bytes(32)
    real_link = os.link

    def link_after_another_process(src: Path, dst: Path) -> None:
        fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, base64.b64encode(winner))
        os.close(fd)
        real_link(src, dst)

    monkeypatch.setattr(os, "link", link_after_another_process)

    assert load_or_create_key_file(path) == winner
    assert [p.name for p in tmp_path.iterdir()] == ["master.key"]


def test_filesystem_without_hard_links(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_link(src: Path, dst: Path) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_link)
    path = tmp_path / "master.key"

    key = load_or_create_key_file(path)

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["master.key"]
    monkeypatch.undo()
    assert load_or_create_key_file(path) == key


def test_existing_key_file_is_used(tmp_path: Path) -> None:
    key = secrets.token_bytes(32)
    path = tmp_path / "master.key"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, key.hex().encode() + b"\n")
    os.close(fd)

    assert load_or_create_key_file(path) == key


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o666])
def test_key_file_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "master.key"
    path.write_text(base64.b64encode(secrets.token_bytes(32)).decode())
    path.chmod(mode)

    with pytest.raises(MasterKeyError, match=r"chmod 600") as caught:
        load_or_create_key_file(path)
    assert f"{mode:04o}" in str(caught.value)
    assert path.read_text()  # left alone, not "fixed" or replaced


def test_key_file_0400_is_accepted(tmp_path: Path) -> None:
    key = secrets.token_bytes(32)
    path = tmp_path / "master.key"
    path.write_text(base64.b64encode(key).decode())
    path.chmod(0o400)
    assert load_or_create_key_file(path) == key


def test_key_file_with_garbage_is_refused_without_echoing_it(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    path.write_text("not-a-key-at-all-but-secretish")
    path.chmod(0o600)
    with pytest.raises(MasterKeyError, match="does not hold a valid key") as caught:
        load_or_create_key_file(path)
    assert "secretish" not in str(caught.value)


def test_key_file_symlink_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.key"
    target.write_text(base64.b64encode(secrets.token_bytes(32)).decode())
    target.chmod(0o600)
    link = tmp_path / "master.key"
    link.symlink_to(target)

    with pytest.raises(MasterKeyError, match="symlink"):
        load_or_create_key_file(link)


def test_key_file_directory_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    path.mkdir(mode=0o700)
    with pytest.raises(MasterKeyError):
        load_or_create_key_file(path)
