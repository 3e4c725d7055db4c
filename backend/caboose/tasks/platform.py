"""Tasks about the platform itself (queue ``default``)."""

from __future__ import annotations

from caboose.celery_app import task


@task("platform.ping")
def ping() -> str:
    """Answer ``"pong"``: proves a worker consumes the ``default`` queue and results come back
    (the end-to-end tests and operators' smoke checks send it)."""
    return "pong"
