from __future__ import annotations

import typer
from typer.testing import CliRunner

from caboose_cli import __version__
from caboose_cli.main import CabooseGroup, app


def test_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"caboose {__version__}"


def test_help_explains_the_tool() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "Caboose" in result.stdout


def test_a_reader_going_away_ends_quietly() -> None:
    """``caboose logs | head``: a closed stdout is not a bug to report."""
    tool = typer.Typer(cls=CabooseGroup)

    @tool.command()
    def spill() -> None:
        raise BrokenPipeError

    @tool.command()
    def other() -> None:  # two commands: a group, as caboose is
        pass

    result = CliRunner().invoke(tool, ["spill"])
    assert result.exit_code == 141
    assert "error" not in result.output.lower()
