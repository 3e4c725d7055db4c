"""``service``: list, create and switch between a project's services."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from caboose_cli import output
from caboose_cli.commands.common import JsonOption, open_client
from caboose_cli.commands.environments import NoSwitchOption, switch_link
from caboose_cli.targets import pick, resolve_target, services_of

app = typer.Typer(help="List, create and switch services.")


@app.callback(invoke_without_command=True)
def service(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """List, create and switch services. Without a subcommand, list them."""
    if ctx.invoked_subcommand is None:
        list_services(json_output=json_output)


@app.command("list")
def list_services(json_output: JsonOption = False) -> None:
    """List the linked project's services; * marks the linked one."""
    with open_client() as client:
        target = resolve_target(client, need_service=False)
        services = services_of(client, target.project)
    if json_output:
        output.print_json(services)
        return
    if not services:
        output.info("No service yet: `caboose service new NAME`.")
        return
    current = str(target.service.get("id")) if target.service else None
    output.table(
        ["", "NAME", "SOURCE", "ID"],
        [
            (
                "*" if str(s.get("id")) == current else "",
                escape(str(s.get("name"))),
                escape(str(s.get("repo_url") or "CLI uploads")),
                str(s.get("id")),
            )
            for s in services
        ],
    )


@app.command(
    "new",
    epilog="Example: caboose service new api --repo https://github.com/acme/api --branch main",
)
def new_service(
    name: Annotated[str, typer.Argument(help="A DNS label, e.g. api.")],
    repo: Annotated[
        str | None, typer.Option("--repo", help="Git repository to deploy from (else: uploads).")
    ] = None,
    branch: Annotated[str | None, typer.Option("--branch", help="Branch to deploy.")] = None,
    root_directory: Annotated[
        str | None, typer.Option("--root-directory", help="Folder of the repository to build.")
    ] = None,
    no_switch: NoSwitchOption = False,
    json_output: JsonOption = False,
) -> None:
    """Create a service in the linked project and switch this folder to it."""
    body = {"name": name}
    for key, value in (("repo_url", repo), ("branch", branch), ("root_directory", root_directory)):
        if value is not None:
            body[key] = value
    with open_client() as client:
        target = resolve_target(client, need_service=False)
        created = client.post(f"/projects/{target.project_id}/services", body)
    if not no_switch and target.link is not None:
        switch_link(target, service_id=str(created["id"]), service_name=str(created["name"]))
    if json_output:
        output.print_json(created)
        return
    output.success(f"Created service [bold]{escape(str(created['name']))}[/]")
    if not no_switch and target.link is not None:
        output.info("This folder now deploys to it.")


@app.command("switch", epilog="Example: caboose service switch worker")
def switch_service(
    name: Annotated[str, typer.Argument(help="Service name or id.")],
    json_output: JsonOption = False,
) -> None:
    """Link this folder to another service of its project."""
    with open_client() as client:
        target = resolve_target(client, need_service=False)
        chosen = pick(
            services_of(client, target.project),
            name,
            "service",
            f"project {target.project.get('name')!r}",
        )
    switch_link(target, service_id=str(chosen["id"]), service_name=str(chosen["name"]))
    if json_output:
        output.print_json(chosen)
        return
    output.success(f"Switched to service [bold]{escape(str(chosen['name']))}[/]")
