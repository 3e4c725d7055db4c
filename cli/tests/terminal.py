"""A real terminal for interactive commands: a tmux session on a private socket."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path


class Terminal:
    """A tmux session on a private socket: type into it, read its screen."""

    def __init__(self, socket: Path, name: str = "caboose") -> None:
        self.socket = socket
        self.name = name

    def tmux(self, *args: str) -> str:
        completed = subprocess.run(
            ["tmux", "-S", str(self.socket), *args],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        )
        return completed.stdout

    def start(self, command: str, *, cwd: Path) -> None:
        self.tmux(
            "new-session", "-d", "-s", self.name, "-x", "160", "-y", "50", "-c", str(cwd), command
        )

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", self.name, "-S", "-100")

    def wait_for(self, text: str, *, timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.1)
        raise AssertionError(f"{text!r} never appeared; the screen:\n{self.screen()}")

    def type(self, text: str) -> None:
        self.tmux("send-keys", "-t", self.name, "-l", text)
        self.tmux("send-keys", "-t", self.name, "Enter")

    def close(self) -> None:
        subprocess.run(
            ["tmux", "-S", str(self.socket), "kill-server"], capture_output=True, check=False
        )
        self.socket.unlink(missing_ok=True)


def new_terminal() -> Terminal:
    """A terminal on a socket of its own; ``close()`` it."""
    # A short socket path: tmux refuses ones longer than a sockaddr_un holds.
    socket = Path(tempfile.gettempdir()) / f"caboose-tmux-{os.getpid()}-{time.monotonic_ns()}"
    return Terminal(socket)
