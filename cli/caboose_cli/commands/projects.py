"""``init``, ``link``, ``unlink``, ``status``, ``list``, ``open``: which project a folder deploys
to, and where to see it."""

from __future__ import annotations

import re
import webbrowser
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlsplit

import typer
from rich.markup import escape
from rich.prompt import Prompt
from rich.text import Text

from caboose_cli import output
from caboose_cli.commands.common import (
    EnvironmentOption,
    JsonOption,
    ServiceOption,
    choose,
    is_interactive,
    open_client,
)
from caboose_cli.commands.deploy import latest_deployment
from caboose_cli.config import Link, delete_link, save_link
from caboose_cli.errors import NotFoundError, UsageError
from caboose_cli.targets import (
    Target,
    default_environment,
    environments_of,
    find_project,
    is_uuid,
    pick,
    resolve_target,
    services_of,
)

if TYPE_CHECKING:
    from caboose_cli.client import Client

WorkspaceOption = Annotated[
    str | None, typer.Option("--workspace", "-w", help="Workspace name, slug or id.")
]
ProjectOption = Annotated[str | None, typer.Option("--project", "-p", help="Project name or id.")]


def slugify(name: str) -> str:
    """A DNS label (what the API requires of project and service names) from a folder name."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:63].strip("-")
    return slug or "app"


def _choose_workspace(client: Client, ref: str | None) -> dict[str, Any]:
    workspaces: list[dict[str, Any]] = client.get("/me").get("workspaces", [])
    if ref:
        for workspace in workspaces:
            if ref in (str(workspace.get("id")), workspace.get("slug")):
                return workspace
        return pick(workspaces, ref, "workspace", "your workspaces")
    if len(workspaces) == 1:
        return workspaces[0]
    if not workspaces:
        raise NotFoundError("You belong to no workspace")
    if not is_interactive():
        names = ", ".join(str(w.get("name")) for w in workspaces)
        raise UsageError("Which workspace?", hint=f"Pass --workspace (one of: {names}).")
    return choose(
        workspaces, noun="workspace", label=lambda w: f"{w.get('name')} ({w.get('role')})"
    )


def _make_link(
    client: Client,
    workspace: dict[str, Any],
    project: dict[str, Any],
    environment: dict[str, Any],
    service: dict[str, Any] | None,
) -> Link:
    return Link(
        host=client.host,
        workspace_id=str(workspace.get("id") or project.get("workspace_id")),
        workspace_name=str(workspace.get("name", "")),
        project_id=str(project["id"]),
        project_name=str(project.get("name", "")),
        environment_id=str(environment["id"]),
        environment_name=str(environment.get("name", "")),
        service_id=str(service["id"]) if service else None,
        service_name=str(service.get("name", "")) if service else None,
    )


def _print_link(path: Path, link: Link, *, json_output: bool, verb: str) -> None:
    if json_output:
        output.print_json({"path": str(path), **link.__dict__})
        return
    service = f" / {link.service_name}" if link.service_name else ""
    output.success(
        f"{verb} {escape(str(path))} to [bold]{escape(link.project_name)}[/] / "
        f"{escape(link.environment_name)}{escape(service)}"
    )


def init(
    name: Annotated[
        str | None, typer.Option("--name", "-n", help="Project name. Default: this folder's.")
    ] = None,
    workspace: WorkspaceOption = None,
    service: Annotated[
        str | None,
        typer.Option(
            "--service", "-s", help="Name of the project's first service. Default: the project's."
        ),
    ] = None,
    no_service: Annotated[
        bool, typer.Option("--no-service", help="Create the project without a service.")
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Create a project and link this folder to it.

    The project comes with its production environment and a first service (named like the
    project unless --service says otherwise), so `caboose up` can deploy right away.
    """
    folder = Path.cwd()
    with open_client() as client:
        chosen_workspace = _choose_workspace(client, workspace)
        if name is None:
            suggestion = slugify(folder.name)
            name = (
                Prompt.ask("Project name", default=suggestion, console=output.stderr())
                if is_interactive()
                else suggestion
            )
        project = client.post(
            f"/workspaces/{chosen_workspace['id']}/projects", {"name": name.strip()}
        )
        environment = default_environment(environments_of(client, project))
        if environment is None:
            raise NotFoundError(f"Project {name!r} was created without an environment")
        created_service = None
        if not no_service:
            created_service = client.post(
                f"/projects/{project['id']}/services", {"name": service or project["name"]}
            )
        link = _make_link(client, chosen_workspace, project, environment, created_service)
    path = save_link(folder, link)
    if not json_output:
        output.success(f"Created project [bold]{escape(str(project['name']))}[/]")
    _print_link(path, link, json_output=json_output, verb="Linked")
    if not json_output:
        output.info("Deploy it with `caboose up`.")


