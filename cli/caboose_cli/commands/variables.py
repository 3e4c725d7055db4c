"""``variables`` (list, set, delete, import) and ``run``: a service's configuration, on the
instance and in a local shell."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlsplit

import typer
from rich.markup import escape
from rich.text import Text

from caboose_cli import output, references
from caboose_cli.commands.common import (
    EnvironmentOption,
    JsonOption,
    ServiceOption,
    YesOption,
    confirm,
    open_client,
    require_names,
)
from caboose_cli.commands.deploy import list_deployments
from caboose_cli.dotenv import parse_dotenv
from caboose_cli.errors import ApiError, UsageError
from caboose_cli.targets import Target, resolve_target, services_of

if TYPE_CHECKING:
    from caboose_cli.client import Client

app = typer.Typer(
    help="Manage a service's variables (per environment). Values are masked unless --reveal.",
    no_args_is_help=False,
)

SkipDeploysOption = Annotated[
    bool,
    typer.Option("--skip-deploys", help="Change the variables without redeploying the service."),
]
RevealOption = Annotated[bool, typer.Option("--reveal", help="Show the values.")]
KvOption = Annotated[bool, typer.Option("--kv", help="Print KEY=VALUE lines.")]


def _path(target: Target) -> str:
    return f"/services/{target.service_id}/variables"


def fetch_variable_set(client: Client, service_id: str, environment_id: str) -> dict[str, Any]:
    """``{variables, sealed, values_visible, undecryptable}`` as the API answers."""
    body = client.get(
        f"/services/{service_id}/variables", params={"environment_id": environment_id}
    )
    return body if isinstance(body, dict) else {}


def _values(body: dict[str, Any]) -> dict[str, str]:
    variables = body.get("variables") or {}
    return {str(k): "" if v is None else str(v) for k, v in variables.items()}


def _unreadable(body: dict[str, Any]) -> set[str]:
    """Keys whose value the API masked: sealed ones, undecryptable ones, or all of them when
    the caller's role only sees names."""
    values = _values(body)
    if body.get("values_visible") is False:
        return set(values)
    return {str(k) for k in (body.get("sealed") or [])} | {
        str(k) for k in (body.get("undecryptable") or [])
    }


def _list(
    service: str | None,
    environment: str | None,
    *,
    kv: bool,
    reveal: bool,
    json_output: bool,
) -> None:
    with open_client() as client:
        target = resolve_target(client, service=service, environment=environment)
        body = fetch_variable_set(client, target.service_id, target.environment_id)
    variables = _values(body)
    sealed = {str(k) for k in body.get("sealed") or []}
    shown = {key: output.mask(value, reveal=reveal) for key, value in sorted(variables.items())}
    if json_output:
        output.print_json(shown)
    elif kv:
        for key, value in shown.items():
            typer.echo(f"{key}={value}")
    elif not shown:
        output.info(f"No variables on {escape(target.describe())}.")
    else:
        output.table(
            ["KEY", "VALUE"],
            [
                (escape(k), Text(v) + (Text(" (sealed)", style="dim") if k in sealed else ""))
                for k, v in shown.items()
            ],
        )
    if reveal and body.get("values_visible") is False and not json_output:
        output.warn("Your role sees variable names only: values stay masked.")


@app.callback(invoke_without_command=True)
def variables(
    ctx: typer.Context,
    service: ServiceOption = None,
    environment: EnvironmentOption = None,
    kv: KvOption = False,
    reveal: RevealOption = False,
    json_output: JsonOption = False,
) -> None:
    """Manage a service's variables. Without a subcommand, list them."""
    if ctx.invoked_subcommand is None:
        _list(service, environment, kv=kv, reveal=reveal, json_output=json_output)


@app.command("list", epilog="Example: caboose variables list --kv --reveal > .env.local")
def list_variables(
    service: ServiceOption = None,
    environment: EnvironmentOption = None,
    kv: KvOption = False,
    reveal: RevealOption = False,
    json_output: JsonOption = False,
) -> None:
    """List the variables of the service in this environment."""
    _list(service, environment, kv=kv, reveal=reveal, json_output=json_output)


def _upsert(
    client: Client, target: Target, values: dict[str, str], *, replace: bool = False
) -> Any:
    return client.put(
        _path(target),
        {"variables": values, "replace": replace},
        params={"environment_id": target.environment_id},
    )


