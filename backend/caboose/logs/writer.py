"""``LogWriter``: build output (and the platform's own ``system`` lines) into the log store.

The build engine is synchronous and reports each output line through ``Reporter.log`` from
whatever thread runs the build. A line must not cost that thread a Redis round trip, and lines
must arrive within tens of milliseconds for the live view. So ``log()`` only stamps the line and
queues it; a thread of the writer's own (with its own event loop and Redis connection, so it
works whether or not the caller runs an event loop) redacts and stores queued lines in batches.
``flush()`` returns once every line logged before it is stored; ``close()`` flushes and stops.

Usage in the build task::

    with LogWriter(redis_url, deployment_id, redactor=redactor, archive_root=root) as writer:
        reporter = SomeReporter(log=writer.log)
        builder.build(..., reporter)
    # everything is stored here
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from pathlib import Path
from types import TracebackType
from typing import Final

from redis.asyncio import Redis

from caboose.logs.entries import STREAMS, LogLine
from caboose.logs.redaction import Redactor
from caboose.logs.store import LogStore

logger = logging.getLogger("caboose.logs.writer")

_RETRY_SECONDS: Final = 0.5


class LogWriter:
    def __init__(
        self,
        redis_url: str,
        deployment_id: str,
        *,
        redactor: Redactor,
        archive_root: Path,
        max_lines: int = 10_000,
        chunk_lines: int = 5_000,
        max_batch: int = 1_000,
    ) -> None:
        self.deployment_id = deployment_id
        self.redactor = redactor
        self._redis_url = redis_url
        self._store_options = {"max_lines": max_lines, "chunk_lines": chunk_lines}
        self._archive_root = archive_root
        self._max_batch = max_batch
        self._queue: deque[LogLine] = deque()
        self._condition = threading.Condition()
        self._logged = 0  # lines handed to log()
        self._stored = 0  # of those, stored
        self._closing = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(
            target=self._thread_main, name=f"log-writer-{deployment_id[:8]}", daemon=True
        )
        self._thread.start()
        self._ready.wait()

    # The caller's side ----------------------------------------------------------------------

    def log(self, line: str, *, stream: str = "build", replica: int | None = None) -> None:
        """Queue one line (thread-safe, never blocks on I/O). Multi-line text is split."""
        if stream not in STREAMS:
            raise ValueError(f"unknown log stream {stream!r}")
        parts = line.splitlines() or [""]
        with self._condition:
            if self._closing:
                raise RuntimeError("this log writer is closed")
            for part in parts:
                self._queue.append(LogLine.now(stream, part, replica=replica))
            self._logged += len(parts)
        self._poke()

    def flush(self, timeout: float = 30.0) -> None:
        """Block until every line logged so far is stored (``TimeoutError`` if Redis is down
        longer than ``timeout``)."""
        with self._condition:
            target = self._logged
            if not self._condition.wait_for(lambda: self._stored >= target, timeout):
                raise TimeoutError(f"{target - self._stored} log lines not stored yet")

    def close(self, timeout: float = 30.0) -> None:
        with self._condition:
            if self._closing:
                return
            self._closing = True
        self._poke()
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError("the log writer did not finish storing its lines")

    def __enter__(self) -> LogWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _poke(self) -> None:
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            loop.call_soon_threadsafe(wake.set)

    # The writer's thread ----------------------------------------------------------------------

    def _thread_main(self) -> None:
        asyncio.run(self._main())

    def _take(self) -> list[LogLine]:
        with self._condition:
            count = min(len(self._queue), self._max_batch)
            return [self._queue.popleft() for _ in range(count)]

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._ready.set()
        redis: Redis = Redis.from_url(self._redis_url, decode_responses=True)
        store = LogStore(redis, self._archive_root, **self._store_options)
        try:
            while True:
                batch = self._take()
                if not batch:
                    with self._condition:
                        if self._closing and not self._queue:
                            return
                    await self._wake.wait()
                    self._wake.clear()
                    continue
                redacted = [
                    LogLine(line.ts, line.stream, line.replica, self.redactor(line.line))
                    for line in batch
                ]
                while True:
                    try:
                        await store.append(self.deployment_id, redacted)
                        break
                    except Exception:
                        logger.warning("storing build log lines failed; retrying", exc_info=True)
                        await asyncio.sleep(_RETRY_SECONDS)
                with self._condition:
                    self._stored += len(batch)
                    self._condition.notify_all()
        finally:
            await store.aclose()
            await redis.aclose()
