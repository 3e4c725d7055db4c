"""Log lines as written (``LogLine``) and as stored (``LogEntry``: a line with its stream id).

Ids are Redis stream ids (``<ms>-<seq>``). They order every line of a deployment, in Redis and in
the archive alike, so they double as the resume cursor (``since``) of the HTTP history and of
the WebSocket: a client that saw id X asks for everything after X and gets no gap and no repeat.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal

LogStreamName = Literal["build", "stdout", "stderr", "system"]
STREAMS: Final = frozenset({"build", "stdout", "stderr", "system"})

# A line longer than this is cut (an app printing a 10 MB JSON blob must not fill Redis).
MAX_LINE_CHARS: Final = 16_384
_TRUNCATED = " …[{} more characters]"

StreamId = tuple[int, int]
_ID_RE = re.compile(r"^(\d{1,20})-(\d{1,20})$")
ID_PATTERN: Final = r"^\d{1,20}-\d{1,20}$"


def parse_id(value: str) -> StreamId:
    """``"1700000000000-3"`` → ``(1700000000000, 3)``; ``ValueError`` for anything else."""
    match = _ID_RE.match(value)
    if match is None:
        raise ValueError(f"not a log id: {value!r}")
    return int(match.group(1)), int(match.group(2))


def is_valid_id(value: str) -> bool:
    return _ID_RE.match(value) is not None


def format_id(value: StreamId) -> str:
    return f"{value[0]}-{value[1]}"


def successor(value: str) -> str:
    """The smallest id after ``value`` (for ``XTRIM MINID``, whose bound is inclusive)."""
    ms, seq = parse_id(value)
    return f"{ms}-{seq + 1}"


def clip(line: str) -> str:
    if len(line) <= MAX_LINE_CHARS:
        return line
    return line[:MAX_LINE_CHARS] + _TRUNCATED.format(len(line) - MAX_LINE_CHARS)


@dataclass(frozen=True, slots=True)
class LogLine:
    """One line to store. ``ts`` is epoch seconds (when the platform saw it)."""

    ts: float
    stream: str
    replica: int | None
    line: str

    @classmethod
    def now(cls, stream: str, line: str, *, replica: int | None = None) -> LogLine:
        return cls(time.time(), stream, replica, line)

    def fields(self) -> dict[str, str]:
        """The Redis stream fields (all strings; ``replica`` empty when there is none)."""
        return {
            "ts": str(round(self.ts * 1000)),
            "stream": self.stream,
            "replica": "" if self.replica is None else str(self.replica),
            "line": self.line,
        }


def iso_ms(ts_ms: int) -> str:
    """Epoch milliseconds as ISO 8601 UTC with a ``Z`` (as the API writes every time)."""
    moment = datetime.fromtimestamp(ts_ms / 1000, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class LogEntry:
    """A stored line: its id, and its fields as written."""

    id: str
    ts_ms: int
    stream: str
    replica: int | None
    line: str

    @classmethod
    def from_fields(cls, entry_id: str, fields: dict[str, str]) -> LogEntry:
        replica = fields.get("replica", "")
        return cls(
            id=entry_id,
            ts_ms=int(fields.get("ts") or 0),
            stream=fields.get("stream", "system"),
            replica=int(replica) if replica else None,
            line=fields.get("line", ""),
        )

    @classmethod
    def from_archive(cls, record: dict[str, Any]) -> LogEntry:
        return cls(
            id=str(record["id"]),
            ts_ms=int(record["ts"]),
            stream=str(record["stream"]),
            replica=record.get("replica"),
            line=str(record["line"]),
        )

    def fields(self) -> dict[str, str]:
        """The Redis stream fields this entry was stored with."""
        return {
            "ts": str(self.ts_ms),
            "stream": self.stream,
            "replica": "" if self.replica is None else str(self.replica),
            "line": self.line,
        }

    @property
    def sort_key(self) -> StreamId:
        return parse_id(self.id)

    def to_archive(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "ts": self.ts_ms,
            "stream": self.stream,
            "replica": self.replica,
            "line": self.line,
        }

    def to_public(self) -> dict[str, Any]:
        """The API's shape: ``{id, ts, stream, replica, line}`` with ``ts`` in ISO 8601."""
        return {
            "id": self.id,
            "ts": iso_ms(self.ts_ms),
            "stream": self.stream,
            "replica": self.replica,
            "line": self.line,
        }
