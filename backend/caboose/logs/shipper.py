"""The log shipper: PM2's per-replica log files → redaction → the log store, exactly once.

What it must survive, and how:

- **Its own death** (SIGKILL included). The offset past the last shipped line is stored in the
  same atomic Redis call as the lines themselves (:class:`~caboose.logs.store.Checkpoint`), so
  a restarted shipper resumes exactly after the last stored line: nothing lost, nothing twice.
  A partial last line is never stored; the offset stays before it until its newline arrives.
- **Rotation** (the file renamed, a new one created at the path). The shipper keeps reading the
  old file through its open descriptor until the end, then switches to the new file. If the
  rotation happened while it was down, it finds the old file in the same directory by its inode
  and finishes it first. The saved offset carries the file's device, inode and a fingerprint of
  its first bytes, so a recreated file that reused an inode number is not taken for the old one.
- **Truncation** (``pm2 flush``, copy-and-truncate rotation): the file is read from its start
  again. Lines written between the last read and a copy-and-truncate cannot be seen by anyone;
  rename-based rotation loses nothing.
- **The app restarting**: PM2 appends to the same files; nothing special happens.
- **Two shippers at once** (one per Celery process, a stale one): a Redis lease elects one, and
  every append is *fenced* by the lease token, so a shipper that lost its lease (paused, cut
  off) cannot write a line the new holder also writes.

What it ships is driven by a registry in Redis, so the pipeline (in any process) tells it what
to follow with :func:`start_shipping` / :func:`stop_shipping`, and a restarted platform resumes
everything that was being followed. ``stop_shipping`` drains: the shipper reads the files to
their end (a final line without newline included: the process is gone), removes them from the
registry, and — when asked — moves the deployment's logs to the archive.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from redis.asyncio import Redis
from redis.exceptions import RedisError
from redis.typing import EncodableT, FieldT

from caboose.logs.entries import LogLine
from caboose.logs.redaction import Redactor
from caboose.logs.store import Checkpoint, Fence, FencedError, LogStore
from caboose.logs.streams import as_text

logger = logging.getLogger("caboose.logs.shipper")


@dataclass(frozen=True, slots=True)
class ShipperKeys:
    """Where a shipper keeps its registry, offsets and lease. One namespace per shipping node
    (one today: ``caboose:logs:ship``); tests use their own."""

    namespace: str = "caboose:logs:ship"

    @property
    def files(self) -> str:  # file key → LogFile JSON
        return f"{self.namespace}:files"

    @property
    def stops(self) -> str:  # deployment id → {"archive": bool}
        return f"{self.namespace}:stops"

    @property
    def offsets(self) -> str:  # file key → saved position JSON
        return f"{self.namespace}:offsets"

    @property
    def version(self) -> str:  # bumped on every registry change
        return f"{self.namespace}:version"

    @property
    def lease(self) -> str:
        return f"{self.namespace}:lease"

    def all(self) -> list[str]:
        return [self.files, self.stops, self.offsets, self.version, self.lease]


DEFAULT_KEYS: Final = ShipperKeys()

# A line without a newline longer than this is shipped as it is (a binary blob must not grow
# the buffer forever).
MAX_PARTIAL_BYTES: Final = 64 * 1024
_FINGERPRINT_BYTES: Final = 64
_FULL_SYNC_SECONDS: Final = 5.0
_MAX_RETRY_SECONDS: Final = 5.0

_REFRESH_LEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE_LEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

FileStream = Literal["stdout", "stderr"]
RedactorProvider = Callable[[str], Awaitable[Redactor]]


@dataclass(frozen=True, slots=True)
class LogFile:
    """One file to follow: a replica's stdout or stderr, at the path PM2 writes."""

    deployment_id: str
    replica: int
    stream: FileStream
    path: Path

    @property
    def key(self) -> str:
        return f"{self.deployment_id}:{self.replica}:{self.stream}"

    def to_json(self) -> str:
        return json.dumps(
            {
                "deployment_id": self.deployment_id,
                "replica": self.replica,
                "stream": self.stream,
                "path": str(self.path),
            }
        )

    @classmethod
    def from_json(cls, text: str) -> LogFile:
        data = json.loads(text)
        stream = data["stream"]
        if stream not in ("stdout", "stderr"):
            raise ValueError(f"not a file stream: {stream!r}")
        return cls(str(data["deployment_id"]), int(data["replica"]), stream, Path(data["path"]))


