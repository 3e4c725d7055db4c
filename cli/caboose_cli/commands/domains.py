"""``domain``: the hostnames a service answers on in an environment."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from caboose_cli import output
from caboose_cli.commands.common import EnvironmentOption, JsonOption, ServiceOption, open_client
from caboose_cli.commands.projects import list_domains
from caboose_cli.errors import UsageError
from caboose_cli.targets import resolve_target


def domain(
    hostname: Annotated[
        str | None,
        typer.Argument(help="A custom domain to add, e.g. app.example.com. Omit to list."),
    ] = None,
    generate: Annotated[
        bool, typer.Option("--generate", help="Add a generated <service>-<project> domain.")
    ] = False,
    service: ServiceOption = None,
    environment: EnvironmentOption = None,
    json_output: JsonOption = False,
) -> None:
    """Show the service's domains, or add one (a custom HOSTNAME, or --generate)."""
    if hostname and generate:
        raise UsageError("Give a HOSTNAME or --generate, not both")
    with open_client() as client:
        target = resolve_target(client, service=service, environment=environment)
        if hostname or generate:
            body: dict[str, str] = {"environment_id": target.environment_id}
            if hostname:
                body["hostname"] = hostname.strip().lower()
            created = client.post(f"/services/{target.service_id}/domains", body)
            if json_output:
                output.print_json(created)
                return
            output.success(f"Added {escape(str(created.get('hostname', hostname)))}")
            if hostname:
                output.info(
                    "Point its DNS (a CNAME, or A/AAAA records) at this instance; the "
                    "certificate is issued once it resolves."
                )
            return
        domains = list_domains(client, target)
    if json_output:
        output.print_json(domains)
        return
    if not domains:
        output.info(
            f"{escape(target.describe())} has no domain yet: `caboose domain --generate`, or "
            "`caboose domain HOSTNAME`."
        )
        return
    output.table(
        ["HOSTNAME", "KIND", "STATUS", "ID"],
        [
            (
                escape(str(d.get("hostname"))),
                str(d.get("kind", "")),
                str(d.get("status", "")),
                str(d.get("id")),
            )
            for d in domains
        ],
    )
