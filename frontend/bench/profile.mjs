#!/usr/bin/env node
// Where the benchmark's time goes (not a figure of its own: run it next to bench/dashboard.mjs).
// Against the built dashboard and bench/mock-api.mjs, as the benchmark does:
//  - canvas: a timeline of one load (navigation → responses → script evaluation → cards), the
//    long animation frames with their script attribution, and a CDP CPU profile summarised by
//    script URL and by function (self time);
//  - logs: the long tasks / long animation frames while 100 000 lines stream into the log view,
//    with their script attribution and style/layout share.
//
//   node bench/profile.mjs [canvas|logs|all]
import { spawn } from "node:child_process";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { launch } from "../e2e/browser.mjs";
import { createMockApi } from "./mock-api.mjs";

const frontend = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const SERVICES = Number(process.env.BENCH_SERVICES ?? 50);
const LOG_LINES = Number(process.env.BENCH_LOG_LINES ?? 100_000);
const what = process.argv[2] ?? "all";

const freePort = () =>
  new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

const observe = () => {
  const w = window;
  w.__loaf = [];
  w.__long = [];
  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        w.__loaf.push({
          start: Math.round(e.startTime),
          duration: Math.round(e.duration),
          blocking: Math.round(e.blockingDuration),
          render: Math.round(e.renderStart ? e.startTime + e.duration - e.renderStart : 0),
          styleLayout: Math.round(e.styleAndLayoutStart ? e.startTime + e.duration - e.styleAndLayoutStart : 0),
          scripts: e.scripts.map((s) => ({
            invoker: s.invoker,
            type: s.invokerType,
            source: `${(s.sourceURL || "").replace(/^.*\/_next\//, "")}:${s.sourceFunctionName || ""}`,
            duration: Math.round(s.duration),
            forcedStyleLayout: Math.round(s.forcedStyleAndLayoutDuration),
          })),
        });
      }
    }).observe({ type: "long-animation-frame", buffered: true });
  } catch {
    // not supported
  }
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) w.__long.push({ start: Math.round(e.startTime), duration: Math.round(e.duration) });
  }).observe({ type: "longtask", buffered: true });
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
    for (let i = 0; i < 100; i++) {
      try {
        if ((await fetch(`${base}/login`)).status < 500) break;
      } catch {
        // not yet
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
    await context.addCookies([{ name: "caboose_csrf", value: "bench", url: base }]);
    await context.addInitScript(observe);
    const warm = await context.newPage();
    await warm.goto(`${base}/p/${mock.project.id}`);
    await warm.locator("[data-testid=service-card]").nth(SERVICES - 1).waitFor();
    await warm.close();

    if (what === "canvas" || what === "all") {
      for (let run = 0; run < 2; run++) {
        const page = await context.newPage();
        const cdp = await context.newCDPSession(page);
        await cdp.send("Profiler.enable");
        await cdp.send("Profiler.setSamplingInterval", { interval: 200 });
        await cdp.send("Profiler.start");
        await page.goto(`${base}/p/${mock.project.id}`, { waitUntil: "commit" });
        await page.waitForFunction((n) => document.querySelectorAll("[data-testid=service-card]").length === n, SERVICES, { polling: "raf" });
        const cardsAt = await page.evaluate(() => performance.now());
        const t = await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => setTimeout(() => r(performance.now()), 0))));
        const { profile } = await cdp.send("Profiler.stop");
        const info = await page.evaluate(() => {
          const nav = performance.getEntriesByType("navigation")[0];
          const res = performance.getEntriesByType("resource").map((r) => ({
            name: r.name.replace(location.origin, "").replace(/^\/_next\/static\//, ""),
            start: Math.round(r.startTime),
            end: Math.round(r.responseEnd),
            kB: Math.round(r.encodedBodySize / 100) / 10,
          }));
          const paint = performance.getEntriesByType("paint").map((p) => `${p.name}@${Math.round(p.startTime)}`);
          return { responseEnd: Math.round(nav.responseEnd), domInteractive: Math.round(nav.domInteractive), dcl: Math.round(nav.domContentLoadedEventEnd), load: Math.round(nav.loadEventEnd), res, paint, loaf: window.__loaf, long: window.__long };
        });
        // Self time by script and by function.
        const byId = new Map(profile.nodes.map((n) => [n.id, n]));
        const self = new Map();
        const dt = profile.timeDeltas;
        profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (dt[i] ?? 0)));
        const byUrl = new Map();
        const byFn = new Map();
        for (const [id, us] of self) {
          const n = byId.get(id);
          const url = (n.callFrame.url || `(${n.callFrame.functionName || "program"})`).replace(/^.*\/_next\/static\//, "");
          byUrl.set(url, (byUrl.get(url) ?? 0) + us);
          const fn = `${n.callFrame.functionName || "(anon)"} ${url}:${n.callFrame.lineNumber}:${n.callFrame.columnNumber}`;
          byFn.set(fn, (byFn.get(fn) ?? 0) + us);
        }
        const top = (m, k) => [...m].sort((a, b) => b[1] - a[1]).slice(0, k).map(([name, us]) => `${(us / 1000).toFixed(1).padStart(7)} ms  ${name}`);
        console.log(`\n=== canvas run ${run}: cards at ${Math.round(cardsAt)} ms, interactive ${Math.round(t)} ms`);
        console.log(`response end ${info.responseEnd}, domInteractive ${info.domInteractive}, DCL ${info.dcl}, load ${info.load}; ${info.paint.join(" ")}`);
        for (const r of info.res) console.log(`  ${String(r.start).padStart(5)}–${String(r.end).padEnd(5)} ${String(r.kB).padStart(6)} kB  ${r.name}`);
        console.log("long animation frames:");
        for (const f of info.loaf) {
          console.log(`  @${f.start} ${f.duration} ms (blocking ${f.blocking}, render ${f.render}, style+layout ${f.styleLayout})`);
          for (const s of f.scripts) console.log(`      ${s.duration} ms ${s.type} ${s.invoker} ${s.source} forced ${s.forcedStyleLayout}`);
        }
        console.log("self time by script:");
        for (const l of top(byUrl, 12)) console.log("  " + l);
        console.log("self time by function:");
        for (const l of top(byFn, 25)) console.log("  " + l);
        await page.close();
      }
    }

    if (what === "logs" || what === "all") {
      const page = await context.newPage();
      const service = mock.services[0];
      await page.goto(`${base}/p/${mock.project.id}?service=${service.id}&tab=deployments`);
      await page.getByTestId("deployment-row").first().waitFor();
      await page.waitForTimeout(1500);
      const cdp = await context.newCDPSession(page);
      await cdp.send("Profiler.enable");
      await cdp.send("Profiler.setSamplingInterval", { interval: 500 });
      await page.evaluate(() => {
        window.__loaf = [];
        window.__long = [];
      });
      await cdp.send("Profiler.start");
      const t0 = await page.evaluate(() => performance.now());
      await page.getByRole("tab", { name: "Logs" }).click();
      await page.waitForFunction((n) => Number(document.querySelector("[data-testid=log-view]")?.getAttribute("data-lines")) >= n, LOG_LINES, { timeout: 180_000, polling: 250 });
      await page.getByTestId("log-scroll").hover();
      for (let i = 0; i < 20; i++) await page.mouse.wheel(0, -4000);
      await page.waitForTimeout(300);
      const { profile } = await cdp.send("Profiler.stop");
      const info = await page.evaluate(() => ({ loaf: window.__loaf, long: window.__long }));
      console.log(`\n=== logs: click at ${Math.round(t0)} ms; long tasks: ${info.long.map((l) => `${l.duration}@${l.start}`).join(" ")}`);
      for (const f of info.loaf.filter((f) => f.duration > 50)) {
        console.log(`  @${f.start} ${f.duration} ms (blocking ${f.blocking}, render ${f.render}, style+layout ${f.styleLayout})`);
        for (const s of f.scripts) console.log(`      ${s.duration} ms ${s.type} ${s.invoker} ${s.source} forced ${s.forcedStyleLayout}`);
      }
      const byId = new Map(profile.nodes.map((n) => [n.id, n]));
      const self = new Map();
      profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
      const byFn = new Map();
      for (const [id, us] of self) {
        const n = byId.get(id);
        const url = (n.callFrame.url || "").replace(/^.*\/_next\/static\//, "");
        const fn = `${n.callFrame.functionName || "(anon)"} ${url}:${n.callFrame.lineNumber}:${n.callFrame.columnNumber}`;
        byFn.set(fn, (byFn.get(fn) ?? 0) + us);
      }
      console.log("self time by function (whole stream):");
      for (const [name, us] of [...byFn].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log(`  ${(us / 1000).toFixed(1).padStart(8)} ms  ${name}`);
      await page.close();
    }
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
