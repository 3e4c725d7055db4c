"""What every database-touching Celery task needs: a session, and a place to run async code.

Celery calls tasks synchronously; the platform's database layer is async. Each worker process
keeps **one event loop and one** :class:`~caboose.database.Database` (engine and pool) for its
whole life, created on first use *in that process*: ``asyncio.run`` per task would build and
tear down a loop, and with it the connection pool, for every task; and an engine created before
the prefork pool forks would share sockets between processes.

Usage, in a task module::

    from caboose.celery_app import task
    from caboose.tasks.base import TRANSIENT_ERRORS, DatabaseTask, run_async, task_session

    @task("deployments.deploy", base=DatabaseTask, autoretry_for=TRANSIENT_ERRORS)
    def deploy(deployment_id: str) -> None:
        async def work() -> None:
            async with task_session() as session:   # commits on success, rolls back on error
                ...

        run_async(work())

Tasks are delivered at least once (late acknowledgement), so they must be idempotent: load the
row by id, and return early when the work is already done.

Time limits: the soft limit raises ``SoftTimeLimitExceeded`` from a signal handler, which may
interrupt the event loop itself rather than the coroutine. :func:`run_async` then cancels what
was running on the loop (so ``session_scope`` rolls back) and re-raises; the loop stays usable,
so the task can still ``run_async(record_timeout(...))`` in an ``except`` clause.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import redis.exceptions
import sqlalchemy.exc
from celery import Task
from celery.signals import worker_process_init, worker_process_shutdown
from sqlalchemy.ext.asyncio import AsyncSession

from caboose.config import Settings, get_settings
from caboose.database import Database, session_scope

__all__ = [
    "TRANSIENT_ERRORS",
    "DatabaseTask",
    "dispose_runtime",
    "run_async",
    "task_database",
    "task_session",
]

logger = logging.getLogger("caboose.tasks")

T = TypeVar("T")

# Faults worth retrying with exponential backoff: the database or Redis briefly unreachable or
# busy (SQLite "database is locked" is an OperationalError). Anything else is a bug or a user
# error, and retrying would only repeat it.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.DisconnectionError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    ConnectionError,
    TimeoutError,
)

# How long cancelled leftovers of an interrupted run get to unwind (roll back, close).
_CANCEL_GRACE_S = 10.0


class _Runtime:
    """The event loop and database of one process (or one thread, with a thread pool)."""

    def __init__(self, settings: Settings) -> None:
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        self.settings = settings
        self._database: Database | None = None

    @property
    def database(self) -> Database:
        if self._database is None:
            self._database = Database(self.settings.resolved_database_url, self.settings)
        return self._database

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        if self.loop.is_running():
            coro.close()
            raise RuntimeError("run_async() called from inside the event loop: await instead")
        try:
            return self.loop.run_until_complete(coro)
        except BaseException:
            self._cancel_leftovers()
            raise

    def _cancel_leftovers(self) -> None:
        """After an exception out of the loop (a soft time limit), cancel what still runs."""
        pending = [t for t in asyncio.all_tasks(self.loop) if not t.done()]
        if not pending:
            return
        for leftover in pending:
            leftover.cancel()
        try:
            self.loop.run_until_complete(asyncio.wait(pending, timeout=_CANCEL_GRACE_S))
        except BaseException:  # the loop itself is broken: start afresh next time
            logger.exception("event loop unusable after an interrupted task; replacing it")
            self.abandon()

    def abandon(self) -> None:
        """Forget the loop and engine without awaiting anything (after fork, or when broken)."""
        if self._database is not None:
            # Drop the pool without closing connections that belong to another loop/process.
            self._database.engine.sync_engine.dispose(close=False)
            self._database = None
        old, self.loop = self.loop, asyncio.new_event_loop()
        # Closing only releases this process's copies of the selector and its self-pipe.
        with contextlib.suppress(Exception):
            old.close()

    def close(self) -> None:
        """Dispose of the engine and close the loop (worker process shutting down)."""
        try:
            if self._database is not None and not self.loop.is_closed():
                self.loop.run_until_complete(self._database.dispose())
            if not self.loop.is_closed():
                self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        finally:
            self._database = None
            self.loop.close()


_local = threading.local()


def _runtime() -> _Runtime:
    current: _Runtime | None = getattr(_local, "runtime", None)
    if current is not None and current.pid != os.getpid():
        # Inherited through fork: its loop and sockets belong to the parent.
        current.abandon()
        current.pid = os.getpid()
    if current is None:
        current = _Runtime(get_settings())
        _local.runtime = current
    return current


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion on this process's event loop and return its result."""
    return _runtime().run(coro)


def task_database() -> Database:
    """This process's database (engine + session factory), created on first use."""
    return _runtime().database


@asynccontextmanager
async def task_session() -> AsyncIterator[AsyncSession]:
    """A session that commits when the block succeeds and rolls back when it raises.

    Tasks commit themselves (there is no request to do it for them); use one session per unit
    of work, so a failure late in a task does not undo the status it already recorded.
    """
    async with session_scope(task_database().sessionmaker) as session:
        yield session


def dispose_runtime() -> None:
    """Close this process's loop and engine, if it has them (tests, worker shutdown)."""
    current: _Runtime | None = getattr(_local, "runtime", None)
    if current is None:
        return
    _local.runtime = None
    if current.pid != os.getpid():
        return
    with contextlib.suppress(Exception):
        current.close()


class DatabaseTask(Task):  # type: ignore[misc]  # Celery is untyped
    """Base class for tasks that touch the database (``@task(..., base=DatabaseTask)``).

    Retries, when a task opts in with ``autoretry_for=TRANSIENT_ERRORS``, back off
    exponentially (1 s, 2 s, 4 s, … up to 10 min, with jitter) and stop after 5 attempts.
    """

    retry_backoff = True
    retry_backoff_max = 600
    retry_jitter = True
    max_retries = 5

    @staticmethod
    def run_async(coro: Coroutine[Any, Any, T]) -> T:
        return run_async(coro)

    @staticmethod
    def session() -> contextlib.AbstractAsyncContextManager[AsyncSession]:
        return task_session()


def _on_worker_process_init(**_: Any) -> None:
    """A fresh pool process: whatever the parent had is not ours to use."""
    current: _Runtime | None = getattr(_local, "runtime", None)
    if current is not None:
        current.abandon()
        current.pid = os.getpid()


def _on_worker_process_shutdown(**_: Any) -> None:
    dispose_runtime()


worker_process_init.connect(_on_worker_process_init, weak=False)
worker_process_shutdown.connect(_on_worker_process_shutdown, weak=False)
