"""Read ``.env`` files the way the usual tools (python-dotenv, Docker Compose, Railway) do.

``KEY=value`` lines, ``export KEY=value``, ``#`` comments (inline only after whitespace in
unquoted values), single quotes taken literally, double quotes with ``\\n``-style escapes, and
quoted values spanning several lines.
"""

from __future__ import annotations

import re

from caboose_cli.errors import UsageError

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\", "$": "$"}


def parse_dotenv(text: str, *, source: str = ".env") -> dict[str, str]:
    values: dict[str, str] = {}
    i, n, line_number = 0, len(text), 1
    while i < n:
        end = text.find("\n", i)
        end = n if end == -1 else end
        line = text[i:end].strip()
        start_line = line_number
        if not line or line.startswith("#"):
            i, line_number = end + 1, line_number + 1
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        key, equals, rest = line.partition("=")
        key = key.strip()
        if not equals or not _KEY.fullmatch(key):
            raise UsageError(f"{source}:{start_line}: expected KEY=VALUE, got {line[:40]!r}")
        offset = i + text[i:end].index("=") + 1
        while offset < n and text[offset] in " \t":
            offset += 1
        quote = text[offset] if offset < n else ""
        if quote in {"'", '"'}:
            value, offset = _quoted(text, offset + 1, quote, source, start_line)
            line_number += text.count("\n", i, offset)
            end = text.find("\n", offset)
            end = n if end == -1 else end
        else:
            value = rest.strip()
            comment = re.search(r"\s#", value)
            if comment:
                value = value[: comment.start()].rstrip()
        values[key] = value
        i, line_number = end + 1, line_number + 1
    return values


def _quoted(text: str, start: int, quote: str, source: str, line: int) -> tuple[str, int]:
    out: list[str] = []
    i = start
    while i < len(text):
        char = text[i]
        if char == quote:
            return "".join(out), i + 1
        if char == "\\" and quote == '"' and i + 1 < len(text):
            following = text[i + 1]
            out.append(_ESCAPES.get(following, "\\" + following))
            i += 2
            continue
        out.append(char)
        i += 1
    raise UsageError(f"{source}:{line}: the value's {quote} quote is never closed")
