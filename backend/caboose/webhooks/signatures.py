"""Proving a delivery came from the provider that knows the webhook's secret.

GitHub signs the raw body: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>``.
GitLab sends the secret itself in ``X-Gitlab-Token``. Both are compared in constant time
(:func:`hmac.compare_digest`), so the time an answer takes says nothing about how much of a
guess was right.
"""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["github_signature", "verify_github_signature", "verify_gitlab_token"]

_PREFIX = "sha256="


def github_signature(secret: str, body: bytes) -> str:
    """The ``X-Hub-Signature-256`` value GitHub sends for ``body`` (tests and docs use it)."""
    return _PREFIX + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify_github_signature(secret: str, body: bytes, header: str | None) -> bool:
    """Whether ``header`` is the HMAC-SHA256 of exactly ``body`` under ``secret``."""
    if not header:
        return False
    expected = github_signature(secret, body).encode("ascii")
    given = header.strip().encode("utf-8", errors="replace")
    return hmac.compare_digest(expected, given)


def verify_gitlab_token(secret: str, header: str | None) -> bool:
    """Whether ``header`` (``X-Gitlab-Token``) is the webhook's secret."""
    if not header:
        return False
    return hmac.compare_digest(secret.encode("utf-8"), header.encode("utf-8", errors="replace"))
