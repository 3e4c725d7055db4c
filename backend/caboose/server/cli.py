"""``caboosed``: the platform's own command (the server side; users run ``caboose``)."""

from __future__ import annotations

import os

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
    # Everything the platform writes (database, logs, generated config) is private to its user:
    # deployed apps run on the same machine as other users.
    os.umask(0o077)


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


@app.command("create-user")
def create_user(
    email: str = typer.Option(..., prompt=True, help="The account's email address."),
    name: str = typer.Option("", help="Display name (default: the email's local part)."),
    password: str = typer.Option(
        ...,
        prompt=True,
        hide_input=True,
        confirmation_prompt=True,
        envvar="CABOOSE_NEW_USER_PASSWORD",
        help="Asked for when not given (or set CABOOSE_NEW_USER_PASSWORD for scripts).",
    ),
) -> None:
    """Create an account (with its own workspace) from the shell, e.g. when sign-up is closed.

    The first account on an instance becomes its owner.

    Example: caboosed create-user --email ada@example.com --name Ada
    """
    import asyncio

    from caboose.api.accounts import create_account
    from caboose.config import get_settings
    from caboose.core.errors import AppError
    from caboose.core.passwords import hash_password, validate_password_strength
    from caboose.database import Database, session_scope
    from caboose.schemas.identity import normalize_email

    try:
        normalized = normalize_email(email)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--email") from None
    problems = validate_password_strength(password, email=normalized)
    if problems:
        raise typer.BadParameter(" ".join(problems), param_hint="--password")

    settings = get_settings()
    settings.ensure_data_dir()

    async def run() -> tuple[str, bool]:
        database = Database(settings.resolved_database_url, settings)
        try:
            async with session_scope(database.sessionmaker) as session:
                user = await create_account(
                    session, email=normalized, name=name, password_hash=hash_password(password)
                )
            return str(user.id), user.is_instance_owner
        finally:
            await database.dispose()

    try:
        user_id, is_owner = asyncio.run(run())
    except AppError as exc:
        typer.secho(f"error: {exc.detail}", err=True, fg=typer.colors.RED)
        raise typer.Exit(1) from None
    role = " (instance owner)" if is_owner else ""
    typer.echo(f"created {normalized}{role}: {user_id}")


# The Celery queues, as `--queues` defaults (caboose.celery_app.QUEUES; not imported here so
# that `caboosed --help` does not load Celery).
_ALL_QUEUES = "build,deploy,monitor,cleanup,default"


@app.command()
def up(
    http_host: str = typer.Option(
        "0.0.0.0",  # noqa: S104 - the public entrypoint; 127.0.0.1 keeps it to this machine
        "--http-host",
        help="Interface of the public HTTP entrypoint (127.0.0.1: this machine only).",
    ),
    concurrency: int | None = typer.Option(
        None, "--concurrency", min=1, help="Task processes of the worker (default: 2-4 by CPUs)."
    ),
) -> None:
    """Start the whole platform on this machine, with no configuration needed.

    Redis (embedded unless CABOOSE_REDIS_URL), the PM2 daemon, Traefik on CABOOSE_HTTP_PORT
    (8080), a Celery worker and beat, and the API; http://localhost:8080 then answers.
    Ctrl-C stops them all; deployed apps keep running under PM2. Output goes to the terminal
    and to <data dir>/logs/.

    Example: caboosed up
    """
    from caboose.config import get_settings
    from caboose.core.logging import configure_logging
    from caboose.server.up import UpOptions, run_up

    settings = get_settings()
    configure_logging(level=settings.log_level, as_json=settings.logs_as_json)
    status = run_up(settings, UpOptions(http_host=http_host, worker_concurrency=concurrency))
    raise typer.Exit(status)


@app.command("build-dashboard")
def build_dashboard(
    force: bool = typer.Option(False, "--force", help="Build even if the build is current."),
) -> None:
    """Build the dashboard (frontend/) unless the build matches its sources.

    `caboosed up` does this by itself at start; this command does it ahead of time (a
    deployment step, or `make dashboard`).

    Example: caboosed build-dashboard
    """
    from caboose.server.dashboard import (
        DashboardBuild,
        DashboardUnavailableError,
        ensure_built,
        find_frontend,
    )

    frontend = find_frontend()
    if frontend is None:
        typer.secho("error: no frontend/ beside this installation", err=True, fg=typer.colors.RED)
        raise typer.Exit(1)
    try:
        ensure_built(DashboardBuild(frontend), force=force, echo=typer.echo)
    except DashboardUnavailableError as exc:
        typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
        raise typer.Exit(1) from None


