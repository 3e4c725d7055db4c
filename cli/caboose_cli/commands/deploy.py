"""``up`` and the deployment operations: ``redeploy``, ``rollback``, ``restart``, ``down``,
``deployments``."""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.text import Text

from caboose_cli import output, packing
from caboose_cli.commands.common import (
    EnvironmentOption,
    JsonOption,
    ServiceOption,
    YesOption,
    confirm,
    open_client,
)
from caboose_cli.errors import CliError, ExitCode, NotFoundError, UsageError
from caboose_cli.statuses import FINAL_STATUSES, IN_PROGRESS_STATUSES, UP_DONE_STATUSES
from caboose_cli.targets import Target, is_uuid, resolve_target

if TYPE_CHECKING:
    from caboose_cli.client import Client

_CHUNK = 256 * 1024
# Uploading 200 MiB over a slow link takes a while; the server may also take time to store it.
_UPLOAD_TIMEOUT_SECONDS = 600.0

WaitOption = Annotated[
    bool,
    typer.Option(
        "--wait", "-w", help="Follow the logs until the new deployment is ACTIVE or has failed."
    ),
]


# Deployments of a service ------------------------------------------------------------------


def list_deployments(client: Client, target: Target, *, limit: int = 20) -> list[dict[str, Any]]:
    """Newest first, in the target's environment."""
    page = client.get(
        f"/services/{target.service_id}/deployments",
        params={"environment_id": target.environment_id, "limit": limit},
    )
    items = page.get("items", []) if isinstance(page, dict) else page
    return [item for item in items if isinstance(item, dict)]


def latest_deployment(
    client: Client, target: Target, *, statuses: frozenset[str] | None = None
) -> dict[str, Any] | None:
    for deployment in list_deployments(client, target, limit=100):
        if statuses is None or str(deployment.get("status")) in statuses:
            return deployment
    return None


def resolve_deployment(client: Client, target: Target | None, ref: str) -> dict[str, Any]:
    """A deployment by id, or by the first characters of its id among the recent ones (the
    8-character ids `caboose deployments` shows)."""
    if is_uuid(ref):
        deployment: dict[str, Any] = client.get(f"/deployments/{ref}")
        return deployment
    if target is None or len(ref) < 4:
        raise UsageError(f"{ref!r} is not a deployment id (give at least 4 characters of it)")
    matches = [
        d for d in list_deployments(client, target, limit=100) if str(d["id"]).startswith(ref)
    ]
    if not matches:
        raise NotFoundError(f"No recent deployment of {target.describe()} starts with {ref!r}")
    if len(matches) > 1:
        raise UsageError(f"Several deployments start with {ref!r}", hint="Give more characters.")
    return matches[0]


# Following a deployment ---------------------------------------------------------------------


def follow_deployment(
    client: Client, deployment: dict[str, Any], *, json_output: bool
) -> dict[str, Any]:
    """Stream a new deployment's build and deploy logs until it is ACTIVE or has ended, then
    return it as the API now describes it (with its URL)."""
    from caboose_cli.streaming import LogFollower  # lazily: see common.open_client

    deployment_id = str(deployment["id"])

    def on_log(message: dict[str, Any]) -> None:
        line = str(message.get("line", ""))
        if json_output:  # stdout is reserved for the JSON result
            sys.stderr.write(Text.from_ansi(line).plain + "\n")
            sys.stderr.flush()
        else:
            output.log_line(line)

    def on_status(status: str, message: dict[str, Any]) -> None:
        text = Text("● ", style="dim") + output.status_text(status)
        reason = message.get("status_reason") or message.get("reason")
        if reason and status in FINAL_STATUSES:
            text += Text(f"  {reason}", style="dim")
        output.info(text)

    follower = LogFollower(
        client, deployment_id, on_log=on_log, on_status=on_status, stop_on=UP_DONE_STATUSES
    )
    try:
        result = follower.run()
    except KeyboardInterrupt:
        output.info(
            f"\nStopped following. The deployment carries on: "
            f"`caboose logs --follow --deployment {deployment_id}`."
        )
        raise typer.Exit(ExitCode.INTERRUPTED) from None
    final: dict[str, Any] = client.get(f"/deployments/{deployment_id}")
    # The stream can announce ACTIVE a moment before the row has its status and URL.
    for _ in range(10):
        if str(final.get("status")) in UP_DONE_STATUSES and (
            final.get("url") or final.get("status") != "ACTIVE"
        ):
            break
        time.sleep(0.3)
        final = client.get(f"/deployments/{deployment_id}")
    if str(final.get("status")) not in UP_DONE_STATUSES and result.status:
        final["status"] = result.status
    return final


