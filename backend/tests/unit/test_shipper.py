"""The log shipper against real files and the real Redis: every line exactly once, whatever
happens to the files or to the shipper itself."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from redis.asyncio import Redis

from caboose.logs.entries import LogEntry
from caboose.logs.redaction import MASK, Redactor
from caboose.logs.shipper import (
    LogFile,
    LogShipper,
    ShipperKeys,
    is_shipping,
    start_shipping,
    stop_shipping,
)
from caboose.logs.store import LogStore, list_chunks

SECRET = "sup3r-s3cret-v4lue"


async def eventually(check: Callable[[], Awaitable[bool]], *, timeout: float = 15.0) -> None:
    """Poll ``check`` until it holds (a deadline, not a guess of how long things take)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


@dataclass
class Shipping:
    redis: Redis
    store: LogStore
    keys: ShipperKeys
    directory: Path
    deployment_id: str
    shippers: list[tuple[LogShipper, asyncio.Task[None]]]

    def start(self, **options: object) -> LogShipper:
        async def provider(deployment_id: str) -> Redactor:
            return Redactor([SECRET])

        options.setdefault("poll_interval", 0.01)
        options.setdefault("lease_ttl", 2.0)
        shipper = LogShipper(self.store, provider, keys=self.keys, **options)  # type: ignore[arg-type]
        self.shippers.append((shipper, asyncio.create_task(shipper.run())))
        return shipper

    async def stop(self, shipper: LogShipper) -> None:
        for candidate, task in self.shippers:
            if candidate is shipper:
                shipper.stop()
                await task

    async def lines(self) -> list[LogEntry]:
        page = await self.store.read(self.deployment_id, limit=1_000_000)
        return page.items

    async def count(self) -> int:
        return len(await self.lines())

    async def wait_for(self, count: int, *, timeout: float = 15.0) -> list[LogEntry]:
        async def reached() -> bool:
            return await self.count() >= count

        await eventually(reached, timeout=timeout)
        return await self.lines()

    async def cycles(self, shipper: LogShipper, rounds: int = 3) -> None:
        """Let ``shipper`` complete a few full polling rounds."""
        target = shipper.cycles + rounds

        async def done() -> bool:
            return shipper.cycles >= target

        await eventually(done)


@pytest.fixture
async def shipping(redis: Redis, tmp_path: Path) -> AsyncIterator[Shipping]:
    deployment_id = str(uuid.uuid4())
    keys = ShipperKeys(f"test:ship:{uuid.uuid4()}")
    store = LogStore(redis, tmp_path / "archive", max_lines=100_000, chunk_lines=50_000)
    directory = tmp_path / "pm2-logs"
    directory.mkdir()
    state = Shipping(redis, store, keys, directory, deployment_id, [])
    try:
        yield state
    finally:
        for shipper, task in state.shippers:
            shipper.stop()
            await task
        await store.delete(deployment_id)
        await redis.delete(*keys.all())


def write(path: Path, text: str) -> None:
    with path.open("a") as handle:
        handle.write(text)


def numbered(start: int, stop: int, prefix: str = "") -> str:
    return "".join(f"{prefix}{n}\n" for n in range(start, stop))


def texts(entries: list[LogEntry]) -> list[str]:
    return [entry.line for entry in entries]


async def test_lines_are_shipped_with_their_replica_and_stream_redacted(
    shipping: Shipping,
) -> None:
    out, err = shipping.directory / "web-0-out.log", shipping.directory / "web-0-err.log"
    write(out, f"\x1b[32mready\x1b[0m on :3000\npassword={SECRET}\n")
    shipper = shipping.start()
    await shipper.follow(shipping.deployment_id, 0, "stdout", out)
    await shipper.follow(shipping.deployment_id, 0, "stderr", err)
    write(err, "warning: deprecated\r\n")
    entries = await shipping.wait_for(3)
    by_stream = {(e.stream, e.line) for e in entries}
    assert by_stream == {
        ("stdout", "\x1b[32mready\x1b[0m on :3000"),
        ("stdout", f"password={MASK}"),
        ("stderr", "warning: deprecated"),
    }
    assert {e.replica for e in entries} == {0}
    assert all(SECRET not in e.line for e in entries)


