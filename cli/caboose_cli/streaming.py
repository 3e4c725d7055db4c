"""Follow a deployment's logs live over ``WS /deployments/{id}/logs/ws``.

The server sends the current ``status``, the history, then live lines (one ``{"type": "log", …}``
per line as API.md has it, or ``{"type": "logs", "items": [...]}`` batches as the platform sends
them), a ``status`` message on every transition and a ``ping`` every 30 s. Without ``since`` the
server sends only the last few hundred lines, so the follower always passes one (``0-0``, before
any line, to start from the beginning). Networks drop connections, and API processes restart
during a deploy, so the follower reconnects with ``since=<last id seen>`` and drops any line it
already printed: the user sees every line exactly once.

Two safety nets keep it from hanging: when nothing arrives for a while it asks
``GET /deployments/{id}`` for the status (a missed ``status`` message cannot strand it), and if
the instance has no log WebSocket at all it falls back to polling the HTTP history.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from websockets.exceptions import (
    ConnectionClosed,
    ConnectionClosedOK,
    InvalidStatus,
    WebSocketException,
)
from websockets.sync.client import connect

from caboose_cli.client import Client
from caboose_cli.errors import CliError, ExitCode, NotFoundError, NotLoggedInError
from caboose_cli.statuses import FINAL_STATUSES

# Log ids are Redis stream ids (``<ms>-<seq>``): every line comes after this one.
FROM_START = "0-0"

LogHandler = Callable[[dict[str, Any]], None]
StatusHandler = Callable[[str, dict[str, Any]], None]


@dataclass
class FollowResult:
    """How following ended: the last status seen (``None`` if interrupted by the server ending
    the stream before any status), and the last log id (to resume from)."""

    status: str | None
    last_id: str | None
    message: dict[str, Any] = field(default_factory=dict)


class _ReconnectError(Exception):
    """The connection dropped (or the server closed it early): resume from the last id."""


class LogFollower:
    """Print-agnostic follower: log and status messages go to the handlers given."""

    def __init__(
        self,
        client: Client,
        deployment_id: str,
        *,
        on_log: LogHandler,
        on_status: StatusHandler | None = None,
        stop_on: Collection[str] = FINAL_STATUSES,
        since: str | None = None,
        idle_check_seconds: float = 10.0,
        max_reconnects: int = 20,
        reconnect_delay: float = 0.5,
        poll_interval: float = 1.0,
    ) -> None:
        self.client = client
        self.deployment_id = deployment_id
        self.on_log = on_log
        self.on_status = on_status
        self.stop_on = frozenset(stop_on)
        self.last_id = since
        self.idle_check_seconds = idle_check_seconds
        self.max_reconnects = max_reconnects
        self.reconnect_delay = reconnect_delay
        self.poll_interval = poll_interval
        self._seen: deque[str] = deque(maxlen=5000)
        self._seen_set: set[str] = set()
        self._status: str | None = None
        self._refreshed = False
        self._made_progress = False
        if since is not None:  # in case the server's `since` is inclusive
            self._remember(since)

    # The loop ------------------------------------------------------------------------------

    def run(self) -> FollowResult:
        failures = 0
        while True:
            try:
                result = self._follow_once()
            except _ReconnectError:
                failures = 0 if self._made_progress else failures + 1
            except InvalidStatus as exc:
                code = exc.response.status_code
                if code == 401 and not self._refreshed:
                    self._refreshed = True
                    self.client.refresh_now()
                    continue
                if code in {403, 404, 405, 426, 501}:
                    # Starlette refuses a WebSocket to an unknown route with a 403. If the
                    # deployment itself is readable (else the API's error is raised here),
                    # this instance has no log WebSocket: poll the HTTP history instead.
                    self._deployment()
                    return self._poll_history()
                raise CliError(
                    f"The log stream was refused (HTTP {code})",
                    hint="Follow with `caboose logs --follow` once the instance is reachable.",
                ) from None
            except (OSError, TimeoutError, WebSocketException):
                failures += 1
            else:
                if result is not None:
                    return result
                failures = 0
            if failures > self.max_reconnects:
                raise CliError(
                    f"Lost the log stream of deployment {self.deployment_id} and could not "
                    "reconnect",
                    hint="The deployment carries on; check it with `caboose deployments`.",
                )
            time.sleep(min(self.reconnect_delay * (2 ** max(failures - 1, 0)), 5.0))

    def _follow_once(self) -> FollowResult | None:
        """One connection. A result when done; ``None`` or ``_ReconnectError`` to connect again."""
        self._made_progress = False
        token = self.client.require_login()
        url = self.client.websocket_url(
            f"/deployments/{self.deployment_id}/logs/ws", {"since": self.last_id or FROM_START}
        )
        with connect(
            url,
            open_timeout=10,
            close_timeout=2,
            max_size=2**22,
        ) as websocket:
            # The first message authenticates: unlike ?token=, it stays out of access logs.
            websocket.send(json.dumps({"type": "auth", "token": token}))
            while True:
                try:
                    raw = websocket.recv(timeout=self.idle_check_seconds)
                except TimeoutError:
                    done = self._check_status()
                    if done is not None:
                        return done
                    continue
                except ConnectionClosedOK:
                    # A clean close: the deployment ended and its stream drained, or the server
                    # is going away. The status tells which.
                    done = self._check_status()
                    if done is not None or self._status in FINAL_STATUSES:
                        return done or FollowResult(self._status, self.last_id)
                    raise _ReconnectError from None
                except ConnectionClosed as exc:
                    self._closed_abnormally(exc)
                    raise _ReconnectError from None
                done = self._handle(raw)
                if done is not None:
                    return done

    def _closed_abnormally(self, exc: ConnectionClosed) -> None:
        """Tell a refusal (an application close code) from a network fault (reconnect).

        The API closes with 4401 when the token is not accepted (refresh once and reconnect),
        1008 for a deployment that does not exist or is not yours, 4403 when the role does not
        allow reading logs, 1013 when too many clients follow the deployment, and 4408 when this
        client read too slowly to keep up (reconnect from the last id).
        """
        frame = exc.rcvd
        if frame is None or frame.code == 4408:
            return
        reason = frame.reason or f"close code {frame.code}"
        if frame.code == 4401:
            if self._refreshed or self.client.auth.source != "stored":
                raise NotLoggedInError(f"The log stream refused the credentials: {reason}")
            self._refreshed = True
            self.client.refresh_now()
            return
        if frame.code == 1008:
            raise NotFoundError(f"Deployment {self.deployment_id} not found ({reason})")
        if frame.code == 4403:
            raise CliError(
                f"Not allowed to read these logs: {reason}", exit_code=ExitCode.FORBIDDEN
            )
        if frame.code == 1013:
            raise CliError(
                f"The log stream is busy: {reason}",
                hint="Too many clients follow this deployment; try again shortly.",
            )
        if 4000 <= frame.code < 5000:
            raise CliError(f"The log stream was closed by the server: {reason}")

    def _handle(self, raw: str | bytes) -> FollowResult | None:
        try:
            message = json.loads(raw)
        except ValueError:
            return None
        if not isinstance(message, dict):
            return None
        kind = message.get("type")
        if kind == "log":
            self._log(message)
        elif kind == "logs":
            for item in message.get("items") or []:
                if isinstance(item, dict):
                    self._log(item)
        elif kind == "status":
            return self._status_changed(message)
        elif kind == "error":
            detail = message.get("detail") or message.get("message") or "unknown error"
            raise CliError(f"The log stream reported an error: {detail}")
        return None  # "ping", and kinds added later

    def _log(self, message: dict[str, Any]) -> None:
        entry_id = message.get("id")
        if entry_id is not None:
            entry_id = str(entry_id)
            if entry_id in self._seen_set:
                return  # already printed before a reconnect
            self._remember(entry_id)
            self.last_id = entry_id
        self._made_progress = True
        self.on_log(message)

    def _remember(self, entry_id: str) -> None:
        if len(self._seen) == self._seen.maxlen:
            self._seen_set.discard(self._seen[0])
        self._seen.append(entry_id)
        self._seen_set.add(entry_id)

    def _status_changed(self, message: dict[str, Any]) -> FollowResult | None:
        status = str(message.get("status", "")).upper()
        if not status:
            return None
        stopping = status in self.stop_on
        if stopping:
            # The server sends the current status before the history (and a final status
            # before the last lines): read what is stored up to now, so that nothing written
            # before this status is lost when we stop here.
            self._drain()
        if status != self._status:
            self._status = status
            if self.on_status is not None:
                self.on_status(status, message)
        return FollowResult(status, self.last_id, message) if stopping else None

    def _drain(self) -> None:
        for item in fetch_history(self.client, self.deployment_id, since=self.last_id):
            self._log(item)

    def _deployment(self) -> dict[str, Any]:
        deployment = self.client.get(f"/deployments/{self.deployment_id}")
        return deployment if isinstance(deployment, dict) else {}

    def _check_status(self) -> FollowResult | None:
        deployment = self._deployment()
        return self._status_changed({"type": "status", **deployment})

    # Fallback: poll the HTTP history -------------------------------------------------------

    def _poll_history(self) -> FollowResult:
        while True:
            for item in fetch_history(self.client, self.deployment_id, since=self.last_id):
                self._log(item)
            done = self._check_status()  # drains the last lines when it is done
            if done is not None:
                return done
            time.sleep(self.poll_interval)


def fetch_history(
    client: Client,
    deployment_id: str,
    *,
    since: str | None = None,
    streams: Sequence[str] = (),
    page_size: int = 1000,
) -> list[dict[str, Any]]:
    """Every stored line after ``since`` (of those ``streams``, or all), following the ``next``
    cursor of ``GET /deployments/{id}/logs``."""
    items: list[dict[str, Any]] = []
    cursor = since
    while True:
        page = client.get(
            f"/deployments/{deployment_id}/logs",
            params={"since": cursor, "limit": page_size, "stream": list(streams) or None},
        )
        items.extend(item for item in (page or {}).get("items", []) if isinstance(item, dict))
        # With a filter a page may hold no match and still say where to go on: follow `next`
        # until it is null (the end of what is stored).
        following = (page or {}).get("next")
        if not following or following == cursor:
            return items
        cursor = str(following)
