"""The interactive `caboose link`, driven through a real terminal (tmux) against the stand-in."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

from caboose_cli.config import Credentials, save_credentials
from tests.standin import EMAIL, StandIn
from tests.terminal import Terminal


def test_link_asks_for_each_choice(
    standin: StandIn, terminal: Terminal, project_dir: Path, isolated_config: Path
) -> None:
    world = standin.world
    user_id = world.users[EMAIL]["id"]
    team = world.add_workspace(user_id, name="Team")
    world.add_project(team, "billing")
    shop = world.add_project(team, "shop", services=("api", "web"))
    staging = world.add_environment(shop, "staging")
    world.api_tokens["cb_tty"] = {"user_id": user_id, "revoked_at": None}
    save_credentials(Credentials(host=standin.url, api_token="cb_tty"))

    environment = {"XDG_CONFIG_HOME": str(isolated_config.parent), "NO_COLOR": "1"}
    caboose = shlex.join(
        [
            "env",
            *(f"{k}={v}" for k, v in environment.items()),
            sys.executable,
            "-m",
            "caboose_cli",
            "link",
        ]
    )
    terminal.start(f'{caboose}; echo "[exit $?]"; sleep 60', cwd=project_dir)

    terminal.wait_for("Choose a workspace:")
    screen = terminal.wait_for("Workspace [1-2]")
    assert "Ada's workspace (owner)" in screen and "Team (owner)" in screen
    terminal.type("Team")  # by name

    screen = terminal.wait_for("Project [1-2]")
    assert "billing" in screen and "shop" in screen
    terminal.type("2")  # by number

    terminal.wait_for("Environment [1-2]")
    terminal.type("staging")

    terminal.wait_for("Service [1-2]")
    terminal.type("9")  # out of range: asked again
    terminal.wait_for("Type a number from 1 to 2, or a name.")
    terminal.type("2")

    screen = terminal.wait_for("[exit ")
    assert "[exit 0]" in screen, screen
    assert "Linked" in screen and "shop / staging / web" in screen

    links = json.loads((isolated_config / "links.json").read_text())["links"]
    link = links[str(project_dir.resolve())]
    assert (link["workspace_name"], link["project_name"]) == ("Team", "shop")
    assert link["environment_id"] == staging
    assert link["service_name"] == "web"


def test_ctrl_c_at_a_prompt_stores_nothing(
    standin: StandIn, terminal: Terminal, project_dir: Path, isolated_config: Path
) -> None:
    world = standin.world
    user_id = world.users[EMAIL]["id"]
    world.add_workspace(user_id, name="Team")
    world.api_tokens["cb_tty"] = {"user_id": user_id, "revoked_at": None}
    save_credentials(Credentials(host=standin.url, api_token="cb_tty"))

    caboose = shlex.join(
        [
            "env",
            f"XDG_CONFIG_HOME={isolated_config.parent}",
            sys.executable,
            "-m",
            "caboose_cli",
            "link",
        ]
    )
    terminal.start(f'{caboose}; echo "[exit $?]"; sleep 60', cwd=project_dir)
    terminal.wait_for("Workspace [1-2]")
    terminal.tmux("send-keys", "-t", terminal.name, "C-c")
    screen = terminal.wait_for("[exit ")
    assert "Interrupted." in screen and "[exit 130]" in screen, screen
    assert "Traceback" not in screen
    assert not (isolated_config / "links.json").exists()