async def test_a_partial_line_waits_for_its_newline(shipping: Shipping) -> None:
    path = shipping.directory / "app.log"
    shipper = shipping.start()
    await shipper.follow(shipping.deployment_id, 1, "stdout", path)
    write(path, "first\nhalf of a li")
    await shipping.wait_for(1)
    await shipping.cycles(shipper)
    assert texts(await shipping.lines()) == ["first"]
    write(path, "ne\n")
    assert texts(await shipping.wait_for(2)) == ["first", "half of a line"]


async def test_rotation_by_rename_while_running_loses_nothing(shipping: Shipping) -> None:
    path = shipping.directory / "app.log"
    shipper = shipping.start(max_read_bytes=512)
    await shipper.follow(shipping.deployment_id, 0, "stdout", path)
    write(path, numbered(0, 500))
    await shipping.wait_for(1)  # it has the file open (and is far from its end)
    path.rename(shipping.directory / "app__2026-01-01.log")
    write(shipping.directory / "app__2026-01-01.log", numbered(500, 600))  # PM2's old handle
    write(path, numbered(600, 1000))
    assert texts(await shipping.wait_for(1000)) == [str(n) for n in range(1000)]


async def test_truncation_starts_over_without_repeating(shipping: Shipping) -> None:
    path = shipping.directory / "app.log"
    shipper = shipping.start()
    await shipper.follow(shipping.deployment_id, 0, "stdout", path)
    write(path, numbered(0, 50))
    await shipping.wait_for(50)
    path.write_text("")  # `pm2 flush`, or copy-and-truncate rotation
    await shipping.cycles(shipper)
    write(path, numbered(50, 60))
    assert texts(await shipping.wait_for(60)) == [str(n) for n in range(60)]
    # Truncated and refilled past the old size before the shipper looked: the fingerprint of
    # the first bytes tells the new content from the old.
    await shipping.stop(shipper)
    path.write_text(numbered(1000, 1100))
    shipping.start()
    assert texts(await shipping.wait_for(160))[60:] == [str(n) for n in range(1000, 1100)]


async def test_app_restarts_append_to_the_same_file(shipping: Shipping) -> None:
    path = shipping.directory / "app.log"
    shipper = shipping.start()
    await shipper.follow(shipping.deployment_id, 0, "stdout", path)
    for run in range(3):  # each run: a new process opening the file in append mode
        write(path, f"starting run {run}\n" + numbered(0, 5, prefix=f"r{run}-"))
    expected = [
        line
        for run in range(3)
        for line in [f"starting run {run}"] + [f"r{run}-{n}" for n in range(5)]
    ]
    assert texts(await shipping.wait_for(18)) == expected


async def test_a_restarted_shipper_resumes_where_it_stopped(shipping: Shipping) -> None:
    path = shipping.directory / "app.log"
    shipper = shipping.start()
    await shipper.follow(shipping.deployment_id, 0, "stdout", path)
    write(path, numbered(0, 100) + "partial")
    await shipping.wait_for(100)
    await shipping.stop(shipper)
    # While it is down: more lines, the partial one finished, and a rotation.
    write(path, " line\n" + numbered(100, 150))
    path.rename(shipping.directory / "app.log.1")
    write(path, numbered(150, 200))
    shipping.start()
    expected = [str(n) for n in range(100)] + ["partial line"] + [str(n) for n in range(100, 200)]
    assert texts(await shipping.wait_for(201)) == expected


async def test_only_one_of_two_shippers_ships(shipping: Shipping) -> None:
    path = shipping.directory / "app.log"
    first = shipping.start()
    second = shipping.start()
    await first.follow(shipping.deployment_id, 0, "stdout", path)
    write(path, numbered(0, 300))
    await shipping.wait_for(300)
    assert first.has_lease != second.has_lease
    holder = first if first.has_lease else second
    await shipping.stop(holder)  # releases the lease: the other takes over at once
    write(path, numbered(300, 400))
    assert texts(await shipping.wait_for(400)) == [str(n) for n in range(400)]


