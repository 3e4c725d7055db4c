"""The log store: a Redis Stream per deployment, and an archive of gzip chunks behind it.

Writing. ``append`` adds a batch of lines with one Lua call, atomically with an optional
*checkpoint* (the shipper's file offset, so a line and the offset past it are stored together or
not at all: a crash can neither lose nor repeat a line) and an optional *fence* (the shipper's
lease: a shipper that lost its lease can no longer write).

Bounding. Redis keeps about ``max_lines`` lines per deployment. Once a stream holds a chunk more
than that, its oldest ``chunk_lines`` lines are written to ``<archive>/<deployment>/`` as one
gzip JSON-lines file and only then trimmed from Redis, so trimming never loses history.
``archive_all`` moves everything of a finished deployment. ``XADD MAXLEN ~`` still caps each
stream at a few times ``max_lines`` in case archiving fails (a full disk): Redis memory stays
bounded whatever happens, at the price of the oldest lines then. A writer that outpaces
archiving waits for it (from three chunks over), so lines are only ever dropped that way when
archiving fails, never because it is slow.

The archive's index is its directory listing. A chunk is written to a temporary name, fsynced,
and renamed to ``<first id>_<last id>_<count>.jsonl.gz``: a chunk exists completely or not at
all, and its name says which ids it holds, so there is no separate index to fall out of step
with the files (which a database table would need a two-system commit to avoid). A crash between
the rename and the trim leaves lines in both places; the next archiving trims them, and readers
take the archive only below the first id still in Redis, so nobody sees them twice.

Reading. A page is read from Redis *first*, then the archive is listed: any line trimmed before
that Redis read was archived before it was trimmed, so it is in the listing; the archive is used
strictly below the first id of the Redis page. No line is missed or repeated even while
archiving runs concurrently.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gzip
import json
import logging
import os
import re
import secrets
import shutil
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from redis.asyncio import Redis

from caboose.logs.entries import (
    LogEntry,
    LogLine,
    StreamId,
    clip,
    format_id,
    parse_id,
    successor,
)
from caboose.logs.streams import StreamRanges, as_text
from caboose.logs.streams import decode_entries as decode_entries  # re-exported (older imports)

logger = logging.getLogger("caboose.logs")

KEY_PREFIX: Final = "caboose:logs:"
_LOCK_PREFIX: Final = "caboose:logs-archive-lock:"
_CHUNK_RE = re.compile(r"^(\d+-\d+)_(\d+-\d+)_(\d+)\.jsonl\.gz$")
_SCAN_PAGE: Final = 1_000
_LOCK_TTL_MS: Final = 120_000

# KEYS: stream, checkpoint hash, fence key. ARGV: hard cap, fence token ("" = none), checkpoint
# field ("" = none), checkpoint value, then one argument per line: "ts<US>stream<US>replica<US>
# line" (US = \x1f, which no ts, stream or replica contains). One argument per line rather than
# four, and only the last id back: packing arguments and parsing replies is most of the client's
# cost of an append.
_APPEND = """
if ARGV[2] ~= '' and redis.call('GET', KEYS[3]) ~= ARGV[2] then
  return redis.error_reply('FENCED the log shipper lease is held by another shipper')
end
local last = false
for i = 5, #ARGV do
  local ts, stream, replica, line =
    string.match(ARGV[i], '^([^\\31]*)\\31([^\\31]*)\\31([^\\31]*)\\31(.*)$')
  last = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*',
    'ts', ts, 'stream', stream, 'replica', replica, 'line', line)
end
if ARGV[3] ~= '' then
  redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])
