"""``tokens``: API tokens for CI and scripts (``CABOOSE_TOKEN``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from caboose_cli import output
from caboose_cli.commands.common import JsonOption, open_client
from caboose_cli.errors import NotFoundError, UsageError
from caboose_cli.targets import resolve_target

if TYPE_CHECKING:
    from caboose_cli.client import Client

app = typer.Typer(help="Create, list and revoke API tokens (for CABOOSE_TOKEN in CI).")


@app.callback(invoke_without_command=True)
def tokens(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Create, list and revoke API tokens. Without a subcommand, list them."""
    if ctx.invoked_subcommand is None:
        list_tokens(json_output=json_output)


@app.command("list")
def list_tokens(json_output: JsonOption = False) -> None:
    """List your API tokens (never their secrets)."""
    with open_client() as client:
        items = client.paginate("/tokens")
    if json_output:
        output.print_json(items)
        return
    if not items:
        output.info("No API tokens: `caboose tokens create NAME`.")
        return
    output.table(
        ["NAME", "PREFIX", "ID", "LAST USED", "STATE"],
        [
            (
                escape(str(t.get("name"))),
                str(t.get("prefix", "")),
                str(t.get("id")),
                output.age(t.get("last_used_at")) if t.get("last_used_at") else "never",
                "revoked" if t.get("revoked_at") else _expiry(t),
            )
            for t in items
        ],
    )


def _expiry(token: dict[str, Any]) -> str:
    expires = output.parse_time(token.get("expires_at"))
    return f"expires {expires:%Y-%m-%d}" if expires else "active"


@app.command("create", epilog="Example: caboose tokens create github-actions --project")
def create_token(
    name: Annotated[str, typer.Argument(help="What the token is for, e.g. github-actions.")],
    expires_in_days: Annotated[
        int | None,
        typer.Option("--expires-in-days", min=1, max=3650, help="Expire after N days."),
    ] = None,
    project: Annotated[
        bool, typer.Option("--project", help="Limit it to the linked project.")
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Create an API token. Its secret is printed once: store it now."""
    body: dict[str, Any] = {"name": name}
    if expires_in_days is not None:
        body["expires_in_days"] = expires_in_days
    with open_client() as client:
        if project:
            body["project_id"] = resolve_target(client, need_service=False).project_id
        created = client.post("/tokens", body)
    if json_output:
        output.print_json(created)
        return
    output.success(f"Created token [bold]{escape(name)}[/]. Copy it now, it is not shown again:")
    output.result(str(created.get("token")))


def _find_token(client: Client, ref: str) -> dict[str, Any]:
    items = client.paginate("/tokens")
    for key in ("id", "name", "prefix"):
        matches = [t for t in items if str(t.get(key)) == ref and not t.get("revoked_at")]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise UsageError(f"Several tokens have the {key} {ref!r}", hint="Pass its id.")
    raise NotFoundError(f"No active token with the id, name or prefix {ref!r}")


@app.command("revoke", epilog="Example: caboose tokens revoke github-actions")
def revoke_token(
    ref: Annotated[str, typer.Argument(metavar="TOKEN", help="The token's id, name or prefix.")],
    json_output: JsonOption = False,
) -> None:
    """Revoke an API token at once."""
    with open_client() as client:
        token = _find_token(client, ref)
        client.delete(f"/tokens/{token['id']}")
    if json_output:
        output.print_json({"id": token["id"], "revoked": True})
        return
    output.success(f"Revoked token {escape(str(token.get('name')))}")
