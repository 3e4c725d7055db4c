"""Options and helpers every command shares, so flags read the same everywhere."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.prompt import Confirm, Prompt

from caboose_cli import output
from caboose_cli.errors import CliError, UsageError

if TYPE_CHECKING:
    from caboose_cli.client import Client

JsonOption = Annotated[
    bool, typer.Option("--json", help="Print the result as JSON on stdout, for scripts.")
]
ServiceOption = Annotated[
    str | None,
    typer.Option(
        "--service", "-s", help="Service name or id. Default: the one this folder is linked to."
    ),
]
EnvironmentOption = Annotated[
    str | None,
    typer.Option(
        "--environment",
        "-e",
        help="Environment name or id. Default: the linked one, else production.",
    ),
]
YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]


def open_client(host: str | None = None) -> Client:
    """A client for ``--host`` / ``CABOOSE_HOST`` / the stored login, with its token."""
    # Imported here, not at the top: httpx and websockets take a while to import, and `--help`,
    # `--version` and shell completion (run on every TAB) should not wait for them.
    from caboose_cli.client import Client, resolve_auth

    return Client(resolve_auth(host))


def is_interactive() -> bool:
    """Can we ask the user? Prompts are written to stderr, so only stdin must be a terminal
    (``caboose link | tee`` still prompts; a CI job never hangs on one)."""
    return sys.stdin.isatty()


def choose(
    items: Sequence[dict[str, Any]], *, noun: str, label: Callable[[dict[str, Any]], str]
) -> dict[str, Any]:
    """Ask the user to pick one item by number or by name."""
    console = output.stderr()
    console.print(f"[bold]Choose a {noun}:[/]")
    for number, item in enumerate(items, 1):
        console.print(f"  [cyan]{number}[/]  {escape(label(item))}")
    while True:
        answer = (
            Prompt.ask(
                f"{noun.capitalize()} [1-{len(items)}]",
                console=console,
                default="1" if len(items) == 1 else None,
                show_default=len(items) == 1,
            )
            or ""
        ).strip()
        if answer.isdigit() and 1 <= int(answer) <= len(items):
            return items[int(answer) - 1]
        for item in items:
            if answer and answer in (item.get("name"), str(item.get("id"))):
                return item
        console.print(f"[red]Type a number from 1 to {len(items)}, or a name.[/]")


def confirm(question: str, *, yes: bool) -> None:
    """Stop unless the user agrees (or passed ``--yes``). Without a terminal, ``--yes`` is
    required: a script must say what it means rather than hang on a prompt."""
    if yes:
        return
    if not is_interactive():
        raise UsageError(f"{question} Pass --yes to confirm when not on a terminal.")
    if not Confirm.ask(question, console=output.stderr(), default=False):
        raise CliError("Cancelled")


def require_names(values: Sequence[str], *, what: str) -> None:
    if not values:
        raise UsageError(f"Give at least one {what}")
