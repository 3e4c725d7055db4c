"""Heroku's ``Procfile``: ``<process type>: <command>`` per line.

Caboose runs one process type per service: ``web`` (or ``worker`` when there is no ``web``)
becomes the start command and ``release`` the pre-deploy command, as on Heroku. Other types are
kept in the plan (and noted in the log) so the user sees they were not started.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from caboose.engine.plan.files import read_text
from caboose.engine.types import PlanError

PROCFILE = "Procfile"
_LINE = re.compile(r"^(?P<name>[A-Za-z0-9_-]{1,64})\s*:\s*(?P<command>.*)$")
_MAX_PROCFILE_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class Procfile:
    """Process types in file order (a repeated type: the last line wins, as on Heroku)."""

    processes: tuple[tuple[str, str], ...]

    def get(self, name: str) -> str | None:
        return dict(self.processes).get(name)

    @property
    def web(self) -> str | None:
        return self.get("web")

    @property
    def release(self) -> str | None:
        return self.get("release")


def parse_procfile(text: str, *, name: str = PROCFILE) -> Procfile:
    """Parse Procfile text; blank lines and ``#`` comments are skipped, bad lines refused."""
    entries: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.match(line)
        if match is None:
            raise PlanError(
                f"{name} line {number} is not '<process type>: <command>': {line[:80]!r}"
            )
        command = match.group("command").strip()
        if not command:
            raise PlanError(
                f"{name} line {number}: process type {match.group('name')!r} has an empty command"
            )
        entries.pop(match.group("name"), None)
        entries[match.group("name")] = command
    return Procfile(processes=tuple(entries.items()))


def load_procfile(source_dir: Path) -> Procfile | None:
    """The tree's Procfile, or None when there is none."""
    text = read_text(source_dir, PROCFILE, limit=_MAX_PROCFILE_BYTES)
    if text is None:
        return None
    if "\x00" in text:
        raise PlanError(f"{PROCFILE} contains a NUL byte")
    return parse_procfile(text)
