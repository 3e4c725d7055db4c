"""``caboosed rotate-key``: every envelope re-encrypted under the new key id with its value
unchanged, in batches, idempotent and resumable, unreadable rows reported (never their value),
and the key files retired and replaced so that every key stays readable throughout."""

from __future__ import annotations

import asyncio
import base64
import secrets
import stat
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from caboose.config import Environment as RuntimeEnvironment
from caboose.config import Settings
from caboose.core.encryption import (
    OAUTH_TOKENS_INFO,
    VARIABLES_INFO,
    DecryptionError,
    Keyring,
    MasterKeyError,
    envelope_key_id,
    key_id_for,
)
from caboose.core.master_keys import (
    PREVIOUS_KEYS_DIRNAME,
    MasterKeys,
    generate_master_key,
    key_files_stamp,
    load_master_keys,
)
from caboose.core.secret_fields import (
    WEBHOOK_SECRETS_INFO,
    github_token_aad,
    shared_variable_aad,
    variable_aad,
    webhook_secret_aad,
)
from caboose.database import Database, session_scope
from caboose.migrations import upgrade
from caboose.models import (
    SharedVariable,
    User,
    Variable,
    Webhook,
    WebhookProvider,
)
from caboose.server.rotate_key import rotate_encrypted_columns, run_rotate_key
from tests.factories import EnvironmentFactory, ProjectFactory, ServiceFactory, UserFactory, persist

OLD = secrets.token_bytes(32)
NEW = secrets.token_bytes(32)
SECRET = "hunter2-very-secret"


@dataclass
class Seeded:
    """Rows sealed under ``OLD``, and the plaintext each must still decrypt to."""

    variables: dict[uuid.UUID, str]
    shared: dict[uuid.UUID, str]
    webhook: tuple[uuid.UUID, str]
    user: tuple[uuid.UUID, str]


async def seed(session: AsyncSession, keys: MasterKeys, *, count: int = 5) -> Seeded:
    variables_keyring = keys.keyring(VARIABLES_INFO)
    project = ProjectFactory.build()
    environment = EnvironmentFactory.build(project=project)
    service = ServiceFactory.build(project=project)
    user = UserFactory.build()
    await persist(session, project, environment, service, user)
    rows: list[Any] = []
    variables: dict[uuid.UUID, str] = {}
    for i in range(count):
        key, value = f"VAR_{i}", f"{SECRET}-{i}"
        row = Variable(
            id=uuid.uuid4(),
            service_id=service.id,
            environment_id=environment.id,
            key=key,
            value_encrypted=variables_keyring.encrypt(
                value, aad=variable_aad(service.id, environment.id, key)
            ),
            is_sealed=i == 0,
        )
        rows.append(row)
        variables[row.id] = value
    shared_row = SharedVariable(
        id=uuid.uuid4(),
        environment_id=environment.id,
        key="SHARED",
        value_encrypted=variables_keyring.encrypt(
            "shared-value", aad=shared_variable_aad(environment.id, "SHARED")
        ),
    )
    webhook_id = uuid.uuid4()
    webhook = Webhook(
        id=webhook_id,
        service_id=service.id,
        provider=WebhookProvider.GITHUB,
        secret_encrypted=keys.keyring(WEBHOOK_SECRETS_INFO).encrypt(
            "whsec-123", aad=webhook_secret_aad(webhook_id)
        ),
        settings={},
    )
    user.github_token_encrypted = keys.keyring(OAUTH_TOKENS_INFO).encrypt(
        "gho_token", aad=github_token_aad(user.id)
    )
    await persist(session, *rows, shared_row, webhook)
    return Seeded(
        variables,
        {shared_row.id: "shared-value"},
        (webhook_id, "whsec-123"),
        (user.id, "gho_token"),
    )


async def envelopes(session: AsyncSession, seeded: Seeded) -> dict[str, str]:
    """Every seeded envelope as stored now, by a readable label."""
    found: dict[str, str] = {}
    for row_id, envelope in await session.execute(
        select(Variable.id, Variable.value_encrypted).where(Variable.id.in_(seeded.variables))
    ):
        found[f"variable:{row_id}"] = envelope
    for row_id, envelope in await session.execute(
        select(SharedVariable.id, SharedVariable.value_encrypted).where(
            SharedVariable.id.in_(seeded.shared)
        )
    ):
        found[f"shared:{row_id}"] = envelope
    found["webhook"] = (
        await session.scalar(
            select(Webhook.secret_encrypted).where(Webhook.id == seeded.webhook[0])
        )
    ) or ""
    found["user"] = (
        await session.scalar(select(User.github_token_encrypted).where(User.id == seeded.user[0]))
    ) or ""
    return found


