"""``login``, ``logout``, ``whoami``: who the CLI acts as, and on which instance."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.prompt import Prompt

from caboose_cli import output
from caboose_cli.commands.common import JsonOption, is_interactive, open_client
from caboose_cli.config import Credentials, delete_credentials, load_credentials, save_credentials
from caboose_cli.errors import CliError, UsageError

if TYPE_CHECKING:
    from caboose_cli.client import Client

HostOption = Annotated[
    str | None,
    typer.Option(
        "--host",
        help="The instance, e.g. https://caboose.example.com. Default: CABOOSE_HOST, else the "
        "last one used, else http://localhost:8080.",
    ),
]


def login(
    host: HostOption = None,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            help="Log in with an API token (cb_…) instead of a password; `-` reads it from "
            "stdin (kept out of the shell history).",
        ),
    ] = None,
    email: Annotated[
        str | None, typer.Option("--email", help="Your email (asked for when omitted).")
    ] = None,
    password_stdin: Annotated[
        bool,
        typer.Option("--password-stdin", help="Read the password from stdin, for scripts."),
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Log in to a Caboose instance.

    Asks for your email and password, or takes an API token. The credential is stored in
    ~/.config/caboose/credentials.json (mode 0600); a session is refreshed automatically.
    """
    from caboose_cli.client import Auth, Client, resolve_auth  # lazily: see common.open_client

    target = resolve_auth(host).host
    if token is not None:
        if token == "-":  # noqa: S105 (the stdin marker, not a secret)
            token = sys.stdin.readline()
        if not token.strip():
            raise UsageError("The token is empty")
        credentials = Credentials(host=target, api_token=token.strip())
        me = _whoami(Client(Auth(target, credentials.api_token, "given")))
    else:
        credentials = _password_login(target, email=email, password_stdin=password_stdin)
        me = _whoami(Client(Auth(target, credentials.access_token, "given")))
    credentials.email = str(me.get("email") or email or "")
    save_credentials(credentials)
    if os.environ.get("CABOOSE_TOKEN"):
        output.warn("CABOOSE_TOKEN is set: it takes precedence over this login while it is.")
    if json_output:
        output.print_json({"host": target, "user": me})
        return
    output.success(f"Logged in to {escape(target)} as [bold]{escape(credentials.email)}[/]")


def _password_login(host: str, *, email: str | None, password_stdin: bool) -> Credentials:
    if email is None:
        if not is_interactive():
            raise UsageError(
                "No terminal to ask for your email",
                hint="Pass --email with --password-stdin, or --token.",
            )
        email = Prompt.ask("Email", console=output.stderr()).strip()
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif is_interactive():
        password = Prompt.ask("Password", password=True, console=output.stderr())
    else:
        raise UsageError(
            "No terminal to ask for your password", hint="Pass --password-stdin, or use --token."
        )
    if not email or not password:
        raise UsageError("Both an email and a password are needed")
    from caboose_cli.client import Auth, Client

    with Client(Auth(host, None, "none")) as client:
        tokens = client.post_anonymous("/auth/login", {"email": email, "password": password})
    try:
        return Credentials(
            host=host,
            access_token=str(tokens["access_token"]),
            refresh_token=str(tokens["refresh_token"]),
            email=email,
        )
    except (KeyError, TypeError):
        raise CliError(f"{host} answered the login without tokens") from None


def _whoami(client: Client) -> dict[str, Any]:
    with client:
        me: dict[str, Any] = client.get("/me")
    return me


def logout(json_output: JsonOption = False) -> None:
    """Log out: end the session on the instance and forget the stored credential.

    An API token stored with `login --token` is only forgotten here; revoke it with
    `caboose tokens revoke`.
    """
    stored = load_credentials()
    if stored is None:
        if json_output:
            output.print_json({"logged_out": False})
        else:
            output.info("Not logged in.")
        return
    if stored.is_session:
        from caboose_cli.client import Auth, Client

        try:
            with Client(Auth(stored.host, stored.access_token, "stored", stored)) as client:
                client.post("/auth/logout", {"refresh_token": stored.refresh_token})
        except CliError as exc:
            output.warn(f"Could not end the session on {stored.host} ({exc.message}).")
    delete_credentials()
    if os.environ.get("CABOOSE_TOKEN"):
        output.warn("CABOOSE_TOKEN is still set: commands keep using it.")
    if json_output:
        output.print_json({"logged_out": True, "host": stored.host})
        return
    output.success(f"Logged out of {escape(stored.host)}")
    if not stored.is_session:
        output.info("The API token itself stays valid: revoke it with `caboose tokens revoke`.")


def whoami(json_output: JsonOption = False) -> None:
    """Show who you are logged in as, and your workspaces."""
    with open_client() as client:
        me = client.get("/me")
        host = client.host
    if json_output:
        output.print_json(me)
        return
    name = f" ({me['name']})" if me.get("name") else ""
    output.result(f"[bold]{escape(str(me.get('email')))}[/]{escape(name)} on {escape(host)}")
    workspaces = [f"{w.get('name')} ({w.get('role')})" for w in me.get("workspaces", [])]
    if workspaces:
        output.result(f"Workspaces: {escape(', '.join(workspaces))}")