def _roll_out(client: Client, target: Target) -> dict[str, Any] | None:
    """Redeploy what runs (else the newest deployment with a build) so the change applies, as
    Railway does; None when nothing was ever deployed (the next `caboose up` picks it up).

    A write never redeploys by itself. The CLI asks for the redeploy through ``/redeploy``
    rather than the API's ``?deploy=true``: a ``delete`` of several keys is several requests
    but must start one deployment, and older servers only echoed ``?deploy=true`` back."""
    deployments = list_deployments(client, target, limit=100)
    live = [d for d in deployments if d.get("status") == "ACTIVE"]
    built = [d for d in deployments if d.get("build_id")]
    if not (live or built):
        return None
    source = (live or built)[0]
    deployment: dict[str, Any] = client.post(f"/deployments/{source['id']}/redeploy")
    return deployment


def _after_change(
    client: Client,
    response: Any,
    target: Target,
    *,
    deploy: bool,
    what: str,
    json_output: bool,
) -> None:
    deployment = _roll_out(client, target) if deploy else None
    if json_output:
        body = response if isinstance(response, dict) else {}
        output.print_json({**body, "deployment": deployment} if deploy else body)
        return
    output.success(f"{what} on {escape(target.describe())}")
    if deployment is not None:
        output.info(
            f"Redeploying with the new variables as {output.short_id(deployment.get('id'))}: "
            "`caboose logs --follow` to watch."
        )
    elif deploy:
        output.info("Nothing deployed yet: the next `caboose up` uses the new variables.")
    else:
        output.info("Not redeployed: the change applies from the next deployment.")


@app.command("set", epilog="Example: caboose variables set DEBUG=1 'GREETING=hello world'")
def set_variables(
    assignments: Annotated[
        list[str], typer.Argument(metavar="KEY=VALUE...", help="Variables to set.")
    ],
    service: ServiceOption = None,
    environment: EnvironmentOption = None,
    skip_deploys: SkipDeploysOption = False,
    json_output: JsonOption = False,
) -> None:
    """Set one or more variables (others are kept), then redeploy."""
    require_names(assignments, what="KEY=VALUE")
    values: dict[str, str] = {}
    for assignment in assignments:
        key, equals, value = assignment.partition("=")
        if not equals or not key.strip():
            raise UsageError(f"{assignment!r} is not KEY=VALUE")
        values[key.strip()] = value
    with open_client() as client:
        target = resolve_target(client, service=service, environment=environment)
        response = _upsert(client, target, values)
        what = f"Set {', '.join(values)}"
        _after_change(
            client, response, target, deploy=not skip_deploys, what=what, json_output=json_output
        )


@app.command("delete", epilog="Example: caboose variables delete DEBUG OLD_TOKEN")
def delete_variables(
    keys: Annotated[list[str], typer.Argument(metavar="KEY...", help="Variables to delete.")],
    service: ServiceOption = None,
    environment: EnvironmentOption = None,
    skip_deploys: SkipDeploysOption = False,
    json_output: JsonOption = False,
) -> None:
    """Delete variables, then redeploy."""
    require_names(keys, what="KEY")
    with open_client() as client:
        target = resolve_target(client, service=service, environment=environment)
        for key in keys:
            client.delete(
                f"{_path(target)}/{key}", params={"environment_id": target.environment_id}
            )
        _after_change(
            client,
            {"deleted": keys},
            target,
            deploy=not skip_deploys,
            what=f"Deleted {', '.join(keys)}",
            json_output=json_output,
        )


@app.command("import", epilog="Example: caboose variables import .env.production --skip-deploys")
def import_variables(
    file: Annotated[
        Path,
        typer.Argument(help="A .env file: KEY=VALUE lines.", exists=True, dir_okay=False),
    ] = Path(".env"),
    replace: Annotated[
        bool, typer.Option("--replace", help="Delete the variables the file does not list.")
    ] = False,
    service: ServiceOption = None,
    environment: EnvironmentOption = None,
    skip_deploys: SkipDeploysOption = False,
    yes: YesOption = False,
    json_output: JsonOption = False,
) -> None:
    """Set every variable of a .env file, then redeploy."""
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"Cannot read {file}: {exc}") from None
    values = parse_dotenv(text, source=str(file))
    if not values:
        raise UsageError(f"{file} holds no KEY=VALUE line")
    with open_client() as client:
        target = resolve_target(client, service=service, environment=environment)
        if replace:
            confirm(
                f"Replace all variables of {target.describe()} with the {len(values)} in {file}?",
                yes=yes,
            )
        response = _upsert(client, target, values, replace=replace)
        what = f"Imported {output.count(len(values), 'variable')} from {escape(str(file))}"
        _after_change(
            client, response, target, deploy=not skip_deploys, what=what, json_output=json_output
        )


# run ---------------------------------------------------------------------------------------