async def assert_readable_with(session: AsyncSession, seeded: Seeded, keys: MasterKeys) -> None:
    """Every seeded value decrypts, to the same plaintext, with ``keys`` (and its AAD)."""
    variables = keys.keyring(VARIABLES_INFO)
    rows = await session.execute(
        select(
            Variable.id,
            Variable.service_id,
            Variable.environment_id,
            Variable.key,
            Variable.value_encrypted,
        ).where(Variable.id.in_(seeded.variables))
    )
    for row_id, service_id, environment_id, key, envelope in rows:
        aad = variable_aad(service_id, environment_id, key)
        assert variables.decrypt(envelope, aad=aad) == seeded.variables[row_id]
    shared = await session.execute(
        select(SharedVariable.environment_id, SharedVariable.key, SharedVariable.value_encrypted)
    )
    for environment_id, key, envelope in shared:
        assert variables.decrypt(envelope, aad=shared_variable_aad(environment_id, key)) == (
            "shared-value"
        )
    webhook_id, webhook_secret = seeded.webhook
    webhook_envelope = await session.scalar(
        select(Webhook.secret_encrypted).where(Webhook.id == webhook_id)
    )
    assert webhook_envelope is not None
    webhook_keyring = keys.keyring(WEBHOOK_SECRETS_INFO)
    opened = webhook_keyring.decrypt(webhook_envelope, aad=webhook_secret_aad(webhook_id))
    assert opened == webhook_secret
    user_id, token = seeded.user
    sealed = await session.scalar(select(User.github_token_encrypted).where(User.id == user_id))
    assert sealed is not None
    assert keys.keyring(OAUTH_TOKENS_INFO).decrypt(sealed, aad=github_token_aad(user_id)) == token


async def test_everything_is_re_encrypted_under_the_new_key_with_values_unchanged(
    db_session: AsyncSession,
) -> None:
    seeded = await seed(db_session, MasterKeys(OLD))
    before = await envelopes(db_session, seeded)
    assert {envelope_key_id(e) for e in before.values()} == {key_id_for(OLD)}
    updated_before = dict(
        (await db_session.execute(select(Variable.id, Variable.updated_at))).all()
    )

    rotating = MasterKeys(NEW, (OLD,))
    # Reads keep working mid-rotation: the keyring holds both keys.
    await assert_readable_with(db_session, seeded, rotating)
    report = await rotate_encrypted_columns(db_session, rotating, batch_size=2)
    assert report.ok and report.current_key_id == key_id_for(NEW)
    by_name = {column.name: column.rotated for column in report.columns}
    assert by_name == {
        "variable.value_encrypted": 5,
        "shared_variable.value_encrypted": 1,
        "webhook.secret_encrypted": 1,
        "user.github_token_encrypted": 1,
    }

    after = await envelopes(db_session, seeded)
    assert {envelope_key_id(e) for e in after.values()} == {key_id_for(NEW)}
    assert all(after[label] != before[label] for label in before)
    # The old key can go: the new one alone reads everything, to the same values.
    await assert_readable_with(db_session, seeded, MasterKeys(NEW))
    updated_after = dict((await db_session.execute(select(Variable.id, Variable.updated_at))).all())
    assert updated_after == updated_before  # re-encryption is not a change anyone made
    assert SECRET not in str(report)


async def test_a_second_run_changes_nothing(db_session: AsyncSession) -> None:
    seeded = await seed(db_session, MasterKeys(OLD))
    rotating = MasterKeys(NEW, (OLD,))
    await rotate_encrypted_columns(db_session, rotating)
    first = await envelopes(db_session, seeded)
    again = await rotate_encrypted_columns(db_session, rotating)
    assert again.ok and again.rotated == 0
    assert await envelopes(db_session, seeded) == first


