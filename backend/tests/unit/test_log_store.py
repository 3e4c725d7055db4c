"""The log store against the real Redis: order, filters, cursors, trimming into the archive."""

from __future__ import annotations

import asyncio
import gzip
import json
import threading
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from caboose.logs.entries import MAX_LINE_CHARS, LogEntry, LogLine, parse_id
from caboose.logs.redaction import MASK, Redactor
from caboose.logs.store import (
    Checkpoint,
    Fence,
    FencedError,
    LogStore,
    list_chunks,
    write_chunk,
)
from caboose.logs.streams import StreamRanges, decode_entries
from caboose.logs.writer import LogWriter


@pytest.fixture
def deployment_id() -> str:
    return str(uuid.uuid4())


@pytest.fixture
async def store(redis: Redis, tmp_path: Path, deployment_id: str) -> AsyncIterator[LogStore]:
    store = LogStore(redis, tmp_path / "archive", max_lines=20, chunk_lines=10)
    try:
        yield store
    finally:
        await store.aclose()
        await store.delete(deployment_id)


def lines(start: int, stop: int, *, stream: str = "stdout") -> list[LogLine]:
    return [LogLine.now(stream, f"line {n}", replica=0) for n in range(start, stop)]


async def read_all(store: LogStore, deployment_id: str, **filters: object) -> list[LogEntry]:
    page = await store.read(deployment_id, limit=100_000, **filters)  # type: ignore[arg-type]
    assert page.next is None
    return page.items


async def test_appended_lines_come_back_in_order_with_their_fields(
    store: LogStore, deployment_id: str
) -> None:
    last = await store.append(
        deployment_id,
        [
            LogLine(1_700_000_000.123, "build", None, "\x1b[32mStep 1\x1b[0m"),
            LogLine(1_700_000_000.5, "stderr", 2, "oops"),
        ],
    )
    page = await store.read(deployment_id)
    assert page.items[-1].id == last
    assert parse_id(page.items[0].id) < parse_id(page.items[1].id)
    assert page.next is None
    first, second = (entry.to_public() for entry in page.items)
    assert first == {
        "id": page.items[0].id,
        "ts": "2023-11-14T22:13:20.123Z",
        "stream": "build",
        "replica": None,
        "line": "\x1b[32mStep 1\x1b[0m",
    }
    assert (second["stream"], second["replica"], second["line"]) == ("stderr", 2, "oops")


async def test_filters_by_stream_and_search(store: LogStore, deployment_id: str) -> None:
    await store.append(deployment_id, lines(0, 5, stream="stdout") + lines(5, 8, stream="stderr"))
    await store.append(deployment_id, [LogLine.now("build", "Installing NumPy")])
    stderr = await read_all(store, deployment_id, streams=["stderr"])
    assert [e.line for e in stderr] == ["line 5", "line 6", "line 7"]
    both = await read_all(store, deployment_id, streams=["stderr", "build"])
    assert len(both) == 4
    found = await read_all(store, deployment_id, search="NUMPY")
    assert [e.line for e in found] == ["Installing NumPy"]
    assert await read_all(store, deployment_id, search="line 3", streams=["stderr"]) == []


async def test_long_lines_are_cut(store: LogStore, deployment_id: str) -> None:
    await store.append(deployment_id, [LogLine.now("stdout", "x" * (MAX_LINE_CHARS + 10))])
    (entry,) = await read_all(store, deployment_id)
    assert entry.line.startswith("x" * MAX_LINE_CHARS)
    assert entry.line.endswith("[10 more characters]")


