"""How the CLI prints: results on stdout, everything else (progress, hints, errors) on stderr.

Keeping the two apart is what makes the CLI scriptable: ``caboose deployments --json | jq`` sees
only the JSON document, while the user still sees what is going on. Rich renders colour and tables
only on a terminal and honours ``NO_COLOR``; JSON is always plain.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

MASK = "••••••••"

_STATUS_STYLES = {
    "ACTIVE": "bold green",
    "QUEUED": "yellow",
    "BUILDING": "yellow",
    "DEPLOYING": "cyan",
    "FAILED": "bold red",
    "CRASHED": "bold red",
    "CANCELLED": "dim",
    "REMOVED": "dim",
}


def stdout() -> Console:
    # Built per call: the streams may have been swapped (tests, redirection) since import.
    return Console(soft_wrap=False, highlight=False)


def stderr() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def print_json(data: Any) -> None:
    """One JSON document on stdout, for scripts."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
    sys.stdout.flush()


def print_json_line(data: Any) -> None:
    """One compact JSON object per line (streams such as logs)."""
    sys.stdout.write(json.dumps(data, separators=(",", ":"), default=str) + "\n")
    sys.stdout.flush()


def result(message: str | Text) -> None:
    """The human-readable result of a command (stdout)."""
    stdout().print(message)


def info(message: str | Text) -> None:
    stderr().print(message)


def success(message: str) -> None:
    stderr().print(Text("✓ ", style="green") + Text.from_markup(message))


def warn(message: str) -> None:
    stderr().print(Text("! ", style="yellow") + Text(message, style="yellow"))


def error(message: str, hint: str | None = None) -> None:
    console = stderr()
    console.print(Text(message, style="red"))
    if hint:
        console.print(Text(hint, style="dim"))


def table(columns: Sequence[str], rows: Iterable[Sequence[str | Text]]) -> None:
    grid = Table(box=None, pad_edge=False, header_style="bold", show_edge=False)
    for column in columns:
        grid.add_column(column, overflow="fold")
    for row in rows:
        grid.add_row(*row)
    stdout().print(grid)


def status_text(status: str | None) -> Text:
    value = (status or "UNKNOWN").upper()
    return Text(value, style=_STATUS_STYLES.get(value, ""))


def log_line(line: str) -> None:
    """A log line as the app wrote it: ANSI colours kept on a terminal, stripped in a file, and
    never read as Rich markup (a line may well contain ``[brackets]``)."""
    console = stdout()
    if console.is_terminal:
        console.print(Text.from_ansi(line), soft_wrap=True)
    else:
        sys.stdout.write(Text.from_ansi(line).plain + "\n")
        sys.stdout.flush()


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def age(value: Any, *, now: datetime | None = None) -> str:
    """``"3m ago"``: how long ago an ISO 8601 time was."""
    moment = parse_time(value)
    if moment is None:
        return "—"
    seconds = max(0, int(((now or datetime.now(UTC)) - moment).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


def short_id(value: Any) -> str:
    return str(value or "")[:8]


def count(number: int, noun: str) -> str:
    """``"1 file"``, ``"3 files"``."""
    return f"{number} {noun}{'' if number == 1 else 's'}"


def mask(value: Any, *, reveal: bool) -> str:
    """Variable values stay off the screen (and out of screen shares) unless asked for."""
    return str(value) if reveal else MASK
