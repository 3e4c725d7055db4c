"""`caboose`: the user's command-line client. Commands arrive with the CLI issue."""

from __future__ import annotations

import typer

from caboose_cli import __version__

app = typer.Typer(
    name="caboose",
    help="Deploy and manage services on a Caboose instance.",
    no_args_is_help=True,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"caboose {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(
        False,
        "--version",
        callback=_print_version,
        is_eager=True,
        help="Print the version and exit.",
    ),
) -> None:
    """Deploy and manage services on a Caboose instance."""