end
return {redis.call('XLEN', KEYS[1]), last}
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class FencedError(RuntimeError):
    """An append carried a fence (a lease token) that is no longer the current holder's."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """``HSET key field value``, done atomically with an append."""

    key: str
    field: str
    value: str


@dataclass(frozen=True, slots=True)
class Fence:
    """Appends succeed only while ``GET key == token``."""

    key: str
    token: str


@dataclass(frozen=True, slots=True)
class LogPage:
    items: list[LogEntry]
    # Pass as ``since`` to continue; None when this page reached the end of what is stored.
    next: str | None


@dataclass(frozen=True, slots=True)
class ArchiveChunk:
    path: Path
    first_id: str
    last_id: str
    line_count: int

    @property
    def first(self) -> StreamId:
        return parse_id(self.first_id)

    @property
    def last(self) -> StreamId:
        return parse_id(self.last_id)


def stream_key(deployment_id: str) -> str:
    return f"{KEY_PREFIX}{deployment_id}"


# The archive on disk (blocking: called through ``asyncio.to_thread``) ------------------------


def list_chunks(directory: Path) -> list[ArchiveChunk]:
    chunks: list[ArchiveChunk] = []
    try:
        paths = list(directory.iterdir())
    except FileNotFoundError:
        return chunks
    for path in paths:
        match = _CHUNK_RE.match(path.name)
        if match is not None:
            first, last, count = match.groups()
            chunks.append(ArchiveChunk(path, first, last, int(count)))
    chunks.sort(key=lambda chunk: chunk.first)
    return chunks


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_chunk(directory: Path, entries: Sequence[LogEntry]) -> ArchiveChunk:
    """Write ``entries`` as one chunk, atomically (temporary file, fsync, rename)."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    first, last = entries[0].id, entries[-1].id
    final = directory / f"{first}_{last}_{len(entries)}.jsonl.gz"
    temporary = directory / f".{final.name}.{secrets.token_hex(4)}.tmp"
    payload = "".join(
        json.dumps(entry.to_archive(), ensure_ascii=False, separators=(",", ":")) + "\n"
        for entry in entries
    ).encode()
    try:
        with temporary.open("wb") as raw:
            with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0) as compressed:
                compressed.write(payload)
            raw.flush()
            os.fsync(raw.fileno())
        temporary.replace(final)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _fsync_directory(directory)
    return ArchiveChunk(final, first, last, len(entries))


@functools.lru_cache(maxsize=16)
def _load_chunk(path: str) -> tuple[LogEntry, ...]:
    # Chunks never change once renamed into place: caching by path is safe.
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return tuple(LogEntry.from_archive(json.loads(line)) for line in handle if line.strip())


def load_chunk(chunk: ArchiveChunk) -> tuple[LogEntry, ...]:
    return _load_chunk(str(chunk.path))