async def test_an_interrupted_run_resumes_where_it_stopped(db_session: AsyncSession) -> None:
    seeded = await seed(db_session, MasterKeys(OLD), count=7)
    rotating = MasterKeys(NEW, (OLD,))

    class StopRotationError(Exception):
        pass

    def stop_after_first_batch(name: str, rotated: int) -> None:
        raise StopRotationError

    with pytest.raises(StopRotationError):
        await rotate_encrypted_columns(
            db_session, rotating, batch_size=3, on_batch=stop_after_first_batch
        )
    midway = await envelopes(db_session, seeded)
    under_new = [label for label, e in midway.items() if envelope_key_id(e) == key_id_for(NEW)]
    assert len(under_new) == 3  # the first batch was committed, nothing else
    report = await rotate_encrypted_columns(db_session, rotating, batch_size=3)
    assert report.ok
    assert {c.name: c.rotated for c in report.columns}["variable.value_encrypted"] == 4
    await assert_readable_with(db_session, seeded, MasterKeys(NEW))


async def test_a_dry_run_writes_nothing(db_session: AsyncSession) -> None:
    seeded = await seed(db_session, MasterKeys(OLD))
    before = await envelopes(db_session, seeded)
    report = await rotate_encrypted_columns(db_session, MasterKeys(NEW, (OLD,)), dry_run=True)
    assert report.ok and report.rotated == 8
    assert await envelopes(db_session, seeded) == before


async def test_unreadable_rows_are_reported_by_id_and_the_rest_rotated(
    db_session: AsyncSession,
) -> None:
    seeded = await seed(db_session, MasterKeys(OLD))
    moved_id, *others = list(seeded.variables)
    # A ciphertext moved to another row, and a plaintext that should never have been stored.
    source = await db_session.scalar(
        select(Variable.value_encrypted).where(Variable.id == others[0])
    )
    await db_session.execute(
        update(Variable).where(Variable.id == moved_id).values(value_encrypted=source)
    )
    await db_session.execute(
        update(Variable).where(Variable.id == others[1]).values(value_encrypted=SECRET)
    )
    await db_session.commit()
    unknown_key = MasterKeys(NEW)  # OLD forgotten: nothing can be opened
    report = await rotate_encrypted_columns(db_session, MasterKeys(NEW, (OLD,)))
    failures = {c.name: c.failures for c in report.columns}["variable.value_encrypted"]
    assert not report.ok
    assert {row_id for row_id, _ in failures} == {moved_id, others[1]}
    assert all(SECRET not in reason for _, reason in failures)
    assert {c.name: c.rotated for c in report.columns}["variable.value_encrypted"] == 3

    await db_session.execute(
        update(Variable)
        .where(Variable.id.in_([moved_id, others[1]]))
        .values(
            value_encrypted=MasterKeys(OLD).keyring(VARIABLES_INFO).encrypt("x", aad="elsewhere")
        )
    )
    await db_session.commit()
    lost = await rotate_encrypted_columns(db_session, unknown_key)
    reasons = [reason for c in lost.columns for _, reason in c.failures]
    assert reasons and all("unknown key id" in reason for reason in reasons)


# Key files ------------------------------------------------------------------------------------


