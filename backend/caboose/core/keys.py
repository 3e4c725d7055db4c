"""Where the platform's keys come from: settings when given, else generated into the data dir.

Resolved once per process and key generation (they are read on every request) and kept out of
``Settings`` itself so that dumping settings never prints a key. The master keys — current and
previous, see ``core/master_keys`` — are re-read when the key files change, so
``caboosed rotate-key --generate`` reaches running processes without a restart.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from caboose.config import Settings
from caboose.core.encryption import OAUTH_TOKENS_INFO, VARIABLES_INFO, Keyring
from caboose.core.master_keys import PREVIOUS_KEYS_DIRNAME, key_files_stamp, load_master_keys
from caboose.core.secret_fields import WEBHOOK_SECRETS_INFO


@dataclass(frozen=True)
class PlatformKeys:
    jwt_secret: str
    # HMAC key for API tokens, invitation tokens and webhook delivery ids: derived from the JWT
    # secret with a label, so a leak of one hash family says nothing about JWT signatures.
    token_hmac_secret: bytes
    variables: Keyring
    oauth_tokens: Keyring
    webhook_secrets: Keyring


@lru_cache(maxsize=4)
def _keys_for(
    secret_key: str,
    master_key: str | None,
    previous_master_keys: tuple[str, ...],
    master_key_file: str,
    previous_keys_dir: str,
    key_files: tuple[int, ...],  # part of the cache key only: new key files, new keyrings
) -> PlatformKeys:
    masters = load_master_keys(
        master_key=master_key,
        previous_master_keys=previous_master_keys,
        master_key_file=Path(master_key_file),
        previous_keys_dir=Path(previous_keys_dir),
    )
    return PlatformKeys(
        jwt_secret=secret_key,
        token_hmac_secret=hashlib.sha256(
            b"caboose/token-hmac/v1\x00" + secret_key.encode()
        ).digest(),
        variables=masters.keyring(VARIABLES_INFO),
        oauth_tokens=masters.keyring(OAUTH_TOKENS_INFO),
        webhook_secrets=masters.keyring(WEBHOOK_SECRETS_INFO),
    )


def platform_keys(settings: Settings) -> PlatformKeys:
    settings.ensure_data_dir()
    master_key_file = settings.resolved_master_key_file()
    previous_keys_dir = settings.secrets_dir / PREVIOUS_KEYS_DIRNAME
    return _keys_for(
        settings.resolved_secret_key(),
        settings.master_key,
        tuple(settings.previous_master_keys),
        str(master_key_file),
        str(previous_keys_dir),
        key_files_stamp(master_key_file, previous_keys_dir),
    )