def report_outcome(deployment: dict[str, Any], *, json_output: bool) -> None:
    """Print how a followed deployment ended; exit 1 unless it is ACTIVE."""
    status = str(deployment.get("status"))
    if json_output:
        output.print_json(deployment)
    if status == "ACTIVE":
        if not json_output:
            url = deployment.get("url")
            output.success(f"Deployment {output.short_id(deployment.get('id'))} is live")
            if url:
                output.result(escape(str(url)))
        return
    reason = deployment.get("status_reason") or "no reason given"
    message = f"Deployment {output.short_id(deployment.get('id'))} {status}: {reason}"
    if json_output:
        output.error(message)
        raise typer.Exit(ExitCode.FAILURE)
    raise CliError(message, hint="See the build log with `caboose logs --build`.")


def _started(
    deployment: dict[str, Any], what: str, *, json_output: bool, wait: bool, client: Client
) -> None:
    if wait:
        report_outcome(
            follow_deployment(client, deployment, json_output=json_output), json_output=json_output
        )
        return
    if json_output:
        output.print_json(deployment)
        return
    status = deployment.get("status", "QUEUED")
    output.success(f"{what}: deployment {output.short_id(deployment.get('id'))} ({status})")
    output.info("Follow it with `caboose logs --follow`.")


# up ----------------------------------------------------------------------------------------