@app.command()
def openapi(
    output: str = typer.Option(
        "-", "--output", "-o", help="File to write (default: standard output)."
    ),
) -> None:
    """Print the API's OpenAPI document (what the dashboard's typed client is generated from).

    Example: caboosed openapi --output openapi.json
    """
    import json
    from pathlib import Path

    from caboose.config import Settings
    from caboose.main import create_app

    # Defaults, not this machine's settings: the document must not depend on who generates it.
    document = json.dumps(create_app(Settings(enable_docs=True)).openapi(), indent=2) + "\n"
    if output == "-":
        typer.echo(document, nl=False)
    else:
        Path(output).write_text(document, encoding="utf-8")


@app.command()
def worker(
    queues: str = typer.Option(
        _ALL_QUEUES, "--queues", "-Q", help="Comma-separated queues to consume."
    ),
    concurrency: int | None = typer.Option(
        None, "--concurrency", "-c", min=1, help="Task processes (default: one per CPU)."
    ),
    hostname: str = typer.Option("caboose@%h", "--hostname", "-n", help="Worker node name."),
    mingle: bool = typer.Option(
        True, "--mingle/--no-mingle", help="Sync state with other workers at start-up."
    ),
) -> None:
    """Run a Celery worker (builds, deploys, monitoring, cleanup).

    SIGTERM (like SIGQUIT) stops it within seconds: running tasks get a short grace, then go
    back to the queue for the next worker, since a build can outlast any stop timeout.

    Example: caboosed worker --queues build --concurrency 2
    """
    # Before billiard is imported: SIGTERM then means Celery's cold shutdown with a grace
    # period (worker_soft_shutdown_timeout), not a warm one that waits for an hour-long build.
    os.environ.setdefault("REMAP_SIGTERM", "SIGQUIT")
    from caboose.celery_app import RedisNotConfiguredError, celery_app, resolve_redis_url
    from caboose.config import get_settings

    settings = get_settings()
    settings.ensure_data_dir()
    try:
        resolve_redis_url(settings)
    except RedisNotConfiguredError as exc:
        typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
        raise typer.Exit(1) from None
    argv = [
        "worker",
        f"--queues={queues}",
        f"--hostname={hostname}",
        f"--loglevel={settings.log_level.upper()}",
        "--without-gossip",  # gossip follows other workers' events: none are sent (-E off)
    ]
    if concurrency is not None:
        argv.append(f"--concurrency={concurrency}")
    if not mingle:
        argv.append("--without-mingle")
    celery_app.worker_main(argv)


@app.command()
def beat() -> None:
    """Run Celery beat, the scheduler of periodic tasks (reaper, reconciliation, cleanup).

    Run exactly one per installation. Its schedule file is <data dir>/celery/beat-schedule.

    Example: caboosed beat
    """
    from caboose.celery_app import RedisNotConfiguredError, celery_app, resolve_redis_url
    from caboose.config import get_settings
    from caboose.server.layout import DataLayout

    settings = get_settings()
    settings.ensure_data_dir()
    layout = DataLayout(settings.data_dir)
    layout.ensure()
    try:
        resolve_redis_url(settings)
    except RedisNotConfiguredError as exc:
        typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
        raise typer.Exit(1) from None
    status = celery_app.start(
        [
            "beat",
            f"--schedule={layout.beat_schedule_file}",
            f"--loglevel={settings.log_level.upper()}",
        ]
    )
    raise typer.Exit(int(status or 0))


@app.command("rotate-key")
def rotate_key(
    generate: bool = typer.Option(
        False,
        "--generate",
        help="First retire the key file's key into secrets/previous-keys/ and write a new one "
        "(key-file setups; with CABOOSE_MASTER_KEY, change the settings instead).",
    ),
    check: bool = typer.Option(
        False, "--check", help="Report what would be re-encrypted; write nothing."
    ),
    batch_size: int = typer.Option(500, min=1, max=10_000, help="Rows per transaction."),
) -> None:
    """Re-encrypt every stored secret under the current master key, without downtime.

    Safe to interrupt and run again. Exits 1 if some value cannot be decrypted.

    Example: caboosed rotate-key --generate
    """
    from caboose.config import get_settings
    from caboose.server.rotate_key import run_rotate_key

    settings = get_settings()
    code = run_rotate_key(
        settings,
        previous_master_keys=settings.previous_master_keys,
        generate=generate,
        dry_run=check,
        batch_size=batch_size,
        echo=typer.echo,
    )
    raise typer.Exit(code)


@app.command()
def shipper() -> None:
    """Ship deployed apps' stdout/stderr (PM2's log files) into the live log streams.

    `caboosed up` runs it; in production run one (or more: a lease elects one) per runtime node.

    Example: caboosed shipper
    """
    from caboose.logs.service import main as run_shipper

    run_shipper()
