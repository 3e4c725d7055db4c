#!/usr/bin/env node
// The dashboard benchmark (run by bench/dashboard.py): prints JSON with
//  - canvas: time to interactive of the project canvas with 50 services (ms), against the time to
//    interactive of the smallest page (the 404 page) measured in the same run as the baseline;
//  - firstLoad: first-load JS per route (page and layouts), gzipped (from .next/), against the JS
//    every route shares;
//  - logs: main-thread blocking while 100 000 log lines stream into the log view (longest task,
//    worst frame, p99 frame), against the same page idle.
// It runs the built dashboard (`npm start`) against bench/mock-api.mjs, so it measures the
// dashboard alone.
import { spawn } from "node:child_process";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { launch } from "../e2e/browser.mjs";
import { firstLoadJs } from "./first-load.mjs";
import { createMockApi } from "./mock-api.mjs";

const frontend = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const SERVICES = Number(process.env.BENCH_SERVICES ?? 50);
const LOG_LINES = Number(process.env.BENCH_LOG_LINES ?? 100_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 5);

const freePort = () =>
  new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

async function waitForHttp(url, timeout = 30_000) {
  const deadline = Date.now() + timeout;
  while (Date.now() < deadline) {
    try {
      const r = await fetch(url);
      if (r.status < 500) return;
    } catch {
      // not yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${url} did not come up`);
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};

async function main() {
  const mock = createMockApi({ services: SERVICES, logLines: LOG_LINES, logBatch: 200, logIntervalMs: 10 });
  await new Promise((r) => mock.server.listen(0, "127.0.0.1", r));
  const apiUrl = `http://127.0.0.1:${mock.server.address().port}`;
  const port = await freePort();
  const dashboard = spawn(process.execPath, [path.join(frontend, "scripts", "start.mjs")], {
    env: { ...process.env, PORT: String(port), HOSTNAME: "127.0.0.1", CABOOSE_API_URL: apiUrl },
    stdio: ["ignore", "ignore", "inherit"],
  });
  const base = `http://127.0.0.1:${port}`;
  const browser = await launch();
  try {
    await waitForHttp(`${base}/login`);
    const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
    await context.addCookies([{ name: "caboose_csrf", value: "bench", url: base }]);

    // Warm the server (first requests compile nothing in production, but fill caches).
    const warm = await context.newPage();
    await warm.goto(`${base}/p/${mock.project.id}`);
    await warm.locator("[data-testid=service-card]").nth(SERVICES - 1).waitFor();
    await warm.close();

    // Time to interactive: navigation start → every card rendered with its status, and the main
    // thread free (a task scheduled after the next frame runs).
    const interactive = async (url, ready) => {
      const page = await context.newPage();
      await page.goto(url, { waitUntil: "commit" });
      await ready(page);
      const t = await page.evaluate(
        () => new Promise((resolve) => requestAnimationFrame(() => setTimeout(() => resolve(performance.now()), 0))),
      );
      await page.close();
      return t;
    };
    // Interactive: every card is on the page and the main thread is free (a click opens the panel).
    const cardsReady = async (page) => {
      await page.waitForFunction((n) => document.querySelectorAll("[data-testid=service-card]").length === n, SERVICES, {
        timeout: 30_000,
        polling: "raf",
      });
    };
    // Complete: and every card shows its deployment status (one batched request for all of them).
    const canvasReady = async (page) => {
      await page.waitForFunction(
        (n) => {
          const cards = document.querySelectorAll("[data-testid=service-card]");
          return cards.length === n && document.querySelectorAll("[data-testid=service-card] .animate-pulse").length === 0;
        },
        SERVICES,
        { timeout: 30_000, polling: "raf" },
      );
    };
    const canvas = [];
    const complete = [];
    const baseline = [];
    for (let i = 0; i < RUNS; i++) {
      baseline.push(await interactive(`${base}/this-page-does-not-exist`, (p) => p.getByText("This page is off the rails").waitFor()));
      canvas.push(await interactive(`${base}/p/${mock.project.id}`, cardsReady));
      complete.push(await interactive(`${base}/p/${mock.project.id}`, canvasReady));
    }

    // Log view: stream LOG_LINES lines while recording frames and long tasks.
    const page = await context.newPage();
    const service = mock.services[0];
    const deployment = mock.deployments.get(service.id)[0];
    await page.addInitScript(() => {
      const w = window;
      w.__frames = [];
      w.__longTasks = [];
      let last = performance.now();
      const loop = (t) => {
        w.__frames.push(t - last);
        last = t;
        requestAnimationFrame(loop);
      };
      requestAnimationFrame(loop);
      new PerformanceObserver((list) => {
        for (const e of list.getEntries()) w.__longTasks.push(e.duration);
      }).observe({ type: "longtask", buffered: true });
    });
    // Idle baseline: the same page with the panel open on Deployments, no stream.
    await page.goto(`${base}/p/${mock.project.id}?service=${service.id}&tab=deployments`);
    await page.getByTestId("deployment-row").first().waitFor();
    await page.waitForTimeout(1500);
    await page.evaluate(() => {
      window.__frames = [];
      window.__longTasks = [];
    });
    await page.waitForTimeout(2000);
    const idle = await page.evaluate(() => ({ frames: window.__frames.slice(1), longTasks: window.__longTasks }));

    await page.evaluate(() => {
      window.__frames = [];
      window.__longTasks = [];
    });
    const t0 = Date.now();
    await page.getByRole("tab", { name: "Logs" }).click();
    await page.waitForFunction((n) => Number(document.querySelector("[data-testid=log-view]")?.getAttribute("data-lines")) >= n, LOG_LINES, {
      timeout: 180_000,
      polling: 250,
    });
    const streamSeconds = (Date.now() - t0) / 1000;
    // Scroll through the 100 000 lines while they are there: the list must stay smooth too.
    await page.getByTestId("log-scroll").hover();
    for (let i = 0; i < 20; i++) await page.mouse.wheel(0, -4000);
    await page.waitForTimeout(300);
    const busy = await page.evaluate(() => ({ frames: window.__frames.slice(1), longTasks: window.__longTasks }));
    const renderedRows = await page.getByTestId("log-line").count();
    await page.close();

    const stats = ({ frames, longTasks }) => {
      const sorted = [...frames].sort((a, b) => a - b);
      return {
        frames: frames.length,
        p50FrameMs: sorted[Math.floor(sorted.length * 0.5)] ?? 0,
        p99FrameMs: sorted[Math.floor(sorted.length * 0.99)] ?? 0,
        worstFrameMs: sorted.at(-1) ?? 0,
        longTasks: longTasks.length,
        longestTaskMs: longTasks.length ? Math.max(...longTasks) : 0,
      };
    };

    const first = firstLoadJs(frontend);
    console.log(
      JSON.stringify({
        services: SERVICES,
        logLines: LOG_LINES,
        runs: RUNS,
        canvas: {
          medianMs: median(canvas),
          samplesMs: canvas,
          completeMedianMs: median(complete),
          completeSamplesMs: complete,
          baselineMedianMs: median(baseline),
          baselineSamplesMs: baseline,
        },
        firstLoad: first,
        logs: { streamSeconds, renderedRows, idle: stats(idle), streaming: stats(busy) },
      }),
    );
  } finally {
    await browser.close();
    dashboard.kill("SIGTERM");
    mock.server.close();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
