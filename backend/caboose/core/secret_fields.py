"""Every encrypted column's associated data, written once.

An envelope is bound to its row through associated data (``core/encryption``). Whoever writes a
column and whoever reads it — the API, the deploy pipeline, ``caboosed rotate-key`` — must build
exactly the same string, so each column has one function here and nothing formats it inline.

The bindings use the row's *natural* identity (service, environment, key), not its surrogate id:
it is stable across re-encryption and rewrites of the row, and an envelope copied to any other
variable, environment or service fails to decrypt.
"""

from __future__ import annotations

import uuid
from typing import Final

__all__ = [
    "WEBHOOK_SECRETS_INFO",
    "github_token_aad",
    "shared_variable_aad",
    "variable_aad",
    "webhook_secret_aad",
]

WEBHOOK_SECRETS_INFO: Final = b"caboose/webhook-secrets/v1"
"""HKDF ``info`` for webhook secrets (next to ``VARIABLES_INFO`` and ``OAUTH_TOKENS_INFO``)."""


def variable_aad(service_id: uuid.UUID, environment_id: uuid.UUID, key: str) -> str:
    """``Variable.value_encrypted`` (keyring: ``keys.variables``)."""
    return f"variable:{service_id}:{environment_id}:{key}"


def shared_variable_aad(environment_id: uuid.UUID, key: str) -> str:
    """``SharedVariable.value_encrypted`` (keyring: ``keys.variables``)."""
    return f"shared:{environment_id}:{key}"


def webhook_secret_aad(webhook_id: uuid.UUID) -> str:
    """``Webhook.secret_encrypted`` (keyring: derived with :data:`WEBHOOK_SECRETS_INFO`)."""
    return f"webhook:{webhook_id}:secret"


def github_token_aad(user_id: uuid.UUID) -> str:
    """``User.github_token_encrypted`` (keyring: ``keys.oauth_tokens``), as sign-in writes it."""
    return f"user:{user_id}:github_token"
