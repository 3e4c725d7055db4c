#!/usr/bin/env node
// A screenshot tour of every main page, with rich data: the built dashboard (`npm start`)
// against bench/mock-api.mjs (API.md's shapes, generated data). Writes screenshots/tour-*.png, and
// stops at the first page that breaks a WCAG 2.1 A/AA rule axe-core can check.
//   node e2e/tour.mjs            (after `npm run build`)
// The e2e test (dashboard.test.mjs) takes its own screenshots against the real platform.
import { spawn } from "node:child_process";
import net from "node:net";
import path from "node:path";
import { createMockApi } from "../bench/mock-api.mjs";
import { FRONTEND, checkpoint, launch } from "./browser.mjs";

const freePort = () =>
  new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

const mock = createMockApi({ services: 7, logLines: 600, logBatch: 100, logIntervalMs: 20 });
await new Promise((r) => mock.server.listen(0, "127.0.0.1", r));
const port = await freePort();
const dashboard = spawn(process.execPath, [path.join(FRONTEND, "scripts", "start.mjs")], {
  env: { ...process.env, PORT: String(port), CABOOSE_API_URL: `http://127.0.0.1:${mock.server.address().port}` },
  stdio: ["ignore", "ignore", "inherit"],
});
const base = `http://127.0.0.1:${port}`;
for (let i = 0; i < 100; i++) {
  try {
    if ((await fetch(`${base}/login`)).ok) break;
  } catch {
    // starting
  }
  await new Promise((r) => setTimeout(r, 200));
}

const browser = await launch();
try {
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 }, deviceScaleFactor: 1 });
  const page = await context.newPage();
  await page.goto(`${base}/login`);
  await page.getByRole("button", { name: "Sign in", exact: true }).waitFor();
  await checkpoint(page, "tour-login");
  await context.addCookies([{ name: "caboose_csrf", value: "tour", url: base }]);

  const project = `/p/${mock.project.id}`;
  const service = mock.services[0];
  await page.goto(`${base}/w/${mock.workspace.id}`);
  await page.getByTestId("project-card").first().waitFor();
  await page.waitForTimeout(600);
  await checkpoint(page, "tour-workspace");
  await page.getByRole("button", { name: "New project" }).first().click();
  await page.getByRole("dialog").waitFor();
  await checkpoint(page, "tour-new-project");
  await page.keyboard.press("Escape");

  await page.goto(`${base}${project}`);
  await page.locator("[data-testid=service-card]").nth(mock.services.length - 1).waitFor();
  await page.waitForFunction(() => document.querySelectorAll("[data-testid=service-card] .animate-pulse").length === 0);
  await checkpoint(page, "tour-canvas");
  await page.getByRole("button", { name: "New service" }).first().click();
  await page.getByRole("dialog").waitFor();
  await checkpoint(page, "tour-new-service");
  await page.getByRole("tab", { name: /empty/i }).click();
  await checkpoint(page, "tour-new-service-empty");
  await page.keyboard.press("Escape");

  await page.goto(`${base}${project}?service=${service.id}&tab=deployments`);
  await page.getByTestId("deployment-row").first().waitFor();
  await checkpoint(page, "tour-deployments");
  await page.getByRole("button", { name: /^Actions for deployment/ }).first().click();
  await page.getByRole("menu").waitFor();
  await checkpoint(page, "tour-deployment-menu");
  await page.keyboard.press("Escape");

  await page.getByRole("tab", { name: "Logs" }).click();
  await page.waitForFunction(() => Number(document.querySelector("[data-testid=log-view]")?.getAttribute("data-lines")) >= 600);
  await checkpoint(page, "tour-logs");

  await page.getByRole("tab", { name: "Variables" }).click();
  await page.getByTestId("service-variables").waitFor();
  await page.getByRole("button", { name: "Reveal NODE_ENV" }).click();
  await page.getByRole("combobox", { name: "Value", exact: true }).fill("${{sh");
  await checkpoint(page, "tour-variables");
  await page.getByRole("button", { name: "Raw editor" }).first().click();
  await checkpoint(page, "tour-variables-raw");

  await page.getByRole("tab", { name: "Metrics" }).click();
  await page.locator(".recharts-line").first().waitFor();
  await page.waitForTimeout(500);
  await checkpoint(page, "tour-metrics");

  await page.getByRole("tab", { name: "Settings" }).click();
  await page.getByText("Service settings").waitFor();
  await checkpoint(page, "tour-settings");
  await page.getByRole("button", { name: "Delete service" }).click();
  await page.getByRole("alertdialog").or(page.getByRole("dialog")).first().waitFor();
  await checkpoint(page, "tour-delete-service");
  await page.keyboard.press("Escape");

  await page.goto(`${base}/w/${mock.workspace.id}/settings`);
  await page.getByTestId("member-row").first().waitFor();
  await checkpoint(page, "tour-workspace-settings");

  await page.goto(`${base}/account`);
  await page.getByTestId("token-row").first().waitFor();
  await checkpoint(page, "tour-account");

  // Narrow screens: 1024 px and a phone.
  await page.setViewportSize({ width: 1024, height: 768 });
  await page.goto(`${base}${project}`);
  await page.locator("[data-testid=service-card]").first().waitFor();
  await page.waitForTimeout(800);
  await checkpoint(page, "tour-canvas-1024");
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(`${base}${project}?service=${service.id}&tab=deployments`);
  await page.getByTestId("deployment-row").first().waitFor();
  await checkpoint(page, "tour-phone-deployments");
  await page.goto(`${base}${project}`);
  await page.locator("[data-testid=service-card]").first().waitFor();
  await page.waitForTimeout(800);
  await checkpoint(page, "tour-phone-canvas");
  console.log("screenshots written to frontend/screenshots/tour-*.png");
} finally {
  await browser.close();
  dashboard.kill("SIGTERM");
  mock.server.close();
}
