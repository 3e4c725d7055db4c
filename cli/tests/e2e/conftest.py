"""The platform the CLI's end-to-end tests run against: the backend's harness, not a copy of it.

``backend/tests/e2e/conftest.py`` starts the real platform (``caboosed up``: Redis, PM2, Traefik,
the Celery worker, the API) and provides the session-scoped ``platform`` fixture. The CLI's suite
runs in a pytest session of its own (``cd cli && pytest``), whose ``tests`` package is not the
backend's, so the harness is loaded here by its path under a name of its own and its fixture is
re-exported. Without the platform installed (``pip install ./cli`` alone) nothing is loaded and
the end-to-end tests skip.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

HARNESS = Path(__file__).resolve().parents[3] / "backend" / "tests" / "e2e" / "conftest.py"
MODULE_NAME = "caboose_e2e_harness"


def _load_harness() -> ModuleType | None:
    if MODULE_NAME in sys.modules:
        return sys.modules[MODULE_NAME]
    if importlib.util.find_spec("caboose") is None or not HARNESS.is_file():
        return None
    spec = importlib.util.spec_from_file_location(MODULE_NAME, HARNESS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[MODULE_NAME] = module  # dataclasses look their module up while being made
    spec.loader.exec_module(module)
    return module


harness = _load_harness()
if harness is not None:
    platform = harness.platform
