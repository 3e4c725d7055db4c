"""A ``.env`` parser with line-numbered errors, for bulk import.

The format is what ``python-dotenv``, Docker Compose and Node's ``dotenv`` have in common:

* ``KEY=value`` per line, spaces allowed around ``=``, an optional ``export `` in front;
* blank lines and lines starting with ``#`` are skipped; in an unquoted value, `` #`` (a ``#``
  after whitespace) starts a comment and surrounding whitespace is dropped (``COLOR=#fff`` is
  a value);
* ``'single quotes'`` keep everything literally except ``\\'`` and ``\\\\``;
* ``"double quotes"`` understand ``\\n \\r \\t \\" \\\\ \\$`` and friends (others are kept as
  written) and may span several lines, as a PEM key pasted between quotes does;
* ``=`` may appear in values (``URL=postgres://u:p@h/db?sslmode=require``); the first ``=`` splits.

Nothing is interpolated: ``${VAR}`` stays as written. Caboose's references are ``${{…}}`` and are
expanded at deploy time, where every service's values are known.

We do not use ``python-dotenv`` itself: it skips a line it cannot parse with a warning, where an
import must refuse the text and say which line is wrong. Errors never quote a value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final

__all__ = ["DotenvEntry", "DotenvError", "DotenvProblem", "parse_dotenv"]

_KEY_RE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_EXPORT_RE: Final = re.compile(r"export[ \t]+")
_DOUBLE_ESCAPES: Final = {
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "v": "\v",
    '"': '"',
    "'": "'",
    "\\": "\\",
    "$": "$",
}
_MAX_PROBLEMS: Final = 50


@dataclass(frozen=True, slots=True)
class DotenvEntry:
    """One ``KEY=value`` and the line it starts on (for errors found after parsing)."""

    key: str
    value: str = field(repr=False)
    line: int


@dataclass(frozen=True, slots=True)
class DotenvProblem:
    line: int
    message: str
    code: str = "dotenv_syntax"


class DotenvError(ValueError):
    """The text is not valid ``.env``: every problem found, each with its line number."""

    def __init__(self, problems: list[DotenvProblem]) -> None:
        self.problems = problems
        summary = "; ".join(f"line {p.line}: {p.message}" for p in problems[:3])
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        super().__init__(summary + more)


class _Lines:
    """The text as lines, with a cursor (a quoted value may consume the lines after its own)."""

    def __init__(self, text: str) -> None:
        text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
        self.lines = text.split("\n")
        self.index = 0

    @property
    def number(self) -> int:
        return self.index + 1

    def done(self) -> bool:
        return self.index >= len(self.lines)


def _unquoted(rest: str) -> str:
    """An unquoted value: ``#`` starts a comment only after whitespace, so ``a#b`` and
    ``COLOR=#fff`` are values while ``A=1 # note`` and ``A= # note`` are not."""
    match = re.search(r"[ \t]#", rest)
    if match:
        rest = rest[: match.start()]
    return rest.strip(" \t")


def _read_quoted(lines: _Lines, rest: str, quote: str) -> tuple[str, str]:
    """Read a quoted value starting just after the opening quote on the current line.

    Returns ``(value, text after the closing quote)`` with the cursor on the closing line, or
    raises ``ValueError`` if the text ends first.
    """
    out: list[str] = []
    text = rest
    while True:
        i = 0
        while i < len(text):
            char = text[i]
            if char == "\\" and i + 1 < len(text):
                nxt = text[i + 1]
                if quote == '"':
                    out.append(_DOUBLE_ESCAPES.get(nxt, "\\" + nxt))
                    i += 2
                    continue
                if nxt in {"'", "\\"}:
                    out.append(nxt)
                    i += 2
                    continue
            if char == quote:
                return "".join(out), text[i + 1 :]
            out.append(char)
            i += 1
        # No closing quote on this line: the value continues on the next one.
        if lines.index + 1 >= len(lines.lines):
            raise ValueError
        lines.index += 1
        out.append("\n")
        text = lines.lines[lines.index]


def parse_dotenv(text: str) -> list[DotenvEntry]:
    """Parse ``.env`` text into entries in file order (a repeated key: the last one wins later).

    Raises :class:`DotenvError` listing every problem (up to 50) with its line number, so a user
    can fix a pasted file in one go rather than one error per attempt.
    """
    lines = _Lines(text)
    entries: list[DotenvEntry] = []
    problems: list[DotenvProblem] = []
    while not lines.done() and len(problems) < _MAX_PROBLEMS:
        start = lines.number
        line = lines.lines[lines.index].strip(" \t")
        if not line or line.startswith("#"):
            lines.index += 1
            continue
        export = _EXPORT_RE.match(line)
        if export and "=" in line[export.end() :]:
            line = line[export.end() :]
        name, sep, rest = line.partition("=")
        name = name.rstrip(" \t")
        if not sep:
            problems.append(DotenvProblem(start, "expected KEY=value"))
            lines.index += 1
            continue
        if not _KEY_RE.fullmatch(name):
            shown = name if len(name) <= 64 else name[:64] + "…"
            problems.append(
                DotenvProblem(
                    start,
                    f"{shown!r} is not a valid name (letters, digits and underscores, "
                    "not starting with a digit)",
                    "key_invalid",
                )
            )
            lines.index += 1
            continue
        stripped = rest.lstrip(" \t")
        if stripped[:1] in {'"', "'"}:
            quote = stripped[0]
            try:
                value, after = _read_quoted(lines, stripped[1:], quote)
            except ValueError:
                problems.append(
                    DotenvProblem(
                        start, f"the value of {name} opens a {quote} quote that is never closed"
                    )
                )
                break  # everything after is inside the quote: nothing more to check
            after = after.strip(" \t")
            if after and not after.startswith("#"):
                problems.append(
                    DotenvProblem(
                        lines.number,
                        f"unexpected text after the closing quote of {name} "
                        "(quote the whole value, or start a comment with ' #')",
                    )
                )
                lines.index += 1
                continue
        else:
            value = _unquoted(rest)
        entries.append(DotenvEntry(name, value, start))
        lines.index += 1
    if problems:
        raise DotenvError(problems)
    return entries
