"""`caboosed create-user` makes a real account in the configured database."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from caboose.migrations import upgrade


def run(
    data_dir: Path, *args: str, password: str = "a long enough passphrase 42"
) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(data_dir),
        "CABOOSE_DATA_DIR": str(data_dir),
        "CABOOSE_NEW_USER_PASSWORD": password,
    }
    return subprocess.run(
        [sys.executable, "-m", "caboose.server", "create-user", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_create_user_then_refuse_a_duplicate(tmp_path: Path) -> None:
    upgrade(f"sqlite+aiosqlite:///{tmp_path / 'caboose.db'}")
    first = run(tmp_path, "--email", "Root@Example.com", "--name", "Root")
    assert first.returncode == 0, first.stderr
    assert "created root@example.com (instance owner)" in first.stdout
    again = run(tmp_path, "--email", "root@example.com")
    assert again.returncode == 1
    assert "already exists" in again.stderr


def test_create_user_refuses_a_weak_password(tmp_path: Path) -> None:
    result = run(tmp_path, "--email", "x@example.com", password="short")
    assert result.returncode == 2
    assert "password" in result.stderr.lower()
