// Paired canvas comparison of several builds (not a figure of its own: see bench/README.md,
// "Dashboard"). Each build is served side by side against one bench/mock-api.mjs, and the page
// loads are interleaved (404 page, then canvas; build after build, alternating which goes first),
// so that every build sees the same machine load: on a shared 2-core machine single runs of
// bench/dashboard.mjs moved by 2x from one minute to the next. Same measurement as the bench:
// navigation start -> 50 cards in the DOM -> a task after the next frame.
//
//   N=15 node bench/paired.mjs before=/path/to/old/frontend after=.
//
// Each path is a frontend folder with a build (.next/) and scripts/start.mjs.
import { spawn } from "node:child_process";
import net from "node:net";
import path from "node:path";
import { launch } from "../e2e/browser.mjs";
import { createMockApi } from "./mock-api.mjs";
const builds = process.argv.slice(2).map((s) => s.split("="));
const N = Number(process.env.N ?? 15);
const freePort = () => new Promise((r) => { const s = net.createServer(); s.listen(0, "127.0.0.1", () => { const { port } = s.address(); s.close(() => r(port)); }); });
const mock = createMockApi({ services: 50, logLines: 100, logBatch: 200, logIntervalMs: 10 });
await new Promise((r) => mock.server.listen(0, "127.0.0.1", r));
const api = `http://127.0.0.1:${mock.server.address().port}`;
const servers = [];
for (const [name, dir] of builds) {
  const port = await freePort();
  const child = spawn(process.execPath, [path.join(dir, "scripts", "start.mjs")], { env: { ...process.env, PORT: String(port), HOSTNAME: "127.0.0.1", CABOOSE_API_URL: api }, stdio: "ignore" });
  servers.push({ name, base: `http://127.0.0.1:${port}`, child, canvas: [], nf: [] });
}
const browser = await launch();
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
try {
  for (const s of servers) for (let i = 0; i < 100; i++) { try { if ((await fetch(`${s.base}/login`)).status < 500) break; } catch {} await new Promise((r) => setTimeout(r, 200)); }
  const ctxs = new Map();
  for (const s of servers) {
    const c = await browser.newContext({ viewport: { width: 1440, height: 900 } });
    await c.addCookies([{ name: "caboose_csrf", value: "bench", url: s.base }]);
    const w = await c.newPage(); await w.goto(`${s.base}/p/${mock.project.id}`); await w.locator("[data-testid=service-card]").nth(49).waitFor(); await w.close();
    ctxs.set(s, c);
  }
  const interactive = async (ctx, url, ready) => {
    const page = await ctx.newPage();
    await page.goto(url, { waitUntil: "commit" });
    await ready(page);
    const t = await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => setTimeout(() => r(performance.now()), 0))));
    await page.close();
    return t;
  };
  const cards = (p) => p.waitForFunction(() => document.querySelectorAll("[data-testid=service-card]").length === 50, null, { timeout: 30000, polling: "raf" });
  for (let i = 0; i < N; i++) {
    const order = i % 2 ? [...servers].reverse() : servers;
    for (const s of order) {
      const ctx = ctxs.get(s);
      s.nf.push(await interactive(ctx, `${s.base}/nope`, (p) => p.getByText("This page is off the rails").waitFor()));
      s.canvas.push(await interactive(ctx, `${s.base}/p/${mock.project.id}`, cards));
    }
  }
  for (const s of servers) console.log(`${s.name}: canvas median ${Math.round(median(s.canvas))} ms, 404 median ${Math.round(median(s.nf))} ms, ratio ${(median(s.canvas) / median(s.nf)).toFixed(2)}; canvas ${s.canvas.map(Math.round).join(" ")}`);
  // Build by build against the first: in how many interleaved pairs it was faster, and the median difference.
  for (const s of servers.slice(1)) {
    const diffs = s.canvas.map((t, i) => t - servers[0].canvas[i]);
    console.log(`${s.name} vs ${servers[0].name}: faster in ${diffs.filter((d) => d < 0).length} of ${diffs.length} pairs, median paired difference ${Math.round(median(diffs))} ms`);
  }
} finally {
  await browser.close(); for (const s of servers) s.child.kill("SIGTERM"); mock.server.close();
}
