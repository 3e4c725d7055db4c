"""``python -m caboose_cli``: the same as the ``caboose`` command."""

from __future__ import annotations

from caboose_cli.main import app

app(prog_name="caboose")
