from __future__ import annotations

from typer.testing import CliRunner

from caboose_cli import __version__
from caboose_cli.main import app


def test_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"caboose {__version__}"


def test_help_explains_the_tool() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "Caboose" in result.stdout