def link(
    workspace: WorkspaceOption = None,
    project: ProjectOption = None,
    environment: EnvironmentOption = None,
    service: ServiceOption = None,
    json_output: JsonOption = False,
) -> None:
    """Link this folder to a project, environment and service.

    Asks for each choice not given as a flag (on a terminal); the link is stored in the config
    directory, not in this folder.
    """
    folder = Path.cwd()
    with open_client() as client:
        several_workspaces = len(client.get("/me").get("workspaces", [])) > 1
        if project and (is_uuid(project) or (several_workspaces and not workspace)):
            detail = find_project(client, project)  # by id, or by name in any workspace
            chosen_workspace = _choose_workspace(client, str(detail.get("workspace_id")))
        else:
            chosen_workspace = _choose_workspace(client, workspace)
            projects = client.paginate(f"/workspaces/{chosen_workspace['id']}/projects")
            within = f"workspace {chosen_workspace.get('name')!r}"
            if project:
                summary = pick(projects, project, "project", within)
            elif not projects:
                raise NotFoundError(
                    f"The {within} has no project", hint="Create one with `caboose init`."
                )
            elif len(projects) == 1:
                summary = projects[0]
            elif is_interactive():
                summary = choose(projects, noun="project", label=lambda p: str(p.get("name")))
            else:
                raise UsageError("Which project?", hint="Pass --project NAME.")
            detail = client.get(f"/projects/{summary['id']}")
        within = f"project {detail.get('name')!r}"
        environments = environments_of(client, detail)
        if environment:
            chosen_environment = pick(environments, environment, "environment", within)
        elif len(environments) > 1 and is_interactive():
            chosen_environment = choose(
                environments, noun="environment", label=lambda e: str(e.get("name"))
            )
        else:
            fallback = default_environment(environments)
            if fallback is None:
                raise NotFoundError(f"The {within} has no environment")
            chosen_environment = fallback
        services = services_of(client, detail)
        chosen_service: dict[str, Any] | None = None
        if service:
            chosen_service = pick(services, service, "service", within)
        elif len(services) == 1:
            chosen_service = services[0]
        elif len(services) > 1 and is_interactive():
            chosen_service = choose(services, noun="service", label=lambda s: str(s.get("name")))
        new_link = _make_link(client, chosen_workspace, detail, chosen_environment, chosen_service)
    path = save_link(folder, new_link)
    _print_link(path, new_link, json_output=json_output, verb="Linked")
    if chosen_service is None and not json_output:
        output.info("No service linked: pass --service to commands, or `caboose service switch`.")


def unlink(json_output: JsonOption = False) -> None:
    """Forget this folder's link (the project itself is untouched)."""
    path = delete_link(Path.cwd())
    if json_output:
        output.print_json({"unlinked": str(path) if path else None})
    elif path is None:
        output.info("This folder is not linked.")
    else:
        output.success(f"Unlinked {escape(str(path))}")