async def test_stopping_drains_the_last_line_and_archives(shipping: Shipping) -> None:
    path = shipping.directory / "app.log"
    shipper = shipping.start()
    await shipper.follow(shipping.deployment_id, 0, "stdout", path)
    write(path, numbered(0, 20) + "exit without newline")
    await shipping.wait_for(20)
    await stop_shipping(shipping.redis, shipping.deployment_id, archive=True, keys=shipping.keys)

    async def drained() -> bool:
        return not await is_shipping(shipping.redis, shipping.deployment_id, keys=shipping.keys)

    await eventually(drained)
    await shipping.cycles(shipper)
    assert texts(await shipping.lines()) == [str(n) for n in range(20)] + ["exit without newline"]
    chunks = list_chunks(shipping.store.archive_dir(shipping.deployment_id))
    assert sum(chunk.line_count for chunk in chunks) == 21
    assert await shipping.redis.hlen(shipping.keys.offsets) == 0


async def test_nothing_is_shipped_unredacted_when_the_redactor_fails(shipping: Shipping) -> None:
    attempts = 0

    async def flaky(deployment_id: str) -> Redactor:
        nonlocal attempts
        attempts += 1
        if attempts < 3:
            raise ConnectionError("database unavailable")
        return Redactor([SECRET])

    shipper = LogShipper(shipping.store, flaky, keys=shipping.keys, poll_interval=0.01)
    shipping.shippers.append((shipper, asyncio.create_task(shipper.run())))
    path = shipping.directory / "app.log"
    write(path, f"token {SECRET}\n")
    await shipper.follow(shipping.deployment_id, 0, "stdout", path)
    assert texts(await shipping.wait_for(1)) == [f"token {MASK}"]
    assert attempts == 3


# Importing redis-py takes seconds on a loaded machine: one helper process imports everything
# once, then forks a fresh shipper (its own event loop and connections) for each "spawn".
_SHIPPER_FORKER = textwrap.dedent(
    """
    import asyncio, os, signal, sys
    from pathlib import Path
    from redis.asyncio import Redis
    from caboose.logs.redaction import Redactor
    from caboose.logs.shipper import LogShipper, ShipperKeys
    from caboose.logs.store import LogStore

    async def ship(url, namespace, archive):
        redis = Redis.from_url(url, decode_responses=True)
        store = LogStore(redis, Path(archive), max_lines=100_000, chunk_lines=50_000)

        async def provider(deployment_id):
            return Redactor([])

        shipper = LogShipper(
            store, provider, keys=ShipperKeys(namespace), poll_interval=0.005,
            max_read_bytes=1024, lease_ttl=0.3,
        )
        await shipper.run()

    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children reap themselves
    print("ready", flush=True)
    for command in sys.stdin:
        pid = os.fork()
        if pid == 0:
            try:
                asyncio.run(ship(*sys.argv[1:]))
            finally:
                os._exit(0)
        print(pid, flush=True)
    """
)


async def test_killing_the_shipper_loses_and_repeats_nothing(
    shipping: Shipping, redis_url: str
) -> None:
    path = shipping.directory / "app.log"
    total = 8_000
    forker = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _SHIPPER_FORKER,
            redis_url,
            shipping.keys.namespace,
            str(shipping.store.archive_root),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert forker.stdin is not None and forker.stdout is not None
    children: list[int] = []

    def spawn() -> int:
        assert forker.stdin is not None and forker.stdout is not None
        forker.stdin.write("spawn\n")
        forker.stdin.flush()
        children.append(int(forker.stdout.readline()))
        return children[-1]

    stream = f"caboose:logs:{shipping.deployment_id}"

    async def stored() -> int:
        return int(await shipping.redis.xlen(stream))

    try:
        assert forker.stdout.readline().strip() == "ready"
        await start_shipping(
            shipping.redis,
            [LogFile(shipping.deployment_id, 0, "stdout", path)],
            keys=shipping.keys,
        )
        write(path, numbered(0, total // 2))
        shipper = spawn()
        for kill_at in (800, 2_400, 3_900, 6_000):
            if kill_at > total // 2 and not path.with_suffix(".1").exists():
                path.rename(path.with_suffix(".1"))  # rotate while shipping
                write(path.with_suffix(".1"), numbered(total // 2, total // 2 + 10))
                write(path, numbered(total // 2 + 10, total))

            async def reached(threshold: int = kill_at) -> bool:
                return await stored() >= threshold

            await eventually(reached, timeout=30)
            os.kill(shipper, signal.SIGKILL)  # no cleanup, no lease release
            shipper = spawn()

        async def complete() -> bool:
            return await stored() >= total

        await eventually(complete, timeout=30)
    finally:
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        forker.kill()
        forker.wait()
    assert texts(await shipping.lines()) == [str(n) for n in range(total)]
