"""Which project, environment and service a command acts on.

In order of precedence: the command's flags (``--service api``), the ``CABOOSE_PROJECT``,
``CABOOSE_ENVIRONMENT`` and ``CABOOSE_SERVICE`` environment variables (CI has no linked folder),
then the link of the current folder or its nearest linked parent. Each accepts a name or an id.
``GET /projects/{id}`` returns the project with its environments and services, so one call
resolves all three.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from caboose_cli.config import Link, find_link, normalize_host
from caboose_cli.errors import NotFoundError, NotLinkedError, UsageError

if TYPE_CHECKING:
    from caboose_cli.client import Client

DEFAULT_ENVIRONMENT = "production"


@dataclass
class Target:
    project: dict[str, Any]
    environment: dict[str, Any]
    service: dict[str, Any] | None
    link: Link | None = None
    link_path: Path | None = None

    @property
    def project_id(self) -> str:
        return str(self.project["id"])

    @property
    def environment_id(self) -> str:
        return str(self.environment["id"])

    @property
    def workspace_id(self) -> str:
        return str(
            self.project.get("workspace_id") or (self.link.workspace_id if self.link else "")
        )

    @property
    def service_id(self) -> str:
        if self.service is None:  # resolve_target(need_service=True) guarantees one
            raise NotLinkedError("No service selected")
        return str(self.service["id"])

    def describe(self) -> str:
        service = f" / {self.service['name']}" if self.service else ""
        return f"{self.project.get('name')} / {self.environment.get('name')}{service}"


def is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def pick(items: Sequence[dict[str, Any]], ref: str, noun: str, within: str) -> dict[str, Any]:
    """The item whose id or name is ``ref``; a clear 'not found' naming the choices otherwise."""
    for item in items:
        if str(item.get("id")) == ref:
            return item
    matches = [item for item in items if item.get("name") == ref]
    if len(matches) == 1:
        return matches[0]
    names = ", ".join(sorted(str(item.get("name")) for item in items)) or "none"
    raise NotFoundError(f"No {noun} named {ref!r} in {within}", hint=f"Available: {names}.")


def current_link(client: Client, cwd: Path | None = None) -> tuple[Path, Link] | None:
    """This folder's link, if it was made against the instance the client talks to."""
    found = find_link(cwd or Path.cwd())
    if found is None:
        return None
    path, link = found
    if normalize_host(link.host) != client.host:
        return None
    return path, link


def find_project(client: Client, ref: str) -> dict[str, Any]:
    """A project's detail by id, or by name across the caller's workspaces."""
    if is_uuid(ref):
        detail: dict[str, Any] = client.get(f"/projects/{ref}")
        return detail
    me = client.get("/me")
    found: list[dict[str, Any]] = []
    for workspace in me.get("workspaces", []):
        page = client.get(f"/workspaces/{workspace['id']}/projects", params={"name": ref})
        found.extend(item for item in page.get("items", []) if item.get("name") == ref)
    if not found:
        raise NotFoundError(f"No project named {ref!r} in your workspaces")
    if len(found) > 1:
        raise UsageError(
            f"Several workspaces have a project named {ref!r}", hint="Pass the project's id."
        )
    detail = client.get(f"/projects/{found[0]['id']}")
    return detail


def environments_of(client: Client, project: dict[str, Any]) -> list[dict[str, Any]]:
    environments = project.get("environments")
    if isinstance(environments, list):
        return environments
    return client.paginate(f"/projects/{project['id']}/environments")


def services_of(client: Client, project: dict[str, Any]) -> list[dict[str, Any]]:
    services = project.get("services")
    if isinstance(services, list):
        return services
    return client.paginate(f"/projects/{project['id']}/services")


def default_environment(environments: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    for environment in environments:
        if environment.get("name") == DEFAULT_ENVIRONMENT:
            return environment
    return environments[0] if environments else None


def resolve_target(
    client: Client,
    *,
    project: str | None = None,
    environment: str | None = None,
    service: str | None = None,
    need_service: bool = True,
    cwd: Path | None = None,
) -> Target:
    where = cwd or Path.cwd()
    found = current_link(client, where)
    link_path, link = found if found else (None, None)
    project_ref = (
        project or os.environ.get("CABOOSE_PROJECT") or (link.project_id if link else None)
    )
    if not project_ref:
        other = find_link(where)
        if other is not None:
            raise NotLinkedError(
                f"{other[0]} is linked to a project on {other[1].host}, not on {client.host}",
                hint="Log in to that instance, or `caboose link` again here.",
            )
        raise NotLinkedError(f"{where} is not linked to a project")
    detail = find_project(client, project_ref)
    same_project = link is not None and str(detail.get("id")) == link.project_id
    name = f"project {detail.get('name')!r}"

    environments = environments_of(client, detail)
    environment_ref = (
        environment
        or os.environ.get("CABOOSE_ENVIRONMENT")
        or (link.environment_id if link and same_project else None)
    )
    if environment_ref:
        chosen_environment = pick(environments, environment_ref, "environment", name)
    else:
        fallback = default_environment(environments)
        if fallback is None:
            raise NotFoundError(f"The {name} has no environment")
        chosen_environment = fallback

    services = services_of(client, detail)
    service_ref = (
        service
        or os.environ.get("CABOOSE_SERVICE")
        or (link.service_id if link and same_project else None)
    )
    chosen_service: dict[str, Any] | None = None
    if service_ref:
        chosen_service = pick(services, service_ref, "service", name)
    elif len(services) == 1:
        chosen_service = services[0]
    elif need_service:
        if not services:
            raise NotLinkedError(
                f"The {name} has no service yet",
                hint="Create one with `caboose service new NAME`.",
            )
        names = ", ".join(sorted(str(s.get("name")) for s in services))
        raise NotLinkedError(
            f"The {name} has several services; which one?",
            hint=f"Pass --service NAME (one of: {names}) or run `caboose service switch NAME`.",
        )
    return Target(
        project=detail,
        environment=chosen_environment,
        service=chosen_service,
        link=link,
        link_path=link_path,
    )