def test_generate_retires_the_current_key_and_writes_a_new_one(tmp_path: Path) -> None:
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir(mode=0o700)
    key_file = secrets_dir / "master.key"
    previous_dir = secrets_dir / PREVIOUS_KEYS_DIRNAME
    first = load_master_keys(
        master_key=None, master_key_file=key_file, previous_keys_dir=previous_dir
    )
    stamp = key_files_stamp(key_file, previous_dir)

    old_id, new_id = generate_master_key(key_file, previous_dir)
    assert old_id == first.current_key_id != new_id
    retired = previous_dir / f"{old_id}.key"
    assert stat.S_IMODE(retired.stat().st_mode) == 0o600
    assert stat.S_IMODE(previous_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert base64.b64decode(retired.read_text()) == first.current
    assert key_files_stamp(key_file, previous_dir) != stamp

    second = load_master_keys(
        master_key=None, master_key_file=key_file, previous_keys_dir=previous_dir
    )
    assert second.current_key_id == new_id
    assert second.previous == (first.current,)
    # Values sealed under the first key still open; new ones are sealed under the second.
    envelope = first.keyring(VARIABLES_INFO).encrypt(SECRET, aad="a")
    assert second.keyring(VARIABLES_INFO).decrypt(envelope, aad="a") == SECRET

    generate_master_key(key_file, previous_dir)
    third = load_master_keys(
        master_key=None, master_key_file=key_file, previous_keys_dir=previous_dir
    )
    assert set(third.previous) == {first.current, second.current}
    assert not list(secrets_dir.glob(".*.tmp"))


def test_previous_keys_from_the_setting(tmp_path: Path) -> None:
    old_text = base64.b64encode(OLD).decode()
    keys = load_master_keys(
        master_key=base64.b64encode(NEW).decode(),
        previous_master_keys=[f" {old_text} ", "", base64.b64encode(NEW).decode()],
        master_key_file=tmp_path / "unused.key",
    )
    assert keys.current == NEW and keys.previous == (OLD,)  # current never listed as previous
    assert not (tmp_path / "unused.key").exists()
    assert OLD.hex() not in repr(keys) and old_text not in repr(keys)
    with pytest.raises(MasterKeyError, match="entry 2 is not a valid key") as caught:
        load_master_keys(
            master_key=base64.b64encode(NEW).decode(),
            previous_master_keys=[old_text, "not-a-key-" + old_text[:20]],
            master_key_file=tmp_path / "unused.key",
        )
    assert old_text[:20] not in str(caught.value)


def test_generate_refuses_without_a_key_file(tmp_path: Path) -> None:
    with pytest.raises(MasterKeyError, match="no master key file"):
        generate_master_key(tmp_path / "master.key", tmp_path / PREVIOUS_KEYS_DIRNAME)


# The command, end to end ----------------------------------------------------------------------


def test_the_command_generates_a_key_and_rotates_a_real_database(tmp_path: Path) -> None:
    settings = Settings(
        environment=RuntimeEnvironment.TEST,
        data_dir=tmp_path,
        secret_key="test-secret-key-that-is-long-enough-for-hs256-0123456789",
    )
    settings.ensure_data_dir()
    upgrade(settings.resolved_database_url)
    key_file = settings.resolved_master_key_file()
    previous_dir = settings.secrets_dir / PREVIOUS_KEYS_DIRNAME
    original = load_master_keys(master_key=None, master_key_file=key_file)

    async def seed_database() -> Seeded:
        database = Database(settings.resolved_database_url, settings)
        try:
            async with session_scope(database.sessionmaker) as session:
                return await seed(session, original)
        finally:
            await database.dispose()

    async def read_back(keys: MasterKeys, seeded: Seeded) -> dict[str, str]:
        database = Database(settings.resolved_database_url, settings)
        try:
            async with session_scope(database.sessionmaker) as session:
                await assert_readable_with(session, seeded, keys)
                return await envelopes(session, seeded)
        finally:
            await database.dispose()

    seeded = asyncio.run(seed_database())
    lines: list[str] = []
    assert run_rotate_key(settings, generate=True, echo=lines.append) == 0, lines
    current = load_master_keys(
        master_key=None, master_key_file=key_file, previous_keys_dir=previous_dir
    )
    assert current.current_key_id != original.current_key_id
    stored = asyncio.run(read_back(MasterKeys(current.current), seeded))
    assert {envelope_key_id(e) for e in stored.values()} == {current.current_key_id}
    output = "\n".join(lines)
    assert f"retired key {original.current_key_id}" in output
    assert "variable.value_encrypted: 5 re-encrypted" in output
    assert SECRET not in output and base64.b64encode(current.current).decode() not in output

    lines.clear()
    assert run_rotate_key(settings, dry_run=True, echo=lines.append) == 0
    assert "variable.value_encrypted: 0 to re-encrypt" in lines


def test_the_command_refuses_to_generate_over_a_configured_key(tmp_path: Path) -> None:
    settings = Settings(
        environment=RuntimeEnvironment.TEST,
        data_dir=tmp_path,
        secret_key="test-secret-key-that-is-long-enough-for-hs256-0123456789",
        master_key=base64.b64encode(NEW).decode(),
    )
    lines: list[str] = []
    assert run_rotate_key(settings, generate=True, echo=lines.append) == 2
    assert "CABOOSE_PREVIOUS_MASTER_KEYS" in lines[0]
    assert not (tmp_path / "secrets" / PREVIOUS_KEYS_DIRNAME).exists()


def test_keyrings_of_other_purposes_do_not_open_each_other() -> None:
    keys = MasterKeys(NEW)
    envelope = keys.keyring(WEBHOOK_SECRETS_INFO).encrypt("x", aad="a")
    with pytest.raises(DecryptionError, match="authentication failed"):
        keys.keyring(VARIABLES_INFO).decrypt(envelope, aad="a")
    assert isinstance(keys.keyring(VARIABLES_INFO), Keyring)
