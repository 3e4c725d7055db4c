"""Reading Redis Streams fast from Python.

redis-py parses replies in pure Python (unless hiredis is installed): a stream entry of four
fields is eleven RESP elements, read one ``readline`` at a time, about 100 µs per log line on a
small machine — more than everything else a line costs. :class:`StreamRanges` runs ``XRANGE`` /
``XREVRANGE`` inside Redis and returns the whole range as one JSON string, which Python's C
decoder turns back into entries: one RESP element per call instead of eleven per entry.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, Final

from redis.asyncio import Redis

RawEntry = tuple[str, dict[str, str]]

# KEYS[1]: the stream. ARGV: low, high, count, "rev" for newest first. cjson turns an empty
# table into "{}", hence the explicit "[]".
_RANGE: Final = """
local entries
if ARGV[4] == 'rev' then
  entries = redis.call('XREVRANGE', KEYS[1], ARGV[2], ARGV[1], 'COUNT', ARGV[3])
else
  entries = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[2], 'COUNT', ARGV[3])
end
if #entries == 0 then return '[]' end
return cjson.encode(entries)
"""


# KEYS[1]: the stream. ARGV: the cursor (exclusive), count, "1" to check from "0-0" too.
# Returns JSON [gap, last generated id, entries]: gap is 1 when entries after the cursor may
# have been trimmed away before they were read (the oldest entry left is newer than the cursor,
# or the stream was emptied past it). From "0-0" (a stream that did not exist yet) the oldest
# entry is always newer: only callers that can recover cheaply ask for that check.
_FOLLOW: Final = """
local function newer(a, b)
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
  return am > bm or (am == bm and as > bs)
end
local entries = redis.call('XRANGE', KEYS[1], '(' .. ARGV[1], '+', 'COUNT', ARGV[2])
local gap, last = 0, ''
if ARGV[1] ~= '0-0' or ARGV[3] == '1' then
  local head = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
  if #head > 0 then
    if newer(head[1][1], ARGV[1]) then gap = 1 end
  else
    local ok, info = pcall(redis.call, 'XINFO', 'STREAM', KEYS[1])
    if ok then
      for i = 1, #info, 2 do
        if info[i] == 'last-generated-id' then last = info[i + 1] end
      end
      if last ~= '' and newer(last, ARGV[1]) then gap = 1 end
    end
  end
end
local encoded = '[]'
if #entries > 0 then encoded = cjson.encode(entries) end
return '[' .. gap .. ',"' .. last .. '",' .. encoded .. ']'
"""


def as_text(value: Any) -> str:
    """A Redis reply as text, whether the client decodes responses or not."""
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else str(value)


def decode_entries(raw: Iterable[Any] | None) -> list[RawEntry]:
    """Normalise stream entries as redis-py returns them (either kind of client)."""
    entries: list[RawEntry] = []
    for entry_id, fields in raw or ():
        decoded = {as_text(k): as_text(v) for k, v in (fields or {}).items()}
        entries.append((as_text(entry_id), decoded))
    return entries


class StreamRanges:
    """``XRANGE``/``XREVRANGE`` through one Lua call returning JSON (see the module docstring)."""

    def __init__(self, redis: Redis) -> None:
        self._script = redis.register_script(_RANGE)
        self._follow = redis.register_script(_FOLLOW)

    async def range(
        self,
        key: str,
        *,
        after: str | None = None,
        low: str = "-",
        high: str = "+",
        count: int,
        reverse: bool = False,
    ) -> list[RawEntry]:
        """Entries with ``low <= id <= high`` (``after`` = strictly after that id), oldest
        first, or newest first with ``reverse``; at most ``count``."""
        start = f"({after}" if after else low
        reply = await self._script(keys=[key], args=[start, high, count, "rev" if reverse else ""])
        entries: list[RawEntry] = []
        for entry_id, flat in json.loads(as_text(reply)):
            entries.append((entry_id, dict(zip(flat[::2], flat[1::2], strict=True))))
        return entries

    async def follow(
        self, key: str, *, after: str, count: int, from_start: bool = False
    ) -> tuple[bool, str, list[RawEntry]]:
        """For a follower at ``after``: ``(gap, last generated id, entries after it)``.

        ``gap`` says entries after ``after`` may have been trimmed before this read (the
        follower fell behind the stream's bound); the last generated id is only given when the
        stream is empty. ``from_start``: check from ``0-0`` as well."""
        reply = await self._follow(keys=[key], args=[after, count, "1" if from_start else ""])
        gap, last, raw = json.loads(as_text(reply))
        entries = [
            (entry_id, dict(zip(flat[::2], flat[1::2], strict=True))) for entry_id, flat in raw
        ]
        return bool(gap), str(last), entries
