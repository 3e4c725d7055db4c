"""``logs``: a deployment's build or runtime logs, from history and live."""

from __future__ import annotations

from collections import deque
from typing import Annotated, Any

import typer
from rich.markup import escape

from caboose_cli import output
from caboose_cli.commands.common import EnvironmentOption, ServiceOption, open_client
from caboose_cli.commands.deploy import latest_deployment, resolve_deployment
from caboose_cli.errors import NotFoundError
from caboose_cli.statuses import AFTER_BUILD_STATUSES, FINAL_STATUSES
from caboose_cli.targets import is_uuid, resolve_target

# What the platform did (fetch, plan, build, release, start, route) and the build commands' output
# make the build log; the app's output is the rest.
BUILD_STREAMS = ("build", "system")
APP_STREAMS = ("stdout", "stderr")


def logs(
    deployment_ref: Annotated[
        str | None,
        typer.Option(
            "--deployment",
            "-d",
            help="Deployment id (or its first characters). Default: the latest deployment.",
        ),
    ] = None,
    build: Annotated[
        bool,
        typer.Option(
            "--build",
            "-b",
            help="Show the build and deploy log (the platform's steps and the build output) "
            "instead of the app's.",
        ),
    ] = False,
    lines: Annotated[
        int | None, typer.Option("--lines", "-n", min=0, help="Only the last N lines of history.")
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep streaming new lines (Ctrl-C to stop).")
    ] = False,
    service: ServiceOption = None,
    environment: EnvironmentOption = None,
    json_output: Annotated[
        bool,
        typer.Option("--json", help="One JSON object per line: id, ts, stream, replica, line."),
    ] = False,
) -> None:
    """Show a deployment's logs: the app's output by default, the build's with --build."""
    from caboose_cli.streaming import LogFollower, fetch_history  # lazily: see open_client

    with open_client() as client:
        if deployment_ref and is_uuid(deployment_ref):
            deployment = resolve_deployment(client, None, deployment_ref)
        else:
            target = resolve_target(client, service=service, environment=environment)
            found = (
                resolve_deployment(client, target, deployment_ref)
                if deployment_ref
                else latest_deployment(client, target)
            )
            if found is None:
                raise NotFoundError(
                    f"{target.describe()} has no deployment yet", hint="Run `caboose up`."
                )
            deployment = found
        deployment_id = str(deployment["id"])

        streams = BUILD_STREAMS if build else APP_STREAMS

        def wanted(entry: dict[str, Any]) -> bool:
            return entry.get("stream") in streams

        def show(entry: dict[str, Any]) -> None:
            if not wanted(entry):
                return
            if json_output:
                output.print_json_line(entry)
            else:
                output.log_line(str(entry.get("line", "")))

        history = fetch_history(client, deployment_id, streams=streams)
        shown = deque((entry for entry in history if wanted(entry)), maxlen=lines)
        for entry in shown:
            show(entry)
        status = str(deployment.get("status"))
        if not follow:
            if not shown and not json_output:
                output.info(f"No {'build ' if build else ''}logs for deployment {deployment_id}.")
            return
        done_statuses = AFTER_BUILD_STATUSES if build else FINAL_STATUSES
        if status in done_statuses:
            output.info(f"Deployment {output.short_id(deployment_id)} is {escape(status)}.")
            return
        follower = LogFollower(
            client,
            deployment_id,
            on_log=show,
            stop_on=done_statuses,
            since=str(history[-1]["id"]) if history and "id" in history[-1] else None,
        )
        try:
            result = follower.run()
        except KeyboardInterrupt:  # the usual way to stop following: not a failure
            return
        if result.status and not json_output:
            output.info(f"Deployment {output.short_id(deployment_id)} is {escape(result.status)}.")