def up(
    path: Annotated[
        Path,
        typer.Argument(help="The folder to deploy.", file_okay=False, dir_okay=True, exists=True),
    ] = Path(),
    service: ServiceOption = None,
    environment: EnvironmentOption = None,
    detach: Annotated[
        bool, typer.Option("--detach", "-d", help="Return once uploaded; do not follow the logs.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List the files that would be uploaded, and stop.")
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Deploy this folder: pack it, upload it, and follow the build and deploy logs.

    The folder is packed as a tarball honouring .gitignore, .railwayignore and .cabooseignore
    (never .git, node_modules, .venv or __pycache__). Exits 0 once the deployment is ACTIVE and
    prints its URL; exits 1 if it FAILED, CRASHED or was CANCELLED.
    """
    if dry_run:
        _dry_run(path, json_output=json_output)
        return
    with open_client() as client:
        target = resolve_target(client, service=service, environment=environment, cwd=path)
        with tempfile.TemporaryFile(prefix="caboose-up-") as archive:
            size = _pack(path, archive, quiet=json_output)
            deployment = _upload(client, target, archive, size, quiet=json_output)
        if not json_output:
            output.info(
                f"Deploying {escape(target.describe())} as {output.short_id(deployment.get('id'))}"
            )
        if detach:
            if json_output:
                output.print_json(deployment)
            else:
                output.result(str(deployment.get("id")))
                output.info("Follow it with `caboose logs --follow`.")
            return
        final = follow_deployment(client, deployment, json_output=json_output)
    report_outcome(final, json_output=json_output)


def _dry_run(path: Path, *, json_output: bool) -> None:
    plan = packing.collect(path)
    for warning in plan.warnings:
        output.warn(warning)
    if json_output:
        output.print_json(
            {
                "files": [e.path for e in plan.entries if e.kind != "dir"],
                "total_bytes": plan.total_bytes,
                "limit_bytes": packing.DEFAULT_MAX_BYTES,
                "warnings": plan.warnings,
            }
        )
    else:
        for entry in plan.entries:
            if entry.kind == "file":
                output.result(f"{packing.format_size(entry.size):>10}  {escape(entry.path)}")
            elif entry.kind == "symlink":
                output.result(
                    f"{'link':>10}  {escape(entry.path)} → {escape(entry.link_target or '')}"
                )
        output.info(
            f"{output.count(plan.file_count, 'file')}, {packing.format_size(plan.total_bytes)}"
        )
    packing.check_size(plan)


def _pack(path: Path, archive: IO[bytes], *, quiet: bool) -> int:
    with output.stderr().status("Packing…"):
        plan = packing.collect(path)
        for warning in plan.warnings:
            output.warn(warning)
        packing.check_size(plan)
        packing.write_tarball(plan, archive)
    size = archive.tell()
    if not quiet:
        output.info(
            f"Packed {output.count(plan.file_count, 'file')} "
            f"({packing.format_size(plan.total_bytes)}, "
            f"{packing.format_size(size)} compressed)"
        )
    return size


def _upload(
    client: Client, target: Target, archive: IO[bytes], size: int, *, quiet: bool
) -> dict[str, Any]:
    import httpx  # lazily: see common.open_client

    console = output.stderr()
    progress = Progress(
        TextColumn("Uploading"),
        BarColumn(),
        DownloadColumn(binary_units=True),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=quiet or not console.is_terminal,
    )
    with progress:
        task = progress.add_task("upload", total=size)

        def chunks() -> Iterator[bytes]:
            archive.seek(0)
            progress.reset(task, total=size)
            while block := archive.read(_CHUNK):
                progress.advance(task, len(block))
                yield block

        response = client.request(
            "POST",
            f"/services/{target.service_id}/uploads",
            params={"environment_id": target.environment_id},
            content=chunks,
            headers={"Content-Type": "application/gzip", "Content-Length": str(size)},
            timeout=httpx.Timeout(
                30.0, read=_UPLOAD_TIMEOUT_SECONDS, write=_UPLOAD_TIMEOUT_SECONDS
            ),
        )
    deployment: dict[str, Any] = response.json()
    return deployment


# Operations on deployments -----------------------------------------------------------------


def redeploy(
    service: ServiceOption = None,
    environment: EnvironmentOption = None,
    wait: WaitOption = False,
    json_output: JsonOption = False,
) -> None:
    """Deploy the latest deployment's source again (rebuilding it).

    Use it after changing variables or settings.
    """
    with open_client() as client:
        target = resolve_target(client, service=service, environment=environment)
        current = latest_deployment(client, target, statuses=frozenset({"ACTIVE"}))
        current = current or latest_deployment(client, target)
        if current is None:
            raise NotFoundError(
                f"{target.describe()} has no deployment yet", hint="Run `caboose up`."
            )
        deployment = client.post(f"/deployments/{current['id']}/redeploy")
        _started(deployment, "Redeploying", json_output=json_output, wait=wait, client=client)


def rollback(
    deployment_ref: Annotated[
        str | None,
        typer.Argument(
            metavar="[DEPLOYMENT]",
            help="Deployment id (or its first characters) to go back to. Default: the one "
            "before the current.",
        ),
    ] = None,
    service: ServiceOption = None,
    environment: EnvironmentOption = None,
    wait: WaitOption = False,
    json_output: JsonOption = False,
) -> None:
    """Go back to an earlier deployment's build, without rebuilding."""
    with open_client() as client:
        target = resolve_target(client, service=service, environment=environment)
        if deployment_ref:
            chosen = resolve_deployment(client, target, deployment_ref)
        else:
            chosen = _previous_good(list_deployments(client, target, limit=100), target)
        deployment = client.post(f"/deployments/{chosen['id']}/rollback")
        what = f"Rolling back to {output.short_id(chosen['id'])}"
        _started(deployment, what, json_output=json_output, wait=wait, client=client)


def _previous_good(deployments: list[dict[str, Any]], target: Target) -> dict[str, Any]:
    """The newest deployment older than the live one that once ran (replaced ones end REMOVED)
    and still has a build to go back to. With nothing live (after `down`), the newest such."""
    statuses = [str(d.get("status")) for d in deployments]
    older = deployments[statuses.index("ACTIVE") + 1 :] if "ACTIVE" in statuses else deployments
    for deployment in older:
        if deployment.get("status") in {"ACTIVE", "REMOVED"} and deployment.get("build_id", True):
            return deployment
    raise NotFoundError(
        f"{target.describe()} has no earlier deployment to roll back to",
        hint="Pick one with `caboose rollback DEPLOYMENT` (ids from `caboose deployments`).",
    )


def restart(
    service: ServiceOption = None,
    environment: EnvironmentOption = None,
    wait: WaitOption = False,
    json_output: JsonOption = False,
) -> None:
    """Restart the live deployment's processes (same build, no rebuild)."""
    with open_client() as client:
        target = resolve_target(client, service=service, environment=environment)
        current = latest_deployment(client, target, statuses=frozenset({"ACTIVE"}))
        if current is None:
            raise NotFoundError(f"{target.describe()} has nothing running to restart")
        deployment = client.post(f"/deployments/{current['id']}/restart")
        if not isinstance(deployment, dict) or deployment.get("id") in {None, current["id"]}:
            # Restarted in place (no new deployment): nothing new to follow.
            restarted = client.get(f"/deployments/{current['id']}")
            if wait:
                report_outcome(restarted, json_output=json_output)
            elif json_output:
                output.print_json(restarted)
            else:
                output.success(f"Restarted deployment {output.short_id(current['id'])}")
            return
        _started(deployment, "Restarting", json_output=json_output, wait=wait, client=client)


def down(
    service: ServiceOption = None,
    environment: EnvironmentOption = None,
    yes: YesOption = False,
    json_output: JsonOption = False,
) -> None:
    """Remove the latest deployment: stop it and take its URL offline."""
    with open_client() as client:
        target = resolve_target(client, service=service, environment=environment)
        current = latest_deployment(
            client, target, statuses=IN_PROGRESS_STATUSES | frozenset({"ACTIVE"})
        )
        if current is None:
            raise NotFoundError(f"{target.describe()} has no running deployment")
        confirm(
            f"Remove deployment {output.short_id(current['id'])} of {target.describe()}?", yes=yes
        )
        removed = client.delete(f"/deployments/{current['id']}")
    if json_output:
        output.print_json(
            removed if isinstance(removed, dict) else {"id": current["id"], "removed": True}
        )
        return
    output.success(
        f"Removed deployment {output.short_id(current['id'])} of {escape(target.describe())}"
    )


def deployments(
    service: ServiceOption = None,
    environment: EnvironmentOption = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=1000, help="How many.")] = 20,
    json_output: JsonOption = False,
) -> None:
    """List the service's deployments, newest first."""
    with open_client() as client:
        target = resolve_target(client, service=service, environment=environment)
        items = list_deployments(client, target, limit=limit)
    if json_output:
        output.print_json(items)
        return
    if not items:
        output.info(f"{escape(target.describe())} has no deployment yet.")
        return
    output.table(
        ["ID", "STATUS", "COMMIT", "AGE", "URL"],
        [
            (
                output.short_id(d.get("id")),
                output.status_text(d.get("status")),
                str(d.get("commit_sha") or "")[:7] or "—",
                output.age(d.get("created_at")),
                str(d.get("url") or ""),
            )
            for d in items
        ],
    )