def status(
    service: ServiceOption = None,
    environment: EnvironmentOption = None,
    json_output: JsonOption = False,
) -> None:
    """Show what this folder is linked to and how its latest deployment is doing."""
    with open_client() as client:
        target = resolve_target(
            client, service=service, environment=environment, need_service=False
        )
        deployment = latest_deployment(client, target) if target.service else None
        host = client.host
    if json_output:
        output.print_json(
            {
                "host": host,
                "linked_path": str(target.link_path) if target.link_path else None,
                "workspace_id": target.workspace_id,
                "project": _brief(target.project),
                "environment": _brief(target.environment),
                "service": _brief(target.service) if target.service else None,
                "deployment": deployment,
            }
        )
        return
    rows: list[tuple[str, str | Text]] = [
        ("Instance", host),
        ("Project", str(target.project.get("name"))),
        ("Environment", str(target.environment.get("name"))),
        ("Service", str(target.service.get("name")) if target.service else "—"),
    ]
    if target.link_path:
        rows.append(("Linked folder", str(target.link_path)))
    if deployment:
        line = output.status_text(deployment.get("status"))
        line.append(f"  {output.short_id(deployment.get('id'))}")
        line.append(f"  {output.age(deployment.get('created_at'))}")
        if deployment.get("url"):
            line.append(f"  {deployment['url']}")
        rows.append(("Deployment", line))
    elif target.service:
        rows.append(("Deployment", "none yet (`caboose up`)"))
    for label, value in rows:
        output.result(Text.assemble((f"{label + ':':<15}", "bold"), value))


def _brief(item: dict[str, Any]) -> dict[str, Any]:
    return {"id": item.get("id"), "name": item.get("name")}


def list_projects(json_output: JsonOption = False) -> None:
    """List the projects of all your workspaces."""
    with open_client() as client:
        rows: list[dict[str, Any]] = []
        for workspace in client.get("/me").get("workspaces", []):
            for project in client.paginate(f"/workspaces/{workspace['id']}/projects"):
                rows.append({**project, "workspace": workspace.get("name")})
    if json_output:
        output.print_json(rows)
        return
    if not rows:
        output.info("No projects yet: create one with `caboose init`.")
        return
    output.table(
        ["WORKSPACE", "PROJECT", "ID", "CREATED"],
        [
            (
                escape(str(r["workspace"])),
                escape(str(r.get("name"))),
                str(r.get("id")),
                output.age(r.get("created_at")),
            )
            for r in rows
        ],
    )


def open_url(
    dashboard: Annotated[
        bool, typer.Option("--dashboard", help="The project's page in the dashboard instead.")
    ] = False,
    browser: Annotated[
        bool, typer.Option("--browser", "-b", help="Open it in a web browser.")
    ] = False,
    service: ServiceOption = None,
    environment: EnvironmentOption = None,
    json_output: JsonOption = False,
) -> None:
    """Print the service's public URL (or, with --dashboard, its dashboard page)."""
    with open_client() as client:
        target = resolve_target(
            client, service=service, environment=environment, need_service=not dashboard
        )
        url = _dashboard_url(client, target) if dashboard else _public_url(client, target)
    if json_output:
        output.print_json({"url": url})
    else:
        output.result(escape(url))
    if browser and not webbrowser.open(url):
        output.warn("Could not open a browser.")


def _dashboard_url(client: Client, target: Target) -> str:
    return f"{client.host}/projects/{target.project_id}?environment={target.environment_id}"


def _public_url(client: Client, target: Target) -> str:
    deployment = latest_deployment(client, target, statuses=frozenset({"ACTIVE"}))
    if deployment and deployment.get("url"):
        return str(deployment["url"])
    for domain in list_domains(client, target):
        if domain.get("url"):
            return str(domain["url"])
        if domain.get("hostname"):
            return _url_for(client.host, str(domain["hostname"]))
    raise NotFoundError(
        f"{target.describe()} has no public URL yet", hint="Deploy it with `caboose up`."
    )


def _url_for(host: str, hostname: str) -> str:
    """A domain's URL when the API gives none: generated domains are served by the same edge
    router as the API, so the same scheme and port (``http://app.localhost:8080`` locally)."""
    parts = urlsplit(host)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{hostname}{port}"


def list_domains(client: Client, target: Target) -> list[dict[str, Any]]:
    body = client.get(
        f"/services/{target.service_id}/domains", params={"environment_id": target.environment_id}
    )
    items = body.get("items", []) if isinstance(body, dict) else body
    return [
        d
        for d in items
        if isinstance(d, dict)
        and str(d.get("environment_id", target.environment_id)) == target.environment_id
    ]
