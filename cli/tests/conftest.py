"""Fixtures: an isolated config directory per test, the stand-in API, a CLI runner, and a real
terminal (tmux) for the interactive prompts."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from typer.testing import CliRunner, Result

from caboose_cli.main import app
from tests.terminal import Terminal, new_terminal

if TYPE_CHECKING:
    from tests.standin import StandIn

try:  # dev dependencies: `pip install ./cli` alone does not bring them
    import starlette  # noqa: F401
    import uvicorn  # noqa: F401
except ImportError:
    collect_ignore = [
        "standin.py",
        "test_client.py",
        "test_commands.py",
        "test_interactive.py",
        "test_streaming.py",
    ]

_CABOOSE_VARIABLES = (
    "CABOOSE_TOKEN",
    "CABOOSE_HOST",
    "CABOOSE_PROJECT",
    "CABOOSE_ENVIRONMENT",
    "CABOOSE_SERVICE",
    "CABOOSE_DEBUG",
)


@pytest.fixture(autouse=True)
def isolated_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own config dir and a clean environment: nothing from the developer's
    real login (or a CI's CABOOSE_TOKEN) may leak in."""
    config_home = tmp_path / "xdg-config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config_home))
    for name in _CABOOSE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("NO_COLOR", "1")
    return config_home / "caboose"


@pytest.fixture
def project_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "shop"
    folder.mkdir()
    (folder / "app.py").write_text("print('hello')\n")
    monkeypatch.chdir(folder)
    return folder


@dataclass
class Cli:
    runner: CliRunner

    def __call__(
        self, *args: str, input: str | None = None, env: dict[str, str] | None = None
    ) -> Result:
        return self.runner.invoke(app, list(args), input=input, env=env)


@pytest.fixture
def cli() -> Cli:
    return Cli(CliRunner())


@pytest.fixture(scope="session")
def standin_server() -> Iterator[StandIn]:
    from tests.standin import StandIn

    server = StandIn().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def standin(standin_server: StandIn) -> StandIn:
    """The stand-in API with a fresh world (one user, Ada, with her personal workspace)."""
    standin_server.reset().add_user()
    return standin_server


@pytest.fixture
def terminal() -> Iterator[Terminal]:
    """A tmux session to run an interactive command in (skips where tmux is missing)."""
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed")
    opened = new_terminal()
    try:
        yield opened
    finally:
        opened.close()
