"""``build.watchPatterns``: gitignore-style globs that decide whether a push deploys.

Used twice: by the webhook task with the service's own setting (a push that matches nothing
creates no deployment), and by the build (:func:`caboose.engine.pipeline.build`) once the plan
knows the patterns of ``railway.json``/``railway.toml``.

A push deploys when at least one changed file matches (paths from the repository root, as
Railway reads them); ``!pattern`` excludes again, the last matching pattern wins, ``**`` spans
directories, a pattern without ``/`` matches at any depth, and a trailing ``/`` means a
directory. pathspec's ``GitIgnoreSpec`` implements git's own wildmatch rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pathspec import GitIgnoreSpec

__all__ = ["compile_patterns", "matching_files"]


def _effective(patterns: Sequence[str]) -> list[str]:
    """The patterns that say something (blank lines and ``#`` comments do not)."""
    return [p.strip() for p in patterns if p.strip() and not p.strip().startswith("#")]


def compile_patterns(patterns: Sequence[str]) -> GitIgnoreSpec:
    return GitIgnoreSpec.from_lines(_effective(patterns))


def matching_files(patterns: Sequence[str], files: Iterable[str]) -> list[str]:
    """The files of ``files`` the patterns select (no pattern at all selects everything)."""
    paths = [f.lstrip("/") for f in files if f]
    if not _effective(patterns):
        return paths
    spec = compile_patterns(patterns)
    return [path for path in paths if spec.match_file(path)]
