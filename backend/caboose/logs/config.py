"""The tunables of logs, live connections and metrics, in one frozen value.

They come from :class:`~caboose.config.Settings` (``CABOOSE_LOG_*``, ``CABOOSE_METRICS_*``) and
are kept on ``app.state.live_settings`` once built, so a test (or an embedding app) can hand the
API other values — a 0.2 s ping instead of 30 s — without touching the process environment.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from caboose.config import Settings


@dataclass(frozen=True, slots=True)
class LiveSettings:
    # Lines kept in Redis per deployment; older ones move to the archive in chunks.
    log_stream_max_lines: int = 10_000
    log_archive_chunk_lines: int = 5_000
    # WebSockets: clients per deployment (across all API processes), heartbeat, history sent to a
    # client that gives no ``since``.
    log_ws_max_clients: int = 100
    log_ws_ping_seconds: float = 30.0
    log_ws_history_lines: int = 1_000
    # A client whose unsent backlog exceeds this many lines is closed (it resumes with ``since``).
    log_ws_max_backlog_lines: int = 50_000
    # Time a client has to send its ``{"type": "auth"}`` message.
    ws_auth_timeout_seconds: float = 10.0
    # Replica metrics.
    metrics_interval_seconds: float = 10.0
    metrics_retention_hours: int = 24
    # When set, ``GET /metrics`` wants ``Authorization: Bearer <this>``.
    metrics_token: str | None = None


def _setting(settings: Settings, name: str, default: Any) -> Any:
    # Settings gains these fields with this work (see the report to the lead); until then, and
    # for any field left out, the default above applies.
    return getattr(settings, name, default)


def live_settings_from(settings: Settings) -> LiveSettings:
    defaults = LiveSettings()
    values = {
        name: _setting(settings, name, getattr(defaults, name))
        for name in LiveSettings.__dataclass_fields__
    }
    return LiveSettings(**values)


def archive_root(settings: Settings) -> Path:
    """Where finished and trimmed log lines are kept: ``<data_dir>/logs/archive``."""
    return settings.data_dir / "logs" / "archive"


def live_settings(state: Any) -> LiveSettings:
    """``app.state.live_settings``, built from ``app.state.settings`` on first use."""
    current = getattr(state, "live_settings", None)
    if isinstance(current, LiveSettings):
        return current
    built = live_settings_from(state.settings)
    state.live_settings = built
    return built
