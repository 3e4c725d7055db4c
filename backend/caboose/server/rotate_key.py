"""``caboosed rotate-key``: re-encrypt every stored secret under the current master key.

What it walks is :data:`ENCRYPTED_COLUMNS` — service and shared variables, webhook secrets,
GitHub tokens — each with its key purpose and its associated data (``core/secret_fields``).

Without downtime: every process holds the current *and* the previous keys (``core/master_keys``),
so a value reads the same before and after it is rewritten, and the platform keeps serving while
this runs. In batches, each its own transaction, so the tables are never locked for long.
Idempotent and resumable: only envelopes not yet under the current key id are selected (by their
``encrypted:v1:<kid>:`` prefix, in the database), so a second run, or a run after an interruption,
picks up exactly what is left. A row is rewritten only if it still holds the envelope that was
read (compare-and-swap): a value changed meanwhile was written under the current key anyway, and
is left alone. ``updated_at`` is kept: re-encryption is not a change anyone made.

A value that cannot be decrypted (its key is gone, or it was tampered with) is reported by table
and row id, never by value, and the run carries on; the exit status then says it failed.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from caboose.config import Settings
from caboose.core.encryption import (
    ENVELOPE_PREFIX,
    OAUTH_TOKENS_INFO,
    VARIABLES_INFO,
    DecryptionError,
    Keyring,
    MasterKeyError,
)
from caboose.core.master_keys import (
    PREVIOUS_KEYS_DIRNAME,
    MasterKeys,
    generate_master_key,
    load_master_keys,
)
from caboose.core.secret_fields import (
    WEBHOOK_SECRETS_INFO,
    github_token_aad,
    shared_variable_aad,
    variable_aad,
    webhook_secret_aad,
)
from caboose.models import SharedVariable, User, Variable, Webhook
from caboose.models.base import Base

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "ENCRYPTED_COLUMNS",
    "ColumnReport",
    "EncryptedColumn",
    "RotationReport",
    "rotate_encrypted_columns",
    "run_rotate_key",
]

DEFAULT_BATCH_SIZE: Final = 500


@dataclass(frozen=True)
class EncryptedColumn:
    """A column of envelopes: its model, its key purpose, and how a row's AAD is built."""

    model: type[Base]
    column: str
    info: bytes
    aad_fields: tuple[str, ...]
    aad: Callable[[Any], str]

    @property
    def name(self) -> str:
        return f"{self.model.__tablename__}.{self.column}"


ENCRYPTED_COLUMNS: Final[tuple[EncryptedColumn, ...]] = (
    EncryptedColumn(
        Variable,
        "value_encrypted",
        VARIABLES_INFO,
        ("service_id", "environment_id", "key"),
        lambda row: variable_aad(row.service_id, row.environment_id, row.key),
    ),
    EncryptedColumn(
        SharedVariable,
        "value_encrypted",
        VARIABLES_INFO,
        ("environment_id", "key"),
        lambda row: shared_variable_aad(row.environment_id, row.key),
    ),
    EncryptedColumn(
        Webhook,
        "secret_encrypted",
        WEBHOOK_SECRETS_INFO,
        (),
        lambda row: webhook_secret_aad(row.id),
    ),
    EncryptedColumn(
        User,
        "github_token_encrypted",
        OAUTH_TOKENS_INFO,
        (),
        lambda row: github_token_aad(row.id),
    ),
)
"""Every encrypted column of the schema. A new one must be added here, or rotation skips it."""


@dataclass
class ColumnReport:
    name: str
    rotated: int = 0
    concurrent: int = 0  # changed by someone else between our read and our write: left alone
    failures: list[tuple[uuid.UUID, str]] = field(default_factory=list)


@dataclass
class RotationReport:
    current_key_id: str
    dry_run: bool
    columns: list[ColumnReport]

    @property
    def ok(self) -> bool:
        return not any(column.failures for column in self.columns)

    @property
    def rotated(self) -> int:
        return sum(column.rotated for column in self.columns)


async def _rotate_column(
    session: AsyncSession,
    spec: EncryptedColumn,
    keyring: Keyring,
    *,
    batch_size: int,
    dry_run: bool,
    on_batch: Callable[[str, int], None] | None,
) -> ColumnReport:
    model: Any = spec.model
    column = getattr(model, spec.column)
    current_prefix = f"{ENVELOPE_PREFIX}{keyring.current_key_id}:"
    report = ColumnReport(spec.name)
    last_id: uuid.UUID | None = None
    while True:
        query = (
            select(
                model.id,
                model.updated_at,
                column.label("envelope"),
                *(getattr(model, name) for name in spec.aad_fields),
            )
            .where(column.is_not(None), ~column.startswith(current_prefix, autoescape=True))
            .order_by(model.id)
            .limit(batch_size)
        )
        if last_id is not None:
            query = query.where(model.id > last_id)
        rows = (await session.execute(query)).all()
        if not rows:
            return report
        rotated = 0
        for row in rows:
            try:
                new = keyring.reencrypt(row.envelope, aad=spec.aad(row))
            except DecryptionError as exc:
                report.failures.append((row.id, str(exc)))
                continue
            if dry_run:
                rotated += 1
                continue
            result = await session.execute(
                update(model)
                .where(model.id == row.id, column == row.envelope)
                .values({spec.column: new, "updated_at": row.updated_at})
                .execution_options(synchronize_session=False)
            )
            if cast("CursorResult[Any]", result).rowcount == 1:
                rotated += 1
            else:
                report.concurrent += 1
        if not dry_run:
            await session.commit()
        report.rotated += rotated
        last_id = rows[-1].id
        if on_batch is not None:
            on_batch(spec.name, rotated)


