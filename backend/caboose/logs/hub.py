"""Fan-out of Redis Streams to the WebSockets of one API process.

Why a hub: a hundred dashboards following one deployment must not mean a hundred blocking
``XREAD`` connections and a hundred JSON encodings of every line. Per process, each followed key
has one reader task doing ``XREAD BLOCK`` (it sleeps in Redis until a line arrives: no polling),
which hands each batch to every local subscriber's queue; encodings are cached on the batch, so
identical messages are built once per process.

The guarantee a subscriber relies on: once :meth:`StreamHub.subscribe` returns, every entry
with an id above :attr:`Subscription.start` reaches its queue, and every entry up to ``start``
already existed. A subscriber therefore reads history *after* subscribing and drops queued
entries it already sent: no gap, no repeat.

A reader that falls further behind than the stream's bound (a saturated process) would find
the oldest entries gone, trimmed into the archive. Each read also tells whether that happened;
the reader then recovers them through the key's *filler* (log streams: the store, archive
included), or, with none (events), hands subscribers a batch marked ``gap``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Final

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from caboose.logs.streams import RawEntry, StreamRanges, as_text, decode_entries

logger = logging.getLogger("caboose.logs.hub")

_RETRY_SECONDS: Final = 1.0


# Given a key and a cursor, yields everything after the cursor (in batches, oldest first) from
# wherever it is kept: for log streams, the archive then Redis (see LogStore.read).
GapFiller = Callable[[str, str], AsyncIterator[list[RawEntry]]]


class Batch:
    """Entries read together, shared by every subscriber, with per-encoding caches.

    ``gap`` marks a batch after which entries may be missing: the stream was trimmed past the
    reader before it read them and no filler could recover them (events streams).
    """

    __slots__ = ("_cache", "entries", "gap")

    def __init__(self, entries: list[RawEntry], *, gap: bool = False) -> None:
        self.entries = entries
        self.gap = gap
        self._cache: dict[str, Any] = {}

    @property
    def last_id(self) -> str:
        return self.entries[-1][0]

    def cached(self, name: str, build: Callable[[list[RawEntry]], Any]) -> Any:
        if name not in self._cache:
            self._cache[name] = build(self.entries)
        return self._cache[name]


@dataclass(eq=False)
class Subscription:
    key: str
    start: str
    max_backlog: int
    queue: asyncio.Queue[Batch] = field(default_factory=asyncio.Queue)
    backlog: int = 0
    overflowed: bool = False

    async def get(self) -> Batch:
        batch = await self.queue.get()
        self.backlog -= len(batch.entries)
        return batch

    def _offer(self, batch: Batch) -> None:
        if self.overflowed:
            return
        if self.backlog + len(batch.entries) > self.max_backlog:
            # Too slow to keep up: stop queueing (memory stays bounded); the consumer sees
            # ``overflowed`` once its queue is empty and tells the client to resume.
            self.overflowed = True
            return
        self.backlog += len(batch.entries)
        self.queue.put_nowait(batch)


class _Reader:
    def __init__(self, hub: StreamHub, key: str, cursor: str) -> None:
        self.hub = hub
        self.key = key
        self.cursor = cursor
        self.subscribers: set[Subscription] = set()
        self.task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        while True:
            try:
                # XREAD BLOCK only to sleep until something arrives (COUNT 1: parsing entries
                # with redis-py is slow); the batch itself comes packed, see StreamRanges.
                woken = await self.hub.redis.xread(
                    {self.key: self.cursor}, count=1, block=self.hub.block_ms
                )
                if not _xread_entries(woken):
                    continue
                gap, last, entries = await self.hub.ranges.follow(
                    self.key,
                    after=self.cursor,
                    count=self.hub.count,
                    from_start=self.hub.filler_for(self.key) is not None,
                )
                if gap:
                    await self._recover(last, entries)
                    continue
            except RedisError:
                logger.warning("reading %s failed; retrying", self.key, exc_info=True)
                await asyncio.sleep(_RETRY_SECONDS)
                continue
            if entries:
                self._deliver(Batch(entries))

    def _deliver(self, batch: Batch) -> None:
        if batch.entries:
            self.cursor = batch.last_id
        for subscriber in self.subscribers:
            subscriber._offer(batch)

    async def _recover(self, last: str, entries: list[RawEntry]) -> None:
        """The stream was trimmed past this reader (it fell behind by more than the stream's
        bound): fetch what was trimmed from where it went, or say that something is missing."""
        filler = self.hub.filler_for(self.key)
        if filler is not None:
            async for chunk in filler(self.key, self.cursor):
                if chunk:
                    self._deliver(Batch(chunk))
            return
        self._deliver(Batch(entries, gap=True))
        if not entries and last:
            self.cursor = last


def _xread_entries(response: Any) -> list[RawEntry]:
    if not response:
        return []
    if isinstance(response, dict):  # RESP3
        streams = list(response.values())
        return decode_entries(streams[0][0] if streams and streams[0] else [])
    return decode_entries(response[0][1])


class StreamHub:
    """One per process (``hub_for(app)``); ``subscribe`` / ``unsubscribe`` per WebSocket."""

    def __init__(self, redis: Redis, *, block_ms: int = 2_000, count: int = 1_000) -> None:
        self.redis = redis
        # Each XREAD blocks in Redis for at most this long, then is issued again: it must stay
        # under the client's socket timeout (redis-py's default is 5 s), or the wait itself
        # would look like a dead connection.
        timeout = redis.connection_pool.connection_kwargs.get("socket_timeout")
        if isinstance(timeout, int | float) and timeout > 0:
            block_ms = min(block_ms, max(100, round(timeout * 1000) - 1_000))
        self.block_ms = block_ms
        self.count = count
        self.ranges = StreamRanges(redis)
        # Key prefix → how to recover entries trimmed before this process read them.
        self.fillers: dict[str, GapFiller] = {}
        self._readers: dict[str, _Reader] = {}
        self._lock = asyncio.Lock()

    def filler_for(self, key: str) -> GapFiller | None:
        for prefix, filler in self.fillers.items():
            if key.startswith(prefix):
                return filler
        return None

    async def _current_id(self, key: str) -> str:
        try:
            info = await self.redis.xinfo_stream(key)
        except ResponseError:  # no such key yet: everything that comes is new
            return "0-0"
        for name, value in info.items():
            if as_text(name) == "last-generated-id":
                return as_text(value) or "0-0"
        return "0-0"

    async def subscribe(self, key: str, *, max_backlog: int = 50_000) -> Subscription:
        async with self._lock:
            reader = self._readers.get(key)
            if reader is None:
                reader = _Reader(self, key, await self._current_id(key))
                self._readers[key] = reader
                reader.task = asyncio.create_task(reader.run(), name=f"stream-hub:{key}")
            subscription = Subscription(key, reader.cursor, max_backlog)
            reader.subscribers.add(subscription)
            return subscription

    async def unsubscribe(self, subscription: Subscription) -> None:
        async with self._lock:
            reader = self._readers.get(subscription.key)
            if reader is None:
                return
            reader.subscribers.discard(subscription)
            if reader.subscribers:
                return
            del self._readers[subscription.key]
            task = reader.task
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    @property
    def followed_keys(self) -> list[str]:
        return list(self._readers)


def hub_for(state: Any) -> StreamHub:
    """The process's hub, kept on ``app.state`` (created on first use, on the app's Redis)."""
    hub = getattr(state, "stream_hub", None)
    if isinstance(hub, StreamHub) and hub.redis is state.redis:
        return hub
    hub = StreamHub(state.redis)
    state.stream_hub = hub
    return hub
