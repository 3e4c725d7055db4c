"""Fetch: turn a git repository or an uploaded tarball into a source tree on disk."""

from __future__ import annotations

from caboose.engine.source.archive import extract_tarball
from caboose.engine.source.git import GitSource, clone_repository, normalize_root_directory, redact

__all__ = [
    "GitSource",
    "clone_repository",
    "extract_tarball",
    "normalize_root_directory",
    "redact",
]
