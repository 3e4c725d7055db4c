"""``environment``: list, create and switch between a project's environments."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

import typer
from rich.markup import escape

from caboose_cli import output
from caboose_cli.commands.common import JsonOption, open_client
from caboose_cli.config import save_link
from caboose_cli.errors import NotLinkedError
from caboose_cli.targets import Target, environments_of, pick, resolve_target

app = typer.Typer(help="List, create and switch environments (production, staging …).")

NoSwitchOption = Annotated[
    bool, typer.Option("--no-switch", help="Create it without linking this folder to it.")
]


def switch_link(target: Target, **changes: Any) -> None:
    """Point this folder's link elsewhere (another environment or service of its project)."""
    if target.link is None or target.link_path is None:
        raise NotLinkedError("This folder is not linked, so there is nothing to switch")
    save_link(target.link_path, dataclasses.replace(target.link, **changes))


@app.callback(invoke_without_command=True)
def environment(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """List, create and switch environments. Without a subcommand, list them."""
    if ctx.invoked_subcommand is None:
        list_environments(json_output=json_output)


@app.command("list")
def list_environments(json_output: JsonOption = False) -> None:
    """List the linked project's environments; * marks the linked one."""
    with open_client() as client:
        target = resolve_target(client, need_service=False)
        environments = environments_of(client, target.project)
    if json_output:
        output.print_json(environments)
        return
    output.table(
        ["", "NAME", "ID", "CREATED"],
        [
            (
                "*" if str(e.get("id")) == target.environment_id else "",
                escape(str(e.get("name"))) + (" (preview)" if e.get("is_preview") else ""),
                str(e.get("id")),
                output.age(e.get("created_at")),
            )
            for e in environments
        ],
    )


@app.command("new", epilog="Example: caboose environment new staging")
def new_environment(
    name: Annotated[str, typer.Argument(help="A DNS label, e.g. staging.")],
    no_switch: NoSwitchOption = False,
    json_output: JsonOption = False,
) -> None:
    """Create an environment in the linked project and switch this folder to it."""
    with open_client() as client:
        target = resolve_target(client, need_service=False)
        created = client.post(f"/projects/{target.project_id}/environments", {"name": name})
    if not no_switch and target.link is not None:
        switch_link(
            target, environment_id=str(created["id"]), environment_name=str(created["name"])
        )
    if json_output:
        output.print_json(created)
        return
    output.success(f"Created environment [bold]{escape(str(created['name']))}[/]")
    if not no_switch and target.link is not None:
        output.info("This folder now deploys to it.")


@app.command("switch", epilog="Example: caboose environment switch production")
def switch_environment(
    name: Annotated[str, typer.Argument(help="Environment name or id.")],
    json_output: JsonOption = False,
) -> None:
    """Link this folder to another environment of its project."""
    with open_client() as client:
        target = resolve_target(client, need_service=False)
        chosen = pick(
            environments_of(client, target.project),
            name,
            "environment",
            f"project {target.project.get('name')!r}",
        )
    switch_link(target, environment_id=str(chosen["id"]), environment_name=str(chosen["name"]))
    if json_output:
        output.print_json(chosen)
        return
    output.success(f"Switched to environment [bold]{escape(str(chosen['name']))}[/]")
