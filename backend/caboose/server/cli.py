"""``caboosed``: the platform's own command (the server side; users run ``caboose``)."""

from __future__ import annotations

import typer

from caboose import __version__

app = typer.Typer(
    name="caboosed",
    help=(
        "Run the Caboose platform.\n\n"
        "Settings come from CABOOSE_* environment variables (see docs/configuration.md); "
        "with none set, everything lives in ~/.local/share/caboose."
    ),
    no_args_is_help=True,
    add_completion=False,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"caboosed {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """Run the Caboose platform."""


@app.command()
def migrate(
    revision: str = typer.Argument("head", help="Target revision (default: the newest)."),
) -> None:
    """Bring the database schema up to date (safe to run at every start).

    Example: caboosed migrate
    """
    from caboose.config import get_settings
    from caboose.migrations import upgrade

    settings = get_settings()
    settings.ensure_data_dir()
    upgrade(settings.resolved_database_url, revision)
    typer.echo(f"database at {revision}")


@app.command()
def api(
    host: str | None = typer.Option(None, help="Interface to bind (default CABOOSE_API_HOST)."),
    port: int | None = typer.Option(None, help="Port (default CABOOSE_API_PORT, 8000)."),
    workers: int = typer.Option(1, min=1, help="Worker processes (production: one per core)."),
    reload: bool = typer.Option(False, help="Reload on code changes (development)."),
) -> None:
    """Serve the HTTP API with uvicorn.

    Example: caboosed api --port 8000
    """
    import uvicorn

    from caboose.config import get_settings

    settings = get_settings()
    settings.ensure_data_dir()
    uvicorn.run(
        "caboose.main:create_app",
        factory=True,
        host=host or settings.api_host,
        port=port or settings.api_port,
        workers=workers,
        reload=reload,
        proxy_headers=True,
        forwarded_allow_ips="127.0.0.1",
        log_config=None,
    )