# The registry (what the pipeline calls) ------------------------------------------------------


async def start_shipping(
    redis: Redis, files: Iterable[LogFile], *, keys: ShipperKeys = DEFAULT_KEYS
) -> None:
    """Follow these files (adding to what is followed; idempotent)."""
    mapping: dict[FieldT, EncodableT] = {file.key: file.to_json() for file in files}
    if not mapping:
        return
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hset(keys.files, mapping=mapping)
        for deployment_id in {file.deployment_id for file in files}:
            pipe.hdel(keys.stops, deployment_id)
        pipe.incr(keys.version)
        await pipe.execute()


async def stop_shipping(
    redis: Redis, deployment_id: str, *, archive: bool = True, keys: ShipperKeys = DEFAULT_KEYS
) -> None:
    """Drain and stop following a deployment's files (call once its processes are stopped);
    with ``archive``, its logs then move to the archive (the deployment is over)."""
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hset(keys.stops, deployment_id, json.dumps({"archive": archive}))
        pipe.incr(keys.version)
        await pipe.execute()


async def is_shipping(
    redis: Redis, deployment_id: str, *, keys: ShipperKeys = DEFAULT_KEYS
) -> bool:
    """Whether files of this deployment are still followed (False once a stop has drained)."""
    prefix = f"{deployment_id}:"
    return any(as_text(k).startswith(prefix) for k in await redis.hkeys(keys.files))


# Following one file --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Position:
    dev: int
    ino: int
    pos: int
    fp: str
    fp_len: int

    def to_json(self) -> str:
        return json.dumps(
            {"dev": self.dev, "ino": self.ino, "pos": self.pos, "fp": self.fp, "fpl": self.fp_len}
        )

    @classmethod
    def from_json(cls, text: str) -> _Position:
        data = json.loads(text)
        return cls(int(data["dev"]), int(data["ino"]), int(data["pos"]), data["fp"], data["fpl"])


@dataclass(frozen=True, slots=True)
class _Read:
    lines: list[bytes]
    position: _Position


def _fingerprint(fd: int, length: int) -> str:
    return hashlib.blake2b(os.pread(fd, length, 0), digest_size=8).hexdigest()