async def rotate_encrypted_columns(
    session: AsyncSession,
    master_keys: MasterKeys,
    *,
    columns: Sequence[EncryptedColumn] = ENCRYPTED_COLUMNS,
    batch_size: int = DEFAULT_BATCH_SIZE,
    dry_run: bool = False,
    on_batch: Callable[[str, int], None] | None = None,
) -> RotationReport:
    """Re-encrypt every envelope not under ``master_keys``' current key id, committing after
    each batch. ``dry_run`` decrypts (so unreadable values are found) but writes nothing.

    ``on_batch(column name, rotated in the batch)`` reports progress; nothing here prints.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    reports = [
        await _rotate_column(
            session,
            spec,
            master_keys.keyring(spec.info),
            batch_size=batch_size,
            dry_run=dry_run,
            on_batch=on_batch,
        )
        for spec in columns
    ]
    return RotationReport(master_keys.current_key_id, dry_run, reports)


def run_rotate_key(
    settings: Settings,
    *,
    previous_master_keys: Sequence[str] = (),
    generate: bool = False,
    dry_run: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    echo: Callable[[str], None] = print,
) -> int:
    """What ``caboosed rotate-key`` does; returns the exit status (0: every value is under the
    current key, or would be with ``dry_run``; 1: some could not be decrypted; 2: bad keys or
    no usable database).

    ``generate`` first retires the key file into ``<secrets>/previous-keys/`` and writes a new
    one (key-file setups only). Output names tables, row ids and key ids, never a value or a key.
    """
    import asyncio

    from caboose.database import Database

    settings.ensure_data_dir()
    master_key_file = settings.resolved_master_key_file()
    previous_dir = settings.secrets_dir / PREVIOUS_KEYS_DIRNAME
    try:
        if generate:
            if settings.master_key:
                echo(
                    "error: the master key comes from CABOOSE_MASTER_KEY; rotate it by moving it "
                    "to CABOOSE_PREVIOUS_MASTER_KEYS and setting a new one (see docs/security.md)"
                )
                return 2
            if not dry_run:
                old_id, new_id = generate_master_key(master_key_file, previous_dir)
                echo(f"retired key {old_id} to {previous_dir}; new current key {new_id}")
        keys = load_master_keys(
            master_key=settings.master_key,
            previous_master_keys=previous_master_keys,
            master_key_file=master_key_file,
            previous_keys_dir=previous_dir,
        )
    except MasterKeyError as exc:
        echo(f"error: {exc}")
        return 2
    echo(f"current key {keys.current_key_id}; also reading {keys.previous_key_ids or 'none'}")

    def progress(name: str, rotated: int) -> None:
        echo(f"  {name}: {'would re-encrypt' if dry_run else 're-encrypted'} {rotated}")

    async def run() -> RotationReport:
        database = Database(settings.resolved_database_url, settings)
        try:
            async with database.sessionmaker() as session:
                return await rotate_encrypted_columns(
                    session, keys, batch_size=batch_size, dry_run=dry_run, on_batch=progress
                )
        finally:
            await database.dispose()

    try:
        report = asyncio.run(run())
    except SQLAlchemyError as exc:
        # The driver's own message (e.g. "no such table: variable"), not the statement and its
        # parameters, which may hold envelopes.
        cause = str(getattr(exc, "orig", None) or type(exc).__name__).splitlines()[0]
        echo(f"error: cannot use the database ({cause}); is it migrated (caboosed migrate)?")
        return 2
    for column in report.columns:
        line = f"{column.name}: {column.rotated} {'to re-encrypt' if dry_run else 're-encrypted'}"
        if column.concurrent:
            line += f", {column.concurrent} changed meanwhile (already current)"
        echo(line)
        for row_id, reason in column.failures:
            echo(f"  row {row_id}: {reason}")
    if not report.ok:
        failed = sum(len(c.failures) for c in report.columns)
        echo(
            f"{failed} value(s) cannot be decrypted with the configured keys: they were left as "
            "they are; keep the previous keys until they are fixed or deleted"
        )
        return 1
    verb = "would be" if dry_run else "is"
    echo(f"every stored secret {verb} under key {report.current_key_id}")
    return 0