def run(
    command: Annotated[
        list[str] | None, typer.Argument(metavar="-- COMMAND [ARGS]...", help="What to run.")
    ] = None,
    service: ServiceOption = None,
    environment: EnvironmentOption = None,
) -> None:
    """Run a local command with the service's variables in its environment.

    References such as ${{shared.KEY}} are resolved; sealed values cannot be read back, so they
    are left out. The command's exit code becomes caboose's.
    """
    if not command:
        raise UsageError(
            "Give the command to run", hint="e.g. `caboose run -- python manage.py migrate`"
        )
    with open_client() as client:
        target = resolve_target(client, service=service, environment=environment)
        body = fetch_variable_set(client, target.service_id, target.environment_id)
        unreadable = _unreadable(body)
        readable = {k: v for k, v in _values(body).items() if k not in unreadable}
        lookup = _ProjectLookup(client, target)
        name = str(target.service["name"]) if target.service else ""
        resolution = references.resolve(readable, service=name, lookup=lookup)
        platform = lookup.platform(name)
    if unreadable:
        output.warn(f"Left out (sealed, or masked for your role): {', '.join(sorted(unreadable))}")
    for problem in resolution.problems:
        output.warn(problem)
    environ = {**os.environ, **platform, **resolution.values}
    raise typer.Exit(_run_child(command, environ))


class _ProjectLookup:
    """Values other than the service's own, read through the API on first use: shared
    variables, other services' variables, and the platform values a deployed app gets."""

    def __init__(self, client: Client, target: Target) -> None:
        self.client = client
        self.target = target
        self.sets: dict[str, dict[str, str]] = {}
        self.services = {str(s.get("name")): s for s in services_of(client, target.project)}

    def __call__(self, namespace: str, key: str) -> str | None:
        if namespace == references.SHARED:
            return self._set(namespace).get(key)
        if namespace not in self.services:
            return None
        platform = self.platform(namespace)
        if key in platform:
            return platform[key]
        return self._set(namespace).get(key)

    def _set(self, namespace: str) -> dict[str, str]:
        if namespace not in self.sets:
            try:
                if namespace == references.SHARED:
                    body = self.client.get(
                        f"/environments/{self.target.environment_id}/shared-variables"
                    )
                    body = body if isinstance(body, dict) else {}
                else:
                    service_id = str(self.services[namespace]["id"])
                    body = fetch_variable_set(self.client, service_id, self.target.environment_id)
            except ApiError:
                body = {}  # not readable with this role: reported as unknown
            unreadable = _unreadable(body)
            self.sets[namespace] = {k: v for k, v in _values(body).items() if k not in unreadable}
        return self.sets[namespace]

    def platform(self, service_name: str) -> dict[str, str]:
        """``CABOOSE_*`` values of a service (and their ``RAILWAY_*`` twins), as far as the
        API tells them: names, ids and the public domain of its live deployment."""
        service = self.services.get(service_name)
        values = {
            "PROJECT_NAME": str(self.target.project.get("name", "")),
            "PROJECT_ID": self.target.project_id,
            "ENVIRONMENT_NAME": str(self.target.environment.get("name", "")),
            "ENVIRONMENT_ID": self.target.environment_id,
        }
        if service is not None:
            values["SERVICE_NAME"] = service_name
            values["SERVICE_ID"] = str(service.get("id"))
            domain = self._public_domain(str(service.get("id")))
            if domain:
                values["PUBLIC_DOMAIN"] = domain
        return {
            f"{prefix}_{key}": value
            for key, value in values.items()
            for prefix in ("CABOOSE", "RAILWAY")
            if value
        }

    def _public_domain(self, service_id: str) -> str | None:
        try:
            page = self.client.get(
                f"/services/{service_id}/deployments",
                params={"environment_id": self.target.environment_id, "limit": 20},
            )
        except ApiError:
            return None
        items = page.get("items", []) if isinstance(page, dict) else page
        for deployment in items:
            if isinstance(deployment, dict) and deployment.get("status") == "ACTIVE":
                url = deployment.get("url")
                return urlsplit(str(url)).hostname if url else None
        return None


def _run_child(command: list[str], environ: dict[str, str]) -> int:
    try:
        child = subprocess.Popen(command, env=environ)
    except FileNotFoundError:
        output.error(f"Command not found: {command[0]}")
        return 127
    except PermissionError:
        output.error(f"Not executable: {command[0]}")
        return 126
    # Like a shell: Ctrl-C goes to the child (same process group), which decides what to do;
    # we wait for it rather than die first and leave it orphaned.
    try:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread (embedded use): leave signals alone
        return _exit_status(child.wait())
    try:
        code = child.wait()
    finally:
        signal.signal(signal.SIGINT, previous)
    return _exit_status(code)


def _exit_status(code: int) -> int:
    # A child killed by a signal reports -N; shells report 128+N.
    return 128 - code if code < 0 else code