class _Tail:
    """The reading state of one file. ``poll`` never moves the committed position: the shipper
    calls ``commit`` once the lines are stored, or ``rewind`` if storing failed."""

    def __init__(self, file: LogFile, saved: _Position | None) -> None:
        self.file = file
        self.committed = saved
        self.fd: int | None = None
        self.dev = 0
        self.ino = 0
        self.read_pos = 0
        self.pending = b""
        self.idle = False
        self.failures = 0  # consecutive failed stores: the retry backs off
        self.retry_at = 0.0

    def close(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = None

    def rewind(self) -> None:
        """Forget what was read but not stored: the next poll resumes from the committed
        position (reopening whichever file that was, even a rotated one)."""
        self.close()
        self.pending = b""

    def commit(self, read: _Read) -> None:
        self.committed = read.position

    # Opening --------------------------------------------------------------------------------

    def _matches(self, fd: int, saved: _Position) -> bool:
        stat = os.fstat(fd)
        if (stat.st_dev, stat.st_ino) != (saved.dev, saved.ino) or stat.st_size < saved.pos:
            return False
        return _fingerprint(fd, saved.fp_len) == saved.fp

    def _find_rotated(self, saved: _Position) -> int | None:
        """The file that had the saved inode, renamed in the same directory by a rotation."""
        directory = self.file.path.parent
        try:
            entries = list(os.scandir(directory))
        except OSError:
            return None
        for entry in entries:
            if entry.inode() != saved.ino or entry.path == str(self.file.path):
                continue
            try:
                fd = os.open(entry.path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                continue
            if self._matches(fd, saved):
                return fd
            os.close(fd)
        return None

    def _use(self, fd: int, position: int) -> None:
        stat = os.fstat(fd)
        self.fd, self.dev, self.ino = fd, stat.st_dev, stat.st_ino
        self.read_pos = position
        self.pending = b""

    def _open(self) -> bool:
        try:
            fd = os.open(self.file.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            fd = None
        saved = self.committed
        if saved is not None and fd is not None and self._matches(fd, saved):
            self._use(fd, saved.pos)
            return True
        rotated = self._find_rotated(saved) if saved is not None else None
        if rotated is not None:
            if fd is not None:
                os.close(fd)
            self._use(rotated, saved.pos if saved else 0)
            return True
        if fd is None:
            return False
        self._use(fd, 0)  # a new file, or the old one truncated or gone
        return True

    # Reading --------------------------------------------------------------------------------

    def _position(self, pos: int) -> _Position:
        assert self.fd is not None
        previous = self.committed
        if (
            previous is not None
            and (previous.dev, previous.ino) == (self.dev, self.ino)
            and previous.fp_len == min(pos, _FINGERPRINT_BYTES)
        ):
            fp, fp_len = previous.fp, previous.fp_len
        else:
            fp_len = min(pos, _FINGERPRINT_BYTES)
            fp = _fingerprint(self.fd, fp_len)
        return _Position(self.dev, self.ino, pos, fp, fp_len)

    def poll(self, max_bytes: int) -> _Read | None:
        """New complete lines and the position after them; None when there is nothing new."""
        if self.fd is None and not self._open():
            return None
        assert self.fd is not None
        # The path is looked at *before* reading: whatever the old file got before a rotation
        # is read below, so switching files afterwards loses nothing written until then.
        try:
            at_path = self.file.path.stat()
        except FileNotFoundError:
            at_path = None
        data = os.pread(self.fd, max_bytes, self.read_pos)
        if data:
            self.read_pos += len(data)
            buffer = self.pending + data
            cut = buffer.rfind(b"\n")
            if cut < 0:
                if len(buffer) <= MAX_PARTIAL_BYTES:
                    self.pending = buffer
                    return None
                lines, self.pending = [buffer], b""
            else:
                lines, self.pending = buffer[:cut].split(b"\n"), buffer[cut + 1 :]
                if len(self.pending) > MAX_PARTIAL_BYTES:
                    lines.append(self.pending)
                    self.pending = b""
            return _Read(lines, self._position(self.read_pos - len(self.pending)))
        # At the end of the file we have open: has it been truncated, or replaced?
        size = os.fstat(self.fd).st_size
        if size < self.read_pos:
            leftover = [self.pending] if self.pending else []
            self.read_pos, self.pending = 0, b""
            return _Read(leftover, self._position(0))
        if at_path is not None and (at_path.st_dev, at_path.st_ino) != (self.dev, self.ino):
            if self.pending:  # the old file's last line, which will never be finished
                leftover, self.pending = [self.pending], b""
                return _Read(leftover, self._position(self.read_pos))
            # No checkpoint for the switch itself: until a line of the new file is stored, a
            # restart finds the old file by its inode, sees it finished, and switches again.
            self.close()
            if not self._open_new():
                return None
            return self.poll(max_bytes)
        return None

    def _open_new(self) -> bool:
        try:
            fd = os.open(self.file.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return False
        self._use(fd, 0)
        return True

    def final_read(self) -> _Read | None:
        """At the end of a drained file: its last line even without a newline."""
        if not self.pending or self.fd is None:
            return None
        lines, self.pending = [self.pending], b""
        return _Read(lines, self._position(self.read_pos))


# The shipper ---------------------------------------------------------------------------------


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", "replace").removesuffix("\r")


class LogShipper:
    """Follows the registry's files and stores their lines; ``run()`` until ``stop()``.

    ``redactor_provider(deployment_id)`` returns the redactor of that deployment's service
    (its current variable values); it is asked once per deployment and cached until
    :meth:`invalidate_redactor`. If it fails, nothing of that deployment is shipped until it
    works: an unredacted line is never stored.
    """

    def __init__(
        self,
        store: LogStore,
        redactor_provider: RedactorProvider,
        *,
        poll_interval: float = 0.01,
        max_read_bytes: int = 256 * 1024,
        lease_ttl: float = 10.0,
        keys: ShipperKeys = DEFAULT_KEYS,
    ) -> None:
        self.keys = keys
        self.store = store
        self.redis = store.redis
        self.redactor_provider = redactor_provider
        self.poll_interval = poll_interval
        self.max_read_bytes = max_read_bytes
        self.lease_ttl = lease_ttl
        self.token = secrets.token_hex(8)
        self.cycles = 0  # completed polling rounds (tests wait on it instead of sleeping)
        self._tails: dict[str, _Tail] = {}
        self._stops: dict[str, bool] = {}
        self._redactors: dict[str, Redactor] = {}
        self._version: str | None = None
        self._next_full_sync = 0.0
        self._lease_until = 0.0
        self._has_lease = False
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self._refresh_lease = self.redis.register_script(_REFRESH_LEASE)
        self._release_lease = self.redis.register_script(_RELEASE_LEASE)

    # Control ------------------------------------------------------------------------------

    async def follow(
        self, deployment_id: str, replica: int, stream: FileStream, path: Path
    ) -> None:
        await start_shipping(
            self.redis, [LogFile(deployment_id, replica, stream, path)], keys=self.keys
        )
        self._wake.set()

    async def unfollow(self, deployment_id: str, *, archive: bool = False) -> None:
        await stop_shipping(self.redis, deployment_id, archive=archive, keys=self.keys)
        self._wake.set()

    def invalidate_redactor(self, deployment_id: str) -> None:
        self._redactors.pop(deployment_id, None)

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    @property
    def has_lease(self) -> bool:
        return self._has_lease

    # The loop -----------------------------------------------------------------------------

    async def run(self) -> None:
        self._stopping.clear()
        try:
            while not self._stopping.is_set():
                try:
                    progressed = await self._round()
                except Exception:  # never die quietly: back off and start again
                    logger.exception("log shipping round failed; retrying")
                    self._rewind_all()
                    progressed = False
                    await self._wait(1.0)
                self.cycles += 1
                if not progressed:
                    await self._wait(self.poll_interval)
        finally:
            self._drop_tails()
            if self._has_lease:
                with contextlib.suppress(RedisError):
                    await self._release_lease(keys=[self.keys.lease], args=[self.token])
                self._has_lease = False
            await self.store.aclose()

    async def _wait(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)
        self._wake.clear()

    async def _round(self) -> bool:
        if not await self._hold_lease():
            await self._wait(max(self.lease_ttl / 3, self.poll_interval))
            return False
        await self._sync_registry()
        progressed = False
        for tail in list(self._tails.values()):
            progressed |= await self._pump(tail)
        if self._stops:
            await self._finish_stops()
        return progressed

    async def _hold_lease(self) -> bool:
        now = time.monotonic()
        if self._has_lease and now < self._lease_until - self.lease_ttl * 2 / 3:
            return True
        ttl_ms = max(1, round(self.lease_ttl * 1000))
        if self._has_lease:
            if await self._refresh_lease(keys=[self.keys.lease], args=[self.token, ttl_ms]):
                self._lease_until = now + self.lease_ttl
                return True
            logger.warning("log shipper lease lost; standing by")
            self._lose_lease()
            return False
        if not await self.redis.set(self.keys.lease, self.token, nx=True, px=ttl_ms):
            return False
        self._has_lease = True
        self._lease_until = now + self.lease_ttl
        self._version = None  # reload everything: another shipper may have moved on
        return True

    def _lose_lease(self) -> None:
        self._has_lease = False
        self._drop_tails()
        self._version = None

    def _drop_tails(self) -> None:
        for tail in self._tails.values():
            tail.close()
        self._tails.clear()

    def _rewind_all(self) -> None:
        for tail in self._tails.values():
            tail.rewind()

    async def _sync_registry(self) -> None:
        version = await self.redis.get(self.keys.version)
        now = time.monotonic()
        if version is not None and as_text(version) == self._version and now < self._next_full_sync:
            return
        files = {
            as_text(k): as_text(v) for k, v in (await self.redis.hgetall(self.keys.files)).items()
        }
        stops = {
            as_text(k): as_text(v) for k, v in (await self.redis.hgetall(self.keys.stops)).items()
        }
        wanted: dict[str, LogFile] = {}
        for key, spec in files.items():
            try:
                wanted[key] = LogFile.from_json(spec)
            except (ValueError, KeyError):
                logger.error("ignoring a malformed log file entry %s", key)
        for key in list(self._tails):
            if key not in wanted:
                self._tails.pop(key).close()
        new = [key for key in wanted if key not in self._tails]
        if new:
            saved = await self.redis.hmget(self.keys.offsets, new)
            for key, position in zip(new, saved, strict=True):
                self._tails[key] = _Tail(
                    wanted[key], _Position.from_json(as_text(position)) if position else None
                )
        self._stops = {dep: bool(json.loads(spec).get("archive")) for dep, spec in stops.items()}
        self._version = as_text(version) if version is not None else None
        self._next_full_sync = now + _FULL_SYNC_SECONDS

    async def _redactor(self, deployment_id: str) -> Redactor:
        redactor = self._redactors.get(deployment_id)
        if redactor is None:
            redactor = await self.redactor_provider(deployment_id)
            self._redactors[deployment_id] = redactor
        return redactor

    async def _store(self, tail: _Tail, read: _Read) -> bool:
        file = tail.file
        try:
            redactor = await self._redactor(file.deployment_id)
            now = time.time()
            lines = [
                LogLine(now, file.stream, file.replica, redactor(_decode(raw)))
                for raw in read.lines
            ]
            await self.store.append(
                file.deployment_id,
                lines,
                checkpoint=Checkpoint(self.keys.offsets, file.key, read.position.to_json()),
                fence=Fence(self.keys.lease, self.token),
            )
        except FencedError:
            logger.warning("log shipper fenced off (lease lost); standing by")
            self._lose_lease()
            return False
        except Exception:
            tail.failures += 1
            delay = min(_MAX_RETRY_SECONDS, self.poll_interval * 2**tail.failures)
            tail.retry_at = time.monotonic() + delay
            logger.exception(
                "shipping %s failed; retrying from its last offset in %.1f s", file.key, delay
            )
            tail.rewind()
            return False
        tail.commit(read)
        tail.failures = 0
        return True

    async def _pump(self, tail: _Tail) -> bool:
        if not self._has_lease or tail.retry_at > time.monotonic():
            return False
        try:
            read = tail.poll(self.max_read_bytes)
        except OSError:
            logger.exception("reading %s failed", tail.file.path)
            tail.rewind()
            return False
        tail.idle = read is None
        if read is None:
            return False
        return await self._store(tail, read)

    async def _finish_stops(self) -> None:
        for deployment_id, archive in list(self._stops.items()):
            tails = [t for t in self._tails.values() if t.file.deployment_id == deployment_id]
            if any(not tail.idle for tail in tails):
                continue  # still draining
            for tail in tails:
                final = tail.final_read()
                if final is not None and not await self._store(tail, final):
                    return
            file_keys = [tail.file.key for tail in tails]
            async with self.redis.pipeline(transaction=True) as pipe:
                if file_keys:
                    pipe.hdel(self.keys.files, *file_keys)
                    pipe.hdel(self.keys.offsets, *file_keys)
                pipe.hdel(self.keys.stops, deployment_id)
                pipe.incr(self.keys.version)
                await pipe.execute()
            for key in file_keys:
                self._tails.pop(key).close()
            self._stops.pop(deployment_id)
            self._redactors.pop(deployment_id, None)
            if archive:
                await self.store.archive_all(deployment_id)


async def run_shipper(
    redis: Redis,
    store: LogStore,
    redactor_provider: RedactorProvider,
    **options: Any,
) -> LogShipper:
    """Start a shipper as a task of the running loop; ``shipper.stop()`` ends it."""
    shipper = LogShipper(store, redactor_provider, **options)
    asyncio.get_running_loop().create_task(shipper.run(), name="log-shipper")
    return shipper