async def test_trimming_moves_old_lines_to_the_archive(
    store: LogStore, deployment_id: str, redis: Redis
) -> None:
    for start in range(0, 100, 7):
        await store.append(deployment_id, lines(start, min(start + 7, 100)))
    await store.aclose()  # background archiving done
    in_redis = await redis.xlen(f"caboose:logs:{deployment_id}")
    assert in_redis < store.max_lines + store.chunk_lines
    chunks = list_chunks(store.archive_dir(deployment_id))
    assert sum(chunk.line_count for chunk in chunks) + in_redis == 100
    assert all(chunk.line_count == store.chunk_lines for chunk in chunks)
    with gzip.open(chunks[0].path, "rt") as handle:
        assert json.loads(handle.readline())["line"] == "line 0"
    assert [e.line for e in await read_all(store, deployment_id)] == [
        f"line {n}" for n in range(100)
    ]


async def test_pages_cross_the_archive_boundary_without_gaps_or_repeats(
    store: LogStore, deployment_id: str
) -> None:
    for start in range(0, 95, 5):
        await store.append(deployment_id, lines(start, start + 5))
    await store.aclose()
    for limit in (1, 3, 7, 10, 11, 50):
        seen: list[str] = []
        since = None
        while True:
            page = await store.read(deployment_id, since=since, limit=limit)
            seen += [e.line for e in page.items]
            if page.next is None:
                break
            since = page.next
        assert seen == [f"line {n}" for n in range(95)], limit


async def test_search_scans_are_bounded_and_resumable(store: LogStore, deployment_id: str) -> None:
    await store.append(deployment_id, lines(0, 60))
    await store.aclose()
    found: list[str] = []
    since = None
    rounds = 0
    while True:
        page = await store.read(deployment_id, since=since, search="line 5", scan_limit=15)
        rounds += 1
        found += [e.line for e in page.items]
        if page.next is None:
            break
        since = page.next
    assert found == ["line 5"] + [f"line {n}" for n in range(50, 60)]
    assert rounds >= 4


async def test_archive_all_moves_everything_and_history_stays_whole(
    store: LogStore, deployment_id: str, redis: Redis
) -> None:
    await store.append(deployment_id, lines(0, 37))
    moved = await store.archive_all(deployment_id)
    assert moved == 37
    assert await redis.xlen(f"caboose:logs:{deployment_id}") == 0
    assert await store.archive_all(deployment_id) == 0  # idempotent
    # A straggler after the end is still read, after the archive, with a larger id.
    late = await store.append(deployment_id, [LogLine.now("system", "late line")])
    everything = await read_all(store, deployment_id)
    assert [e.line for e in everything] == [f"line {n}" for n in range(37)] + ["late line"]
    assert everything[-1].id == late
    assert [e.line for e in await store.tail(deployment_id, lines=3)] == [
        "line 35",
        "line 36",
        "late line",
    ]
    assert await store.last_id(deployment_id) == late


async def test_a_crash_between_archiving_and_trimming_repeats_nothing(
    store: LogStore, deployment_id: str, redis: Redis
) -> None:
    await store.append(deployment_id, lines(0, 25))
    raw = await redis.xrange(f"caboose:logs:{deployment_id}", count=10)
    # The chunk reached the disk; the process died before trimming Redis.
    entries = [LogEntry.from_fields(i, f) for i, f in decode_entries(raw)]
    write_chunk(store.archive_dir(deployment_id), entries)
    assert [e.line for e in await read_all(store, deployment_id)] == [
        f"line {n}" for n in range(25)
    ]
    await store.archive_all(deployment_id)
    chunks = list_chunks(store.archive_dir(deployment_id))
    assert sum(c.line_count for c in chunks) == 25
    assert [e.line for e in await read_all(store, deployment_id)] == [
        f"line {n}" for n in range(25)
    ]


async def test_reading_while_lines_are_archived_sees_each_line_once(
    store: LogStore, deployment_id: str
) -> None:
    total = 600

    async def produce() -> None:
        for start in range(0, total, 3):
            await store.append(deployment_id, lines(start, start + 3))
            await asyncio.sleep(0)

    async def consume() -> list[str]:
        seen: list[str] = []
        since = None
        while len(seen) < total:
            page = await store.read(deployment_id, since=since, limit=4)
            seen += [e.line for e in page.items]
            since = page.next or (page.items[-1].id if page.items else since)
            await asyncio.sleep(0)
        return seen

    producer = asyncio.create_task(produce())
    seen = await asyncio.wait_for(consume(), 30)
    await producer
    assert seen == [f"line {n}" for n in range(total)]


