"""The dashboard end to end: built and served by `caboosed up`, driven in Debian's Chromium.

A platform of its own (a fresh instance, so the first-run setup page is what a browser sees)
with the dashboard on, then the Playwright scenario of issue 8 (`frontend/e2e/dashboard.test.mjs`:
set up the owner → project and service → deploy by upload → build logs stream, ACTIVE with its
URL → a variable and a redeploy → roll back → invite a member who cannot read values → log out)
against its origin. Screenshots of each page go to `frontend/screenshots/` (ignored by git).

The build is made first if its sources changed (minutes; skipped when current), so `caboosed
up` only has to start it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from caboose.engine.build.cache import force_rmtree
from caboose.server.dashboard import DashboardBuild, ensure_built, find_frontend
from tests.e2e.conftest import Platform, _traversable_root, start_platform

pytestmark = pytest.mark.e2e

SCENARIO_TIMEOUT_S = 20 * 60.0
CHROMIUM = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")


def _missing_tools(frontend: Path | None) -> list[str]:
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if frontend is None:
        missing.append("frontend/")
    elif not (frontend / "node_modules" / "playwright-core").is_dir():
        missing.append("frontend/node_modules (make install-dev)")
    if not os.environ.get("CHROMIUM_PATH") and not any(Path(p).exists() for p in CHROMIUM):
        missing.append("chromium (apt-get install chromium)")
    return missing


@pytest.fixture(scope="module")
def frontend() -> Path:
    found = find_frontend()
    missing = _missing_tools(found)
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the dashboard scenario; missing: {', '.join(missing)}")
        pytest.skip(f"the dashboard scenario needs {', '.join(missing)}")
    assert found is not None
    ensure_built(DashboardBuild(found))
    return found


@pytest.fixture(scope="module")
def dashboard_platform(frontend: Path) -> Iterator[Platform]:
    root = _traversable_root()
    running: Platform | None = None
    try:
        running = start_platform(root, extra_env={"CABOOSE_DASHBOARD_ENABLED": "true"})
        yield running
    finally:
        if running is not None:
            running.shutdown()
        force_rmtree(root)


def origin(platform: Platform) -> str:
    """What a browser on this machine types: the platform host on Traefik's port."""
    return f"http://{platform.host}:{platform.http_port}"


def test_up_serves_the_dashboard_and_the_api_on_one_origin(dashboard_platform: Platform) -> None:
    platform = dashboard_platform
    assert "dashboard" in platform.children()
    banner = platform.output()
    assert f"Dashboard: http://localhost:{platform.http_port}" in banner

    login = platform.request("GET", "/login")
    assert login.status_code == 200
    assert login.headers["content-type"].startswith("text/html")
    assert "/_next/static/" in login.text
    asset = login.text.split('src="', 1)[1].split('"', 1)[0]
    assert platform.request("GET", asset).status_code == 200  # .next/static beside server.js
    assert platform.request("GET", "/favicon.svg").status_code == 200  # public/ too
    # Signed out, a page redirects to sign-in on the browser's own origin.
    browser_host = f"localhost:{platform.http_port}"
    page = platform.request("GET", "/p/whatever", headers={"Host": browser_host})
    assert page.status_code == 307
    assert page.headers["location"].startswith(f"http://{browser_host}/login")

    for path in ("/health", "/ready", "/openapi.json", "/api/v1/auth/setup"):
        answer = platform.request("GET", path)
        assert answer.status_code == 200, (path, answer.text[:200])
        assert answer.headers["content-type"].startswith("application/json"), path
    assert platform.request("GET", "/api/v1/auth/setup").json()["needs_setup"] is True
    assert platform.request("GET", "/api/v1/me").status_code == 401
    assert platform.request("GET", "/metrics").text.startswith("#")


def test_the_scenario_of_issue_8_in_chromium(frontend: Path, dashboard_platform: Platform) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("CABOOSE_")}
    env["CABOOSE_E2E_URL"] = origin(dashboard_platform)
    # Fail fast on a platform that does not answer (rather than in Chromium's first step).
    assert httpx.get(f"{env['CABOOSE_E2E_URL']}/login", timeout=30).status_code == 200
    result = subprocess.run(
        ["npm", "run", "--silent", "test:e2e"],
        cwd=frontend,
        env=env,
        capture_output=True,
        text=True,
        timeout=SCENARIO_TIMEOUT_S,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    report = result.stdout + result.stderr
    print(report)  # node's test report: each step and its time
    assert result.returncode == 0, (
        f"{report[-8000:]}\n--- caboosed up ---\n{dashboard_platform.output()[-4000:]}"
    )
    assert "# fail 0" in report and "# skipped 0" in report, report[-3000:]
