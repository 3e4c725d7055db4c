"""`caboose`: deploy and manage services on a Caboose instance from the terminal.

The commands live in ``commands/``, one module per group; this module assembles them into the
Typer ``app`` (the console script's entry point) and owns the one place errors become output:
every ``CliError`` is printed as one line on stderr and turned into its exit code, so a user never
sees a traceback and a script can trust the code.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import typer
from typer.core import TyperGroup

from caboose_cli import __version__, output
from caboose_cli.commands import auth, deploy, domains, environments, logs, projects, services
from caboose_cli.commands import tokens as tokens_commands
from caboose_cli.commands import variables as variables_commands
from caboose_cli.errors import ApiError, CliError, ExitCode


class CabooseGroup(TyperGroup):
    """The root command group: turns errors into messages and exit codes."""

    # `ctx` is Click's context (vendored by recent Typer versions, imported by older ones).
    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise  # usage errors (exit 2), explicit exits: Typer reports them
        except CliError as exc:
            report(exc)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            output.info("\nInterrupted.")  # after the ^C the terminal echoed
            raise typer.Exit(ExitCode.INTERRUPTED) from None
        except BrokenPipeError:
            _discard_stdout()
            raise typer.Exit(ExitCode.BROKEN_PIPE) from None
        except Exception as exc:
            if os.environ.get("CABOOSE_DEBUG"):
                raise
            output.error(
                f"Unexpected error: {type(exc).__name__}: {exc}",
                hint="This is a bug in caboose; CABOOSE_DEBUG=1 shows the traceback.",
            )
            raise typer.Exit(ExitCode.FAILURE) from None


def _discard_stdout() -> None:
    """Stop quietly when the reader of stdout has gone (``caboose logs | head``), like Unix
    tools: what is still buffered goes nowhere instead of failing again at exit."""
    try:
        stdout = sys.stdout.fileno()
    except (AttributeError, ValueError, OSError):  # not a real file (tests capture it)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, stdout)
    os.close(devnull)


def report(exc: CliError) -> None:
    hint = exc.hint
    if isinstance(exc, ApiError) and exc.request_id and exc.exit_code == ExitCode.FAILURE:
        hint = "\n".join(filter(None, [hint, f"Request id: {exc.request_id}"]))
    output.error(exc.message, hint)


app = typer.Typer(
    name="caboose",
    cls=CabooseGroup,
    help="Deploy and manage services on a Caboose instance.",
    epilog="Start with `caboose login`, then `caboose init` (or `caboose link`) and `caboose up`. "
    "CABOOSE_TOKEN and CABOOSE_HOST override the stored login (for CI).",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
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


def _examples(*lines: str) -> str:
    return "[bold]Examples[/bold]\n\n" + "\n\n".join(f"  {line}" for line in lines)


_ACCOUNT = "Account"
_PROJECT = "Project"
_DEPLOY = "Deploy"
_CONFIG = "Configuration"

app.command(
    rich_help_panel=_ACCOUNT,
    epilog=_examples(
        "caboose login",
        "caboose login --host https://caboose.example.com",
        "caboose login --token cb_…",
        'echo "$PASSWORD" | caboose login --email me@example.com --password-stdin',
    ),
)(auth.login)
app.command(rich_help_panel=_ACCOUNT, epilog=_examples("caboose logout"))(auth.logout)
app.command(rich_help_panel=_ACCOUNT, epilog=_examples("caboose whoami --json"))(auth.whoami)
app.add_typer(
    tokens_commands.app,
    name="tokens",
    rich_help_panel=_ACCOUNT,
    epilog=_examples("caboose tokens create ci --project", "caboose tokens revoke ci"),
)

app.command(
    rich_help_panel=_PROJECT,
    epilog=_examples("caboose init", "caboose init --name shop --workspace acme"),
)(projects.init)
app.command(
    rich_help_panel=_PROJECT,
    epilog=_examples(
        "caboose link",
        "caboose link --project shop --environment staging --service api",
    ),
)(projects.link)
app.command(rich_help_panel=_PROJECT, epilog=_examples("caboose unlink"))(projects.unlink)
app.command(rich_help_panel=_PROJECT, epilog=_examples("caboose status --json"))(projects.status)
app.command("list", rich_help_panel=_PROJECT, epilog=_examples("caboose list"))(
    projects.list_projects
)
app.command(
    "open",
    rich_help_panel=_PROJECT,
    epilog=_examples("caboose open", "caboose open --browser", "caboose open --dashboard -b"),
)(projects.open_url)
app.add_typer(
    environments.app,
    name="environment",
    rich_help_panel=_PROJECT,
    epilog=_examples("caboose environment new staging", "caboose environment switch production"),
)
app.add_typer(
    services.app,
    name="service",
    rich_help_panel=_PROJECT,
    epilog=_examples("caboose service new worker", "caboose service switch api"),
)

app.command(
    rich_help_panel=_DEPLOY,
    epilog=_examples(
        "caboose up",
        "caboose up --detach",
        "caboose up ./api --service api --environment staging",
        "caboose up --dry-run",
    ),
)(deploy.up)
app.command(
    rich_help_panel=_DEPLOY,
    epilog=_examples(
        "caboose logs",
        "caboose logs --build --lines 50",
        "caboose logs --follow",
        "caboose logs --deployment 3f2a9c1e --json",
    ),
)(logs.logs)
app.command(
    rich_help_panel=_DEPLOY,
    epilog=_examples("caboose deployments", "caboose deployments -n 5 --json"),
)(deploy.deployments)
app.command(rich_help_panel=_DEPLOY, epilog=_examples("caboose redeploy --wait"))(deploy.redeploy)
app.command(
    rich_help_panel=_DEPLOY,
    epilog=_examples("caboose rollback", "caboose rollback 3f2a9c1e --wait"),
)(deploy.rollback)
app.command(rich_help_panel=_DEPLOY, epilog=_examples("caboose restart"))(deploy.restart)
app.command(rich_help_panel=_DEPLOY, epilog=_examples("caboose down --yes"))(deploy.down)
app.command(
    rich_help_panel=_DEPLOY,
    epilog=_examples(
        "caboose domain", "caboose domain --generate", "caboose domain app.example.com"
    ),
)(domains.domain)

app.add_typer(
    variables_commands.app,
    name="variables",
    rich_help_panel=_CONFIG,
    epilog=_examples(
        "caboose variables",
        "caboose variables set DEBUG=1 API_URL=https://api.example.com",
        "caboose variables delete DEBUG",
        "caboose variables import .env --skip-deploys",
    ),
)
app.command(
    rich_help_panel=_CONFIG,
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    epilog=_examples("caboose run -- python manage.py migrate", "caboose run -- env"),
)(variables_commands.run)
