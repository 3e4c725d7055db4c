"""Every command against the stand-in API: what a user sees, what is stored, the exit codes."""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import Result

from caboose_cli.config import find_link, load_credentials
from tests.conftest import Cli
from tests.standin import EMAIL, PASSWORD, StandIn


def login(cli: Cli, standin: StandIn) -> None:
    result = cli(
        "login", "--host", standin.url, "--email", EMAIL, "--password-stdin", input=PASSWORD + "\n"
    )
    assert result.exit_code == 0, result.output


def init(cli: Cli, *args: str) -> dict[str, Any]:
    result = cli("init", "--json", *args)
    assert result.exit_code == 0, result.output
    linked: dict[str, Any] = json.loads(result.stdout)
    return linked


def data(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def no_traceback(result: Result) -> None:
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


@pytest.fixture
def linked(cli: Cli, standin: StandIn, project_dir: Path) -> dict[str, Any]:
    login(cli, standin)
    return init(cli)


# login / logout / whoami ---------------------------------------------------------------------


def test_login_with_a_password_stores_a_private_session(
    cli: Cli, standin: StandIn, isolated_config: Path
) -> None:
    login(cli, standin)
    credentials = load_credentials()
    assert credentials is not None
    assert credentials.host == standin.url
    assert credentials.email == EMAIL
    assert credentials.access_token and credentials.refresh_token
    assert stat.S_IMODE((isolated_config / "credentials.json").stat().st_mode) == 0o600
    result = cli("whoami")
    assert result.exit_code == 0
    assert EMAIL in result.stdout and "Ada's workspace (owner)" in result.stdout
    assert data(cli("whoami", "--json"))["email"] == EMAIL


def test_a_wrong_password_is_the_problem_title_and_detail(cli: Cli, standin: StandIn) -> None:
    result = cli(
        "login", "--host", standin.url, "--email", EMAIL, "--password-stdin", input="nope\n"
    )
    assert result.exit_code == 3
    assert "Authentication required: Wrong email or password" in result.stderr
    assert result.stdout == ""
    no_traceback(result)
    assert load_credentials() is None


def test_login_without_a_terminal_needs_flags(cli: Cli, standin: StandIn) -> None:
    result = cli("login", "--host", standin.url)
    assert result.exit_code == 2
    assert "--password-stdin" in result.stderr


def test_login_with_an_api_token_and_logout_forgets_it(cli: Cli, standin: StandIn) -> None:
    user_id = standin.world.users[EMAIL]["id"]
    standin.world.api_tokens["cb_abc"] = {"user_id": user_id, "revoked_at": None}
    assert cli("login", "--host", standin.url, "--token", "cb_abc").exit_code == 0
    credentials = load_credentials()
    assert credentials is not None and credentials.api_token == "cb_abc"
    result = cli("logout")
    assert result.exit_code == 0
    assert "caboose tokens revoke" in result.stderr
    assert load_credentials() is None
    assert not any(path.endswith("/auth/logout") for _, path, _ in standin.world.requests)


def test_login_with_a_token_from_stdin(cli: Cli, standin: StandIn) -> None:
    user_id = standin.world.users[EMAIL]["id"]
    standin.world.api_tokens["cb_piped"] = {"user_id": user_id, "revoked_at": None}
    result = cli("login", "--host", standin.url, "--token", "-", input="cb_piped\n")
    assert result.exit_code == 0, result.output
    credentials = load_credentials()
    assert credentials is not None and credentials.api_token == "cb_piped"
    assert cli("login", "--host", standin.url, "--token", "-", input="\n").exit_code == 2


def test_login_with_a_bad_token_stores_nothing(cli: Cli, standin: StandIn) -> None:
    result = cli("login", "--host", standin.url, "--token", "cb_wrong")
    assert result.exit_code == 3
    assert load_credentials() is None


def test_logout_ends_the_session_on_the_server(cli: Cli, standin: StandIn) -> None:
    login(cli, standin)
    assert cli("logout").exit_code == 0
    assert any(path.endswith("/auth/logout") for _, path, _ in standin.world.requests)
    assert standin.world.refresh_tokens == {}
    assert load_credentials() is None
    assert cli("logout").stderr.strip() == "Not logged in."


def test_not_logged_in_is_exit_3_with_a_hint(cli: Cli, project_dir: Path) -> None:
    result = cli("whoami")
    assert result.exit_code == 3
    assert "Not logged in to http://localhost:8080" in result.stderr
    assert "caboose login" in result.stderr


def test_an_unreachable_instance_is_one_line(cli: Cli) -> None:
    result = cli("whoami", env={"CABOOSE_HOST": "http://127.0.0.1:9", "CABOOSE_TOKEN": "cb_x"})
    assert result.exit_code == 1
    assert result.stderr.startswith("Cannot reach http://127.0.0.1:9")
    no_traceback(result)


def test_the_session_is_refreshed_transparently(cli: Cli, standin: StandIn) -> None:
    login(cli, standin)
    standin.world.expire_access_tokens()
    assert cli("whoami").exit_code == 0
    assert standin.world.refresh_calls == 1


# init / link / unlink / status / list ----------------------------------------------------------


def test_init_creates_a_project_with_a_service_and_links_the_folder(
    cli: Cli, standin: StandIn, project_dir: Path
) -> None:
    login(cli, standin)
    linked = init(cli)
    assert linked["project_name"] == "shop"
    assert linked["environment_name"] == "production"
    assert linked["service_name"] == "shop"
    assert linked["path"] == str(project_dir.resolve())
    found = find_link(project_dir / "sub")
    assert found is not None and found[1].project_id == linked["project_id"]
    status = data(cli("status", "--json"))
    assert status["project"]["name"] == "shop"
    assert status["service"]["name"] == "shop"
    assert status["deployment"] is None
    human = cli("status")
    assert "Project:" in human.stdout and "none yet" in human.stdout


def test_init_twice_is_a_conflict(cli: Cli, standin: StandIn, project_dir: Path) -> None:
    login(cli, standin)
    init(cli)
    result = cli("init")
    assert result.exit_code == 6
    assert "Conflict: A project named 'shop' already exists" in result.stderr


def test_link_by_flags(cli: Cli, standin: StandIn, project_dir: Path) -> None:
    login(cli, standin)
    world = standin.world
    workspace_id = next(iter(world.workspaces))
    project_id = world.add_project(workspace_id, "shop", services=("api", "web"))
    world.add_environment(project_id, "staging")
    linked = data(
        cli("link", "--project", "shop", "--environment", "staging", "--service", "web", "--json")
    )
    assert (linked["project_name"], linked["environment_name"], linked["service_name"]) == (
        "shop",
        "staging",
        "web",
    )
    assert data(cli("status", "--json"))["service"]["name"] == "web"


def test_link_without_a_terminal_asks_for_flags(
    cli: Cli, standin: StandIn, project_dir: Path
) -> None:
    login(cli, standin)
    workspace_id = next(iter(standin.world.workspaces))
    standin.world.add_project(workspace_id, "one")
    standin.world.add_project(workspace_id, "two")
    result = cli("link")
    assert result.exit_code == 2
    assert "Which project?" in result.stderr and "--project" in result.stderr


def test_link_to_an_unknown_project_names_the_choices(
    cli: Cli, standin: StandIn, project_dir: Path
) -> None:
    login(cli, standin)
    standin.world.add_project(next(iter(standin.world.workspaces)), "real")
    result = cli("link", "--project", "typo")
    assert result.exit_code == 4
    assert "No project named 'typo'" in result.stderr and "real" in result.stderr


def test_commands_in_an_unlinked_folder_exit_3(
    cli: Cli, standin: StandIn, project_dir: Path
) -> None:
    login(cli, standin)
    for command in (["up"], ["logs"], ["variables"], ["deployments"], ["status"]):
        result = cli(*command)
        assert result.exit_code == 3, command
        assert "is not linked to a project" in result.stderr
        assert "caboose link" in result.stderr


def test_unlink(cli: Cli, linked: dict[str, Any], project_dir: Path) -> None:
    assert data(cli("unlink", "--json")) == {"unlinked": str(project_dir.resolve())}
    assert find_link(project_dir) is None
    assert cli("unlink").stderr.strip() == "This folder is not linked."


def test_list_shows_projects_of_every_workspace(
    cli: Cli, standin: StandIn, linked: dict[str, Any]
) -> None:
    world = standin.world
    team = world.add_workspace(world.users[EMAIL]["id"], name="Team")
    world.add_project(team, "billing")
    rows = data(cli("list", "--json"))
    assert {(r["workspace"], r["name"]) for r in rows} == {
        ("Ada's workspace", "shop"),
        ("Team", "billing"),
    }
    assert "billing" in cli("list").stdout


def test_ci_can_target_a_project_without_a_link(
    cli: Cli, standin: StandIn, project_dir: Path
) -> None:
    world = standin.world
    project_id = world.add_project(next(iter(world.workspaces)), "shop", services=("api",))
    world.api_tokens["cb_ci"] = {"user_id": world.users[EMAIL]["id"], "revoked_at": None}
    env = {
        "CABOOSE_HOST": standin.url,
        "CABOOSE_TOKEN": "cb_ci",
        "CABOOSE_PROJECT": project_id,
        "CABOOSE_SERVICE": "api",
    }
    status = data(cli("status", "--json", env=env))
    assert status["service"]["name"] == "api"
    assert status["environment"]["name"] == "production"


# up ------------------------------------------------------------------------------------------


def test_up_packs_uploads_and_follows_to_active(
    cli: Cli, standin: StandIn, linked: dict[str, Any], project_dir: Path
) -> None:
    (project_dir / ".gitignore").write_text("*.log\n")
    (project_dir / "debug.log").write_text("noise")
    (project_dir / "node_modules").mkdir()
    (project_dir / "node_modules" / "x.js").write_text("x")
    result = cli("up")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[:3] == ["build step 1", "build step 2", "build step 3"]
    assert "listening on [::]:8000" in lines
    assert lines[-1] == "http://shop-shop.localhost:8080"
    assert "ACTIVE" in result.stderr and "is live" in result.stderr
    (deployment,) = standin.world.deployments.values()
    assert sorted(deployment.files) == [".gitignore", "app.py"]
    upload = next(r for r in standin.world.requests if r[1].endswith("/uploads"))
    assert upload[2] == {"environment_id": linked["environment_id"]}


def test_up_failing_exits_1_with_the_reason(
    cli: Cli, standin: StandIn, linked: dict[str, Any]
) -> None:
    standin.world.outcome = "FAILED"
    standin.world.outcome_reason = "Build failed: npm ci exited with 1"
    result = cli("up")
    assert result.exit_code == 1
    assert "error: the build failed" in result.stdout  # ANSI stripped off a terminal
    assert "\x1b[" not in result.stdout
    assert "FAILED: Build failed: npm ci exited with 1" in result.stderr
    no_traceback(result)


def test_up_crashed_exits_1(cli: Cli, standin: StandIn, linked: dict[str, Any]) -> None:
    standin.world.outcome = "CRASHED"
    standin.world.outcome_reason = "The app exited 5 times"
    result = cli("up")
    assert result.exit_code == 1
    assert "CRASHED: The app exited 5 times" in result.stderr


def test_up_resumes_after_a_dropped_connection_without_repeating_lines(
    cli: Cli, standin: StandIn, linked: dict[str, Any]
) -> None:
    standin.world.ws_drop_after = 2
    result = cli("up")
    assert result.exit_code == 0, result.output
    log_lines = [line for line in result.stdout.splitlines() if not line.startswith("http")]
    assert log_lines == [
        "build step 1",
        "build step 2",
        "build step 3",
        "listening on [::]:8000",
        "==> Live: 1 replica(s) healthy",
    ]
    assert standin.world.ws_connections == 2
    resumed = [q for m, path, q in standin.world.requests if path.endswith("/logs/ws")]
    assert resumed == []  # the WebSocket is not an HTTP route; `since` is checked below
    assert standin.world.ws_drop_after is None


def test_up_falls_back_to_polling_without_a_log_websocket(
    cli: Cli, standin: StandIn, linked: dict[str, Any]
) -> None:
    standin.world.ws_enabled = False
    result = cli("up")
    assert result.exit_code == 0, result.output
    assert "build step 3" in result.stdout and "listening on [::]:8000" in result.stdout
    assert result.stdout.count("build step 1") == 1


def test_up_detach_prints_the_deployment_id(
    cli: Cli, standin: StandIn, linked: dict[str, Any]
) -> None:
    result = cli("up", "--detach")
    assert result.exit_code == 0
    (deployment_id,) = standin.world.deployments
    assert result.stdout.strip() == deployment_id
    assert standin.world.ws_connections == 0


def test_up_json_prints_one_document(cli: Cli, standin: StandIn, linked: dict[str, Any]) -> None:
    result = cli("up", "--json")
    deployment = data(result)
    assert deployment["status"] == "ACTIVE"
    assert deployment["url"] == "http://shop-shop.localhost:8080"
    assert "build step 1" in result.stderr  # logs still shown, on stderr


def test_up_dry_run_lists_files_and_uploads_nothing(
    cli: Cli, standin: StandIn, linked: dict[str, Any], project_dir: Path
) -> None:
    (project_dir / ".cabooseignore").write_text("secret.txt\n")
    (project_dir / "secret.txt").write_text("s")
    listing = data(cli("up", "--dry-run", "--json"))
    assert listing["files"] == [".cabooseignore", "app.py"]
    assert standin.world.deployments == {}


def test_up_refuses_a_folder_over_the_limit(
    cli: Cli,
    standin: StandIn,
    linked: dict[str, Any],
    project_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from caboose_cli import packing

    monkeypatch.setattr(packing, "DEFAULT_MAX_BYTES", 10)
    monkeypatch.setattr(packing.check_size, "__defaults__", (10,))
    (project_dir / "big.bin").write_bytes(b"x" * 100)
    result = cli("up")
    assert result.exit_code == 2
    assert "over the 10 B upload limit" in result.stderr
    assert "big.bin" in result.stderr
    assert standin.world.deployments == {}


def test_up_with_several_services_needs_one(
    cli: Cli, standin: StandIn, linked: dict[str, Any]
) -> None:
    standin.world.add_service(linked["project_id"], "worker")
    assert cli("up", "--service", "worker", "--detach").exit_code == 0
    (deployment,) = standin.world.deployments.values()
    assert standin.world.services[deployment.service_id]["name"] == "worker"


# logs / deployments / rollback / down ----------------------------------------------------------


def deploy(cli: Cli) -> str:
    result = cli("up", "--json")
    deployment: dict[str, Any] = data(result)
    return str(deployment["id"])


def test_logs_history_lines_build_and_json(
    cli: Cli, standin: StandIn, linked: dict[str, Any]
) -> None:
    deploy(cli)
    assert cli("logs").stdout.splitlines() == ["listening on [::]:8000"]
    # The build log: the build's output and the platform's own (system) lines.
    assert cli("logs", "--build").stdout.splitlines() == [
        "build step 1",
        "build step 2",
        "build step 3",
        "==> Live: 1 replica(s) healthy",
    ]
    assert cli("logs", "--build", "--lines", "2").stdout.splitlines() == [
        "build step 3",
        "==> Live: 1 replica(s) healthy",
    ]
    entries = [json.loads(line) for line in cli("logs", "--build", "--json").stdout.splitlines()]
    assert [e["stream"] for e in entries] == ["build", "build", "build", "system"]
    assert set(entries[0]) >= {"id", "ts", "stream", "replica", "line"}


def test_logs_follow_streams_until_the_build_ends(
    cli: Cli, standin: StandIn, linked: dict[str, Any]
) -> None:
    detached = cli("up", "--detach")
    deployment_id = detached.stdout.strip()
    result = cli("logs", "--build", "--follow", "--deployment", deployment_id)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["build step 1", "build step 2", "build step 3"]


def test_logs_of_a_deployment_by_short_id(
    cli: Cli, standin: StandIn, linked: dict[str, Any]
) -> None:
    deployment_id = deploy(cli)
    result = cli("logs", "-d", deployment_id[:8])
    assert result.stdout.splitlines() == ["listening on [::]:8000"]


def test_deployments_rollback_and_down(cli: Cli, standin: StandIn, linked: dict[str, Any]) -> None:
    first = deploy(cli)
    second = deploy(cli)
    listed = data(cli("deployments", "--json"))
    assert [(d["id"], d["status"]) for d in listed] == [(second, "ACTIVE"), (first, "REMOVED")]
    table = cli("deployments").stdout
    assert first[:8] in table and "ACTIVE" in table and "REMOVED" in table and "ago" in table

    rolled = data(cli("rollback", "--wait", "--json"))
    assert rolled["status"] == "ACTIVE"
    new = standin.world.deployments[rolled["id"]]
    assert new.build_id == standin.world.deployments[first].build_id
    assert any(
        path.endswith(f"/deployments/{first}/rollback") for _, path, _ in standin.world.requests
    )

    refused = cli("down")
    assert refused.exit_code == 2 and "--yes" in refused.stderr
    assert cli("down", "--yes").exit_code == 0
    assert standin.world.deployments[rolled["id"]].status == "REMOVED"
    nothing = cli("down", "--yes")
    assert nothing.exit_code == 4 and "no running deployment" in nothing.stderr


def test_rollback_with_nothing_to_go_back_to(
    cli: Cli, standin: StandIn, linked: dict[str, Any]
) -> None:
    deploy(cli)
    result = cli("rollback")
    assert result.exit_code == 4
    assert "no earlier deployment" in result.stderr


def test_redeploy_and_restart(cli: Cli, standin: StandIn, linked: dict[str, Any]) -> None:
    current = deploy(cli)
    assert data(cli("redeploy", "--json"))["status"] in {"QUEUED", "BUILDING"}
    assert any(p.endswith(f"/deployments/{current}/redeploy") for _, p, _ in standin.world.requests)
    restarted = cli("restart", "--wait")
    assert restarted.exit_code == 0, restarted.output


def test_open_prints_the_url(cli: Cli, standin: StandIn, linked: dict[str, Any]) -> None:
    missing = cli("open")
    assert missing.exit_code == 4 and "no public URL yet" in missing.stderr
    deploy(cli)
    assert cli("open").stdout.strip() == "http://shop-shop.localhost:8080"
    dashboard = data(cli("open", "--dashboard", "--json"))["url"]
    assert dashboard.startswith(f"{standin.url}/projects/{linked['project_id']}")


# variables / run -------------------------------------------------------------------------------


def test_variables_set_list_masked_reveal_kv_delete(
    cli: Cli, standin: StandIn, linked: dict[str, Any]
) -> None:
    result = cli("variables", "set", "DEBUG=1", "GREETING=hello world", "EMPTY=")
    assert result.exit_code == 0, result.output
    put = next(r for r in standin.world.requests if r[0] == "PUT")
    assert put[2] == {"environment_id": linked["environment_id"]}
    assert "Nothing deployed yet" in result.stderr  # so nothing to redeploy
    listing = cli("variables")
    assert "DEBUG" in listing.stdout and "hello world" not in listing.stdout
    assert data(cli("variables", "list", "--json")) == {
        "DEBUG": "••••••••",
        "EMPTY": "••••••••",
        "GREETING": "••••••••",
    }
    assert cli("variables", "list", "--kv", "--reveal").stdout.splitlines() == [
        "DEBUG=1",
        "EMPTY=",
        "GREETING=hello world",
    ]
    assert cli("variables", "delete", "DEBUG", "--skip-deploys").exit_code == 0
    delete = next(r for r in standin.world.requests if r[0] == "DELETE")
    assert "deploy" not in delete[2]
    assert set(data(cli("variables", "--json"))) == {"EMPTY", "GREETING"}


def test_changing_variables_redeploys_what_runs(
    cli: Cli, standin: StandIn, linked: dict[str, Any]
) -> None:
    # The CLI itself asks for the one redeploy that applies them (not ?deploy=true per request).
    live = deploy(cli)

    def redeploys() -> list[str]:
        return [r[1] for r in standin.world.requests if r[0] == "POST" and "redeploy" in r[1]]

    result = cli("variables", "set", "DEBUG=1", "--json")
    assert data(result)["deployment"]["id"] != live
    assert redeploys() == [f"/api/v1/deployments/{live}/redeploy"]
    deleted = cli("variables", "delete", "DEBUG")
    assert deleted.exit_code == 0 and "Redeploying with the new variables" in deleted.stderr
    assert len(redeploys()) == 2  # one for the change, whatever the number of keys
    skipped = cli("variables", "set", "A=2", "B=3", "--skip-deploys")
    assert skipped.exit_code == 0 and "Not redeployed" in skipped.stderr
    assert len(redeploys()) == 2


def test_variables_set_skip_deploys_and_bad_input(
    cli: Cli, standin: StandIn, linked: dict[str, Any]
) -> None:
    assert cli("variables", "set", "A=1", "--skip-deploys").exit_code == 0
    put = next(r for r in standin.world.requests if r[0] == "PUT")
    assert "deploy" not in put[2]
    missing_equals = cli("variables", "set", "JUSTAKEY")
    assert missing_equals.exit_code == 2 and "is not KEY=VALUE" in missing_equals.stderr
    invalid = cli("variables", "set", "1BAD=x")
    assert invalid.exit_code == 2
    assert "Request validation failed: Invalid variables" in invalid.stderr
    assert "variables.1BAD" in invalid.stderr


def test_variables_import_a_dotenv_file(
    cli: Cli, standin: StandIn, linked: dict[str, Any], project_dir: Path
) -> None:
    (project_dir / ".env").write_text(
        "# config\nexport A=1\nB=\"two\\nlines\"\nC='$literal' # note\n"
    )
    result = cli("variables", "import", ".env", "--skip-deploys")
    assert result.exit_code == 0, result.output
    key = (linked["service_id"], linked["environment_id"])
    assert standin.world.variables[key] == {"A": "1", "B": "two\nlines", "C": "$literal"}


def test_run_passes_resolved_variables_and_the_exit_code(
    cli: Cli, standin: StandIn, linked: dict[str, Any], capfd: pytest.CaptureFixture[str]
) -> None:
    world = standin.world
    world.shared[linked["environment_id"]] = {"REGION": "eu-west"}
    api = world.add_service(linked["project_id"], "api")
    world.variables[(api, linked["environment_id"])] = {"TOKEN": "from-api"}
    key = (linked["service_id"], linked["environment_id"])
    world.variables[key] = {
        "GREETING": "hello",
        "MESSAGE": "${{GREETING}} from ${{shared.REGION}}",
        "API_TOKEN": "${{api.TOKEN}}",
        "LITERAL": "$${{not.a.reference}}",
        "BROKEN": "${{nope.KEY}}",
        "SECRET": "*****",
    }
    world.sealed[key] = {"SECRET"}
    script = (
        "import os, sys; "
        "print('|'.join(os.environ.get(k, '-') for k in "
        "['GREETING', 'MESSAGE', 'API_TOKEN', 'LITERAL', 'BROKEN', 'SECRET', "
        "'CABOOSE_SERVICE_NAME', 'RAILWAY_ENVIRONMENT_NAME'])); sys.exit(7)"
    )
    result = cli("run", "--", sys.executable, "-c", script)
    assert result.exit_code == 7
    printed = capfd.readouterr().out.strip().splitlines()[-1]
    assert printed.split("|") == [
        "hello",
        "hello from eu-west",
        "from-api",
        "${{not.a.reference}}",
        "${{nope.KEY}}",
        "-",
        "shop",
        "production",
    ]
    assert "Left out (sealed, or masked for your role): SECRET" in result.stderr
    assert "BROKEN: nope.KEY is unknown" in result.stderr


def test_run_a_missing_command(cli: Cli, standin: StandIn, linked: dict[str, Any]) -> None:
    assert cli("run").exit_code == 2
    result = cli("run", "--", "no-such-command-caboose")
    assert result.exit_code == 127
    assert "Command not found: no-such-command-caboose" in result.stderr


# domain / environment / service / tokens ------------------------------------------------------


def test_domain_show_add_generate(cli: Cli, standin: StandIn, linked: dict[str, Any]) -> None:
    assert "no domain yet" in cli("domain").stderr
    added = data(cli("domain", "app.example.com", "--json"))
    assert added["hostname"] == "app.example.com" and added["kind"] == "custom"
    assert cli("domain", "--generate").exit_code == 0
    hostnames = {d["hostname"] for d in data(cli("domain", "--json"))}
    assert hostnames == {"app.example.com", "shop-generated.localhost"}
    assert cli("domain", "x.example.com", "--generate").exit_code == 2


def test_environment_list_new_switch(cli: Cli, standin: StandIn, linked: dict[str, Any]) -> None:
    created = data(cli("environment", "new", "staging", "--json"))
    assert data(cli("status", "--json"))["environment"]["id"] == created["id"]
    assert cli("environment", "switch", "production").exit_code == 0
    assert data(cli("status", "--json"))["environment"]["name"] == "production"
    names = [e["name"] for e in data(cli("environment", "list", "--json"))]
    assert names == ["production", "staging"]
    table = cli("environment").stdout
    assert "* " in table or "*" in table
    unknown = cli("environment", "switch", "qa")
    assert unknown.exit_code == 4 and "production, staging" in unknown.stderr


def test_service_list_new_switch(cli: Cli, standin: StandIn, linked: dict[str, Any]) -> None:
    created = data(cli("service", "new", "worker", "--repo", "https://github.com/a/b", "--json"))
    assert created["repo_url"] == "https://github.com/a/b"
    assert data(cli("status", "--json"))["service"]["name"] == "worker"
    assert cli("service", "switch", "shop").exit_code == 0
    assert data(cli("status", "--json"))["service"]["name"] == "shop"
    assert [s["name"] for s in data(cli("service", "--json"))] == ["shop", "worker"]


def test_tokens_create_list_revoke(cli: Cli, standin: StandIn, linked: dict[str, Any]) -> None:
    created = cli("tokens", "create", "ci", "--project")
    assert created.exit_code == 0
    secret = created.stdout.strip()
    assert secret.startswith("cb_")
    assert standin.world.api_tokens[secret]["project_id"] == linked["project_id"]
    listed = data(cli("tokens", "list", "--json"))
    assert [t["name"] for t in listed] == ["ci"] and "token" not in listed[0]
    assert cli("tokens", "revoke", "ci").exit_code == 0
    assert standin.world.api_tokens[secret]["revoked_at"] is not None
    assert cli("tokens", "revoke", "ci").exit_code == 4
    ci = cli("whoami", env={"CABOOSE_TOKEN": secret, "CABOOSE_HOST": standin.url})
    assert ci.exit_code == 3


# Every command ----------------------------------------------------------------------------------


COMMANDS = [
    ["login"], ["logout"], ["whoami"], ["init"], ["link"], ["unlink"], ["status"], ["list"],
    ["open"], ["up"], ["logs"], ["deployments"], ["redeploy"], ["rollback"], ["restart"],
    ["down"], ["domain"], ["run"], ["variables"], ["variables", "list"], ["variables", "set"],
    ["variables", "delete"], ["variables", "import"], ["environment"], ["environment", "list"],
    ["environment", "new"], ["environment", "switch"], ["service"], ["service", "list"],
    ["service", "new"], ["service", "switch"], ["tokens"], ["tokens", "list"],
    ["tokens", "create"], ["tokens", "revoke"],
]  # fmt: skip


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help(cli: Cli, command: list[str]) -> None:
    result = cli(*command, "--help")
    assert result.exit_code == 0
    assert "Usage:" in result.stdout


@pytest.mark.parametrize("command", [c for c in COMMANDS if c != ["run"]], ids=" ".join)
def test_every_command_takes_json(cli: Cli, command: list[str]) -> None:
    assert "--json" in cli(*command, "--help").stdout


def test_top_level_commands_show_an_example(cli: Cli) -> None:
    for command in {c[0] for c in COMMANDS}:
        assert "Example" in cli(command, "--help").stdout, command


def test_usage_errors_exit_2(cli: Cli) -> None:
    assert cli("up", "--no-such-flag").exit_code == 2
    assert cli("no-such-command").exit_code == 2


def test_an_unexpected_error_is_one_line_not_a_traceback(
    cli: Cli, standin: StandIn, linked: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from caboose_cli.commands import projects

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(projects, "resolve_target", broken)
    result = cli("status")
    assert result.exit_code == 1
    assert "Unexpected error: RuntimeError: boom" in result.stderr
    no_traceback(result)