async def test_tail_reaches_into_the_archive(store: LogStore, deployment_id: str) -> None:
    await store.append(deployment_id, lines(0, 50))
    await store.aclose()
    tail = await store.tail(deployment_id, lines=45)
    assert [e.line for e in tail] == [f"line {n}" for n in range(5, 50)]
    ids = [parse_id(e.id) for e in tail]
    assert ids == sorted(ids)


async def test_checkpoint_is_stored_with_the_lines_and_a_fence_refuses(
    store: LogStore, deployment_id: str, redis: Redis
) -> None:
    hash_key, fence_key = f"test:{deployment_id}:offsets", f"test:{deployment_id}:lease"
    await redis.set(fence_key, "mine")
    try:
        await store.append(
            deployment_id,
            lines(0, 2),
            checkpoint=Checkpoint(hash_key, "f", "42"),
            fence=Fence(fence_key, "mine"),
        )
        assert await redis.hget(hash_key, "f") == "42"
        with pytest.raises(FencedError):
            await store.append(
                deployment_id,
                lines(2, 3),
                checkpoint=Checkpoint(hash_key, "f", "99"),
                fence=Fence(fence_key, "not mine"),
            )
        assert await redis.hget(hash_key, "f") == "42"
        assert len(await read_all(store, deployment_id)) == 2
    finally:
        await redis.delete(hash_key, fence_key)


async def test_the_writer_stores_lines_from_threads_redacted(
    redis_url: str, tmp_path: Path, store: LogStore, deployment_id: str
) -> None:
    def build() -> None:
        with LogWriter(
            redis_url,
            deployment_id,
            redactor=Redactor(["npm_TOKEN_abcdef"]),
            archive_root=tmp_path / "archive",
            max_lines=20,
            chunk_lines=10,
        ) as writer:

            def emit(k: int) -> None:
                for n in range(50):
                    writer.log(f"t{k} {n} npm_TOKEN_abcdef")

            threads = [threading.Thread(target=emit, args=(k,)) for k in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            writer.log("first\nsecond", stream="system")
            writer.flush()

    await asyncio.to_thread(build)
    entries = await read_all(store, deployment_id)
    assert len(entries) == 202
    assert all("npm_TOKEN" not in e.line for e in entries)
    assert sum(e.line.endswith(MASK) for e in entries) == 200
    for k in range(4):  # each thread's lines in its own order
        own = [e.line.split()[1] for e in entries if e.line.startswith(f"t{k} ")]
        assert own == [str(n) for n in range(50)]
    assert [e.line for e in entries if e.stream == "system"] == ["first", "second"]


async def test_a_follower_learns_when_lines_were_trimmed_before_it_read_them(
    store: LogStore, deployment_id: str, redis: Redis
) -> None:
    ranges = StreamRanges(redis)
    key = f"caboose:logs:{deployment_id}"
    first = await store.append(deployment_id, lines(0, 1))
    assert first is not None
    assert await ranges.follow(key, after=first, count=10) == (False, "", [])
    await store.append(deployment_id, lines(1, 40))
    await store.aclose()  # archived and trimmed
    gap, _, entries = await ranges.follow(key, after=first, count=100)
    assert gap and entries[0][1]["line"] != "line 1"
    everything = await read_all(store, deployment_id)
    gap, _, _ = await ranges.follow(key, after=everything[-2].id, count=100)
    assert not gap  # still in Redis: nothing missed
    await store.archive_all(deployment_id)
    gap, last, entries = await ranges.follow(key, after=everything[-2].id, count=100)
    assert (gap, last, entries) == (True, everything[-1].id, [])