def _remove_temporaries(directory: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        for path in directory.iterdir():
            if path.name.endswith(".tmp"):
                path.unlink(missing_ok=True)


# The store ----------------------------------------------------------------------------------

Matcher = Callable[[LogEntry], bool]


def _matcher(streams: Iterable[str] | None, search: str | None) -> Matcher | None:
    wanted = frozenset(streams) if streams else None
    needle = search.casefold() if search else None
    if wanted is None and needle is None:
        return None

    def matches(entry: LogEntry) -> bool:
        if wanted is not None and entry.stream not in wanted:
            return False
        return needle is None or needle in entry.line.casefold()

    return matches


class LogStore:
    """Append, read and archive the log lines of deployments.

    ``redis`` may be any asyncio client; ``archive_root`` is ``<data_dir>/logs/archive``.
    Archiving triggered by appends runs in background tasks of this store: call ``aclose``
    before dropping a store that appended (the shipper and the writer do).
    """

    def __init__(
        self,
        redis: Redis,
        archive_root: Path,
        *,
        max_lines: int = 10_000,
        chunk_lines: int = 5_000,
    ) -> None:
        if max_lines < 1 or chunk_lines < 1:
            raise ValueError("max_lines and chunk_lines must be positive")
        self.redis = redis
        self.archive_root = archive_root
        self.max_lines = max_lines
        self.chunk_lines = chunk_lines
        # Archiving runs in the background from a chunk over max_lines; a writer that outpaces
        # it waits from here; the cap is only for when archiving fails outright (a full disk).
        self.backpressure_at = max_lines + 3 * chunk_lines
        self.hard_cap = max(10 * max_lines, max_lines + 8 * chunk_lines)
        self._append_script = redis.register_script(_APPEND)
        self._release_script = redis.register_script(_RELEASE)
        self._ranges = StreamRanges(redis)
        self._archiving: dict[str, asyncio.Task[int]] = {}

    # Writing ------------------------------------------------------------------------------

    async def append(
        self,
        deployment_id: str,
        lines: Sequence[LogLine],
        *,
        checkpoint: Checkpoint | None = None,
        fence: Fence | None = None,
    ) -> str | None:
        """Store ``lines`` (already redacted) in order; returns the id of the last one.

        Raises :class:`FencedError` when ``fence`` no longer holds (nothing was stored).
        """
        if not lines and checkpoint is None:
            return None
        args: list[str | int] = [
            self.hard_cap,
            fence.token if fence else "",
            checkpoint.field if checkpoint else "",
            checkpoint.value if checkpoint else "",
        ]
        for line in lines:
            replica = "" if line.replica is None else str(line.replica)
            args.append(
                f"{round(line.ts * 1000)}\x1f{line.stream}\x1f{replica}\x1f{clip(line.line)}"
            )
        keys = [
            stream_key(deployment_id),
            checkpoint.key if checkpoint else stream_key(deployment_id),
            fence.key if fence else stream_key(deployment_id),
        ]
        try:
            length, last = await self._append_script(keys=keys, args=args)
        except Exception as exc:
            if "FENCED" in str(exc):
                raise FencedError(str(exc)) from exc
            raise
        length = int(length)
        if length >= self.max_lines + self.chunk_lines:
            task = self._archive_in_background(deployment_id)
            if length >= self.backpressure_at:
                # Archiving fell behind this writer: wait for it rather than let the stream
                # grow towards the cap, where lines would be dropped unarchived.
                await asyncio.wait([task])
        return as_text(last) if last else None

    def _archive_in_background(self, deployment_id: str) -> asyncio.Task[int]:
        running = self._archiving.get(deployment_id)
        if running is not None and not running.done():
            return running
        task = asyncio.create_task(self.archive_overflow(deployment_id))
        self._archiving[deployment_id] = task
        task.add_done_callback(functools.partial(self._archived, deployment_id))
        return task

    def _archived(self, deployment_id: str, task: asyncio.Task[int]) -> None:
        if self._archiving.get(deployment_id) is task:
            del self._archiving[deployment_id]
        if not task.cancelled() and task.exception() is not None:
            logger.error(
                "archiving the logs of deployment %s failed",
                deployment_id,
                exc_info=task.exception(),
            )

    async def aclose(self) -> None:
        """Wait for background archiving started by this store's appends."""
        tasks = list(self._archiving.values())
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    # Archiving ----------------------------------------------------------------------------

    def archive_dir(self, deployment_id: str) -> Path:
        return self.archive_root / deployment_id

    async def archive_overflow(self, deployment_id: str) -> int:
        """Move whole chunks of the oldest lines to the archive while Redis holds more than
        ``max_lines`` + a chunk. Returns the number of lines moved (0 if another process is
        archiving this deployment right now: it does the same work)."""
        return await self._archive(deployment_id, keep=self.max_lines, wait=False)

    async def archive_all(self, deployment_id: str, *, lock_wait_seconds: float = 60.0) -> int:
        """Move every line of a finished deployment to the archive (idempotent).

        The stream itself stays, empty, so ids given later keep increasing; lines appended
        after this (a straggler) are still read, from Redis.
        """
        return await self._archive(
            deployment_id, keep=0, wait=True, lock_wait_seconds=lock_wait_seconds
        )

    async def _archive(
        self, deployment_id: str, *, keep: int, wait: bool, lock_wait_seconds: float = 60.0
    ) -> int:
        lock = f"{_LOCK_PREFIX}{deployment_id}"
        token = secrets.token_hex(8)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + lock_wait_seconds
        while not await self.redis.set(lock, token, nx=True, px=_LOCK_TTL_MS):
            if not wait:
                return 0
            if loop.time() > deadline:
                raise TimeoutError(f"the logs of {deployment_id} are being archived elsewhere")
            await asyncio.sleep(0.05)  # another process holds the lock: it finishes in ms
        try:
            return await self._archive_locked(deployment_id, keep=keep)
        finally:
            await self._release_script(keys=[lock], args=[token])

    async def _archive_locked(self, deployment_id: str, *, keep: int) -> int:
        key = stream_key(deployment_id)
        directory = self.archive_dir(deployment_id)
        await asyncio.to_thread(_remove_temporaries, directory)
        chunks = await asyncio.to_thread(list_chunks, directory)
        after = chunks[-1].last_id if chunks else None
        if after is not None:
            # A crash after a rename and before its trim left archived lines in Redis.
            await self.redis.xtrim(key, minid=successor(after), approximate=False)
        moved = 0
        while True:
            excess = int(await self.redis.xlen(key)) - keep
            size = min(self.chunk_lines, excess)
            if size <= 0 or (keep > 0 and size < self.chunk_lines):
                return moved
            raw = await self._ranges.range(key, after=after, count=size)
            entries = [LogEntry.from_fields(i, f) for i, f in raw]
            if not entries:
                return moved
            chunk = await asyncio.to_thread(write_chunk, directory, entries)
            await self.redis.xtrim(key, minid=successor(chunk.last_id), approximate=False)
            after = chunk.last_id
            moved += len(entries)

    async def delete(self, deployment_id: str) -> None:
        """Forget a deployment's logs entirely (its deployment was deleted)."""
        await self.redis.delete(stream_key(deployment_id))
        await asyncio.to_thread(shutil.rmtree, self.archive_dir(deployment_id), True)

    # Reading ------------------------------------------------------------------------------

    async def _redis_range(
        self, deployment_id: str, after: str | None, count: int
    ) -> list[LogEntry]:
        raw = await self._ranges.range(stream_key(deployment_id), after=after, count=count)
        return [LogEntry.from_fields(i, f) for i, f in raw]

    async def _archived_between(
        self, deployment_id: str, after: str | None, before: str | None
    ) -> list[ArchiveChunk]:
        """Chunks holding ids in the open interval (after, before)."""
        chunks = await asyncio.to_thread(list_chunks, self.archive_dir(deployment_id))
        low = parse_id(after) if after else None
        high = parse_id(before) if before else None
        return [
            chunk
            for chunk in chunks
            if (low is None or chunk.last > low) and (high is None or chunk.first < high)
        ]

    async def read(
        self,
        deployment_id: str,
        *,
        since: str | None = None,
        limit: int = 1_000,
        streams: Iterable[str] | None = None,
        search: str | None = None,
        scan_limit: int = 100_000,
    ) -> LogPage:
        """Up to ``limit`` lines after ``since`` (oldest first), from the archive then Redis.

        ``streams`` keeps only those streams, ``search`` lines containing it (case-insensitive).
        At most ``scan_limit`` lines are examined per call (a rare ``search`` over a long
        history): ``next`` then says where to continue, even if fewer than ``limit`` matched.
        """
        matches = _matcher(streams, search)
        items: list[LogEntry] = []
        cursor = since
        scanned = 0

        def take(entry: LogEntry) -> bool:
            """Consume one entry; False once the page is full."""
            nonlocal cursor, scanned
            cursor = entry.id
            scanned += 1
            if matches is None or matches(entry):
                items.append(entry)
            return len(items) < limit and scanned < scan_limit

        while True:
            page_size = _SCAN_PAGE if matches is not None else min(_SCAN_PAGE, limit - len(items))
            from_redis = await self._redis_range(deployment_id, cursor, page_size)
            boundary = from_redis[0].id if from_redis else None
            chunks = await self._archived_between(deployment_id, cursor, boundary)
            low = parse_id(cursor) if cursor else None
            high = parse_id(boundary) if boundary else None
            for chunk in chunks:
                for entry in await asyncio.to_thread(load_chunk, chunk):
                    key = entry.sort_key
                    if (low is not None and key <= low) or (high is not None and key >= high):
                        continue
                    if not take(entry):
                        return LogPage(items, cursor)
            for entry in from_redis:
                if not take(entry):
                    return LogPage(items, cursor)
            if len(from_redis) < page_size:
                return LogPage(items, None)

    async def tail(self, deployment_id: str, *, lines: int = 1_000) -> list[LogEntry]:
        """The last ``lines`` lines, oldest first (Redis, then the archive for the rest)."""
        raw = await self._ranges.range(stream_key(deployment_id), count=lines, reverse=True)
        newest = [LogEntry.from_fields(i, f) for i, f in raw]
        newest.reverse()
        missing = lines - len(newest)
        if missing > 0:
            boundary = newest[0].id if newest else None
            chunks = await self._archived_between(deployment_id, None, boundary)
            high = parse_id(boundary) if boundary else None
            older: list[LogEntry] = []
            for chunk in reversed(chunks):
                loaded = await asyncio.to_thread(load_chunk, chunk)
                kept = [e for e in loaded if high is None or e.sort_key < high]
                older = kept + older
                if len(older) >= missing:
                    break
            newest = older[-missing:] + newest
        return newest

    async def last_id(self, deployment_id: str) -> str | None:
        """The id of the newest stored line (Redis, else the archive), or None."""
        newest = await self._ranges.range(stream_key(deployment_id), count=1, reverse=True)
        if newest:
            return newest[0][0]
        chunks = await asyncio.to_thread(list_chunks, self.archive_dir(deployment_id))
        return chunks[-1].last_id if chunks else None


def largest_id(ids: Iterable[str]) -> str | None:
    best: StreamId | None = None
    for value in ids:
        parsed = parse_id(value)
        if best is None or parsed > best:
            best = parsed
    return format_id(best) if best is not None else None
