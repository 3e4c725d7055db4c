"""Static sites: an ``index.html`` at the root or in ``public/``, ``dist/`` or ``build/``.

Served by PM2's static server (``pm2 serve``), which the runtime starts on ``$PORT``. Single-page
apps route in the browser, so unknown paths fall back to ``index.html`` (``spa``) unless the
site ships its own ``404.html``, which then means it wants real 404s.
"""

from __future__ import annotations

from pathlib import Path

from caboose.engine.plan.files import is_file
from caboose.engine.plan.providers.base import ProviderPlan
from caboose.engine.plan.runtimes import Runtimes

STATIC_DIRS = (".", "public", "dist", "build")


def find_static_dir(source_dir: Path) -> str | None:
    for candidate in STATIC_DIRS:
        if is_file(source_dir, f"{candidate}/index.html"):
            return candidate
    return None


class StaticProvider:
    name = "static"
    markers = "index.html at the root or in public/, dist/ or build/"

    def detect(self, source_dir: Path) -> bool:
        return find_static_dir(source_dir) is not None

    def plan(self, source_dir: Path, runtimes: Runtimes) -> ProviderPlan:
        static_dir = find_static_dir(source_dir) or "."
        spa = not is_file(source_dir, f"{static_dir}/404.html")
        return ProviderPlan(
            provider=self.name,
            runtime="static",
            runtime_version="",
            static_dir=static_dir,
            spa=spa,
        )
