"""The dashboard: canvas time to interactive, first-load JavaScript per route, log view smoothness.

Runs `frontend/bench/dashboard.mjs` (Node + playwright-core driving Debian's Chromium), which
starts the built dashboard (`npm start`) against a stand-in API (`frontend/bench/mock-api.mjs`:
API.md's shapes, generated data) so the figures are the dashboard's own, and prints:

- time to interactive of the project canvas with 50 services (navigation start → every card
  rendered and the main thread free), median of 5, against the 404 page (the smallest page the
  app has) measured the same way in the same run; and the time until every card also shows its
  deployment status (one batched request: `GET /projects/{id}/deployments/latest`);
- first-load JavaScript of each route, gzipped, computed from the build in `frontend/.next/`: the
  page's chunks and every layout's above it (more than `next build` prints, which leaves the
  layouts out), against the JavaScript every route shares (React, Next.js, the root layout);
- while 100 000 log lines stream into the log view over a WebSocket (and it is then scrolled):
  the longest main-thread task and the worst and p99 frame times, against the same page idle.

Usage: .venv/bin/python bench/dashboard.py [--services 50] [--log-lines 100000] [--runs 5]
Needs: Node ≥ 20.19, `frontend/node_modules` (npm ci), Chromium (`apt-get install -y chromium`).
Builds the dashboard first when its sources changed (`caboosed build-dashboard`).
Targets (issue 8): canvas interactive < 1 s; first-load JS ≤ 250 kB gzipped per route; the log view
never blocks the main thread for more than 100 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FRONTEND = REPO / "frontend"

CANVAS_TARGET_MS = 1000.0
FIRST_LOAD_TARGET_KB = 250.0
BLOCK_TARGET_MS = 100.0


def ensure_built() -> None:
    if not (FRONTEND / "node_modules").is_dir():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=FRONTEND, check=True)
    # What `caboosed up` serves: rebuilt when the sources changed since the last build.
    subprocess.run([sys.executable, "-m", "caboose.server", "build-dashboard"], check=True)


def long_task(ms: float) -> str:
    # The Long Tasks API reports only tasks of 50 ms or more: none means "all under 50 ms", not 0.
    return f"{ms:.0f}ms" if ms else "<50ms"


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=50)
    parser.add_argument("--log-lines", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if shutil.which("node") is None:
        print("node is not installed", file=sys.stderr)
        return 2
    ensure_built()
    env = {
        **os.environ,
        "BENCH_SERVICES": str(args.services),
        "BENCH_LOG_LINES": str(args.log_lines),
        "BENCH_RUNS": str(args.runs),
    }
    out = subprocess.run(
        ["node", "bench/dashboard.mjs"],
        cwd=FRONTEND,
        env=env,
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    ).stdout
    result = json.loads(out.strip().splitlines()[-1])

    cpu = platform.processor() or platform.machine()
    print(f"Dashboard benchmark · {os.cpu_count()} cores · {cpu} · {platform.system()}")
    print()
    canvas = result["canvas"]
    ratio = canvas["medianMs"] / canvas["baselineMedianMs"] if canvas["baselineMedianMs"] else 0
    print(f"{'figure':<52} {'value':>10} {'baseline':>10} {'ratio':>7}  target")
    print("-" * 100)
    label = f"canvas interactive, {result['services']} services (median of {result['runs']})"
    print(
        f"{label:<52}"
        f" {canvas['medianMs']:>8.0f}ms {canvas['baselineMedianMs']:>8.0f}ms {ratio:>6.2f}x"
        f"  < {CANVAS_TARGET_MS:.0f} ms: {verdict(canvas['medianMs'] < CANVAS_TARGET_MS)}"
    )
    complete_ratio = canvas["completeMedianMs"] / canvas["baselineMedianMs"]
    print(
        f"{'canvas complete: every status loaded (1 batch request)':<52}"
        f" {canvas['completeMedianMs']:>8.0f}ms {canvas['baselineMedianMs']:>8.0f}ms"
        f" {complete_ratio:>6.2f}x"
    )
    shared_kb = result["firstLoad"]["sharedBytes"] / 1000
    for route in result["firstLoad"]["routes"]:
        kb = route["bytes"] / 1000
        ok = verdict(kb <= FIRST_LOAD_TARGET_KB)
        print(
            f"{'first-load JS ' + route['route']:<52} {kb:>8.1f}kB {shared_kb:>8.1f}kB"
            f" {kb / shared_kb:>6.2f}x  ≤ {FIRST_LOAD_TARGET_KB:.0f} kB: {ok}"
        )
    logs = result["logs"]
    busy, idle = logs["streaming"], logs["idle"]
    lines = f"{result['logLines']:,}"
    label = f"log view: longest main-thread task, {lines} lines"
    print(
        f"{label:<52}"
        f" {long_task(busy['longestTaskMs']):>10} {long_task(idle['longestTaskMs']):>10} {'':>7}"
        f"  ≤ {BLOCK_TARGET_MS:.0f} ms: {verdict(busy['longestTaskMs'] <= BLOCK_TARGET_MS)}"
    )
    worst_ratio = busy["worstFrameMs"] / idle["worstFrameMs"] if idle["worstFrameMs"] else 0
    print(
        f"{'log view: worst frame while streaming':<52}"
        f" {busy['worstFrameMs']:>8.0f}ms {idle['worstFrameMs']:>8.0f}ms {worst_ratio:>6.2f}x"
        f"  ≤ {BLOCK_TARGET_MS:.0f} ms: {verdict(busy['worstFrameMs'] <= BLOCK_TARGET_MS)}"
    )
    p99_ratio = busy["p99FrameMs"] / idle["p99FrameMs"] if idle["p99FrameMs"] else 0
    print(
        f"{'log view: p99 frame while streaming':<52}"
        f" {busy['p99FrameMs']:>8.1f}ms {idle['p99FrameMs']:>8.1f}ms {p99_ratio:>6.2f}x"
    )
    print(
        f"{'log view: long tasks (> 50 ms) while streaming':<52}"
        f" {busy['longTasks']:>10} {idle['longTasks']:>10}"
    )
    print()
    print(
        f"{lines} lines arrived in {logs['streamSeconds']:.1f} s "
        f"({result['logLines'] / max(logs['streamSeconds'], 0.001):,.0f} lines/s); "
        f"{logs['renderedRows']} rows in the DOM (virtualised)."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
