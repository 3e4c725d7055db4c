// The dashboard, end to end, against the real platform (issue 8's scenario):
// set up the owner → create a project and a service → deploy a sample app by uploading it →
// see the build logs stream and the status reach ACTIVE with its URL → set a variable and
// redeploy → roll back → invite a member who cannot see variable values → log out.
//
// CABOOSE_E2E_URL is the platform's origin (Traefik: /api/* → API, the rest → `next start`).
// Screenshots of each main page go to frontend/screenshots/ (git-ignored).
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { checkpoint, launch } from "./browser.mjs";

const BASE = process.env.CABOOSE_E2E_URL?.replace(/\/$/, "");
const DEPLOY_TIMEOUT = Number(process.env.CABOOSE_E2E_DEPLOY_TIMEOUT_MS ?? 240_000);
const run = Date.now().toString(36);
const owner = { name: "Owner Person", email: `owner-${run}@example.com`, password: "correct-horse-battery-staple" };
const member = { name: "Member Person", email: `member-${run}@example.com`, password: "another-long-passphrase" };
const projectName = `e2e-${run}`;
const serviceName = "hello";

/** A dependency-free sample app: answers GREETING on / and 200 on /health, logs in colour. */
function sampleTarball() {
  const dir = mkdtempSync(path.join(tmpdir(), "caboose-e2e-app-"));
  writeFileSync(
    path.join(dir, "main.py"),
    [
      "import os, sys",
      "from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer",
      "print('\\x1b[32mhello app starting\\x1b[0m', flush=True)",
      "class H(BaseHTTPRequestHandler):",
      "    def do_GET(self):",
      "        body = (os.environ.get('GREETING', 'no greeting') + '\\n').encode()",
      "        self.send_response(200); self.send_header('Content-Length', str(len(body))); self.end_headers(); self.wfile.write(body)",
      "        print(f'GET {self.path} 200', flush=True)",
      "    def log_message(self, *a): pass",
      "ThreadingHTTPServer(('0.0.0.0', int(os.environ['PORT'])), H).serve_forever()",
      "",
    ].join("\n"),
  );
  writeFileSync(path.join(dir, "requirements.txt"), "\n");
  writeFileSync(path.join(dir, "Procfile"), "web: python main.py\n");
  const tarball = path.join(dir, "..", `caboose-e2e-${run}.tar.gz`);
  execFileSync("tar", ["-czf", tarball, "-C", dir, "."]);
  return tarball;
}

/** The body of a deployed app's URL, read by the browser (it resolves *.localhost itself). */
async function appBody(browser, url) {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    const response = await page.goto(url, { timeout: 10_000 });
    return response && response.ok() ? await page.innerText("body") : false;
  } finally {
    await context.close();
  }
}

async function waitFor(fn, { timeout = 30_000, interval = 500, what = "condition" } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  while (Date.now() < deadline) {
    try {
      last = await fn();
      if (last) return last;
    } catch (error) {
      last = error;
    }
    await new Promise((r) => setTimeout(r, interval));
  }
  throw new Error(`Timed out waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
}

describe("dashboard end to end", { skip: BASE ? false : "CABOOSE_E2E_URL is not set" }, () => {
  let browser;
  let context;
  let page;
  let projectUrl;

  before(async () => {
    browser = await launch();
    context = await browser.newContext({ baseURL: BASE, viewport: { width: 1440, height: 900 } });
    page = await context.newPage();
    page.setDefaultTimeout(20_000);
  });
  after(async () => {
    await browser?.close();
  });

  test("first run: the setup page creates the owner (or sign-up when an owner exists)", async () => {
    await page.goto("/");
    await page.waitForURL(/\/(login|setup)/);
    if (!page.url().includes("/setup")) {
      // Give /login a moment to learn whether setup is needed.
      await page.waitForURL(/\/setup/, { timeout: 5000 }).catch(() => undefined);
    }
    const onSetup = page.url().includes("/setup");
    if (!onSetup) await page.goto("/register");
    await checkpoint(page, onSetup ? "01-setup" : "01-register");
    await page.getByLabel("Your name").fill(owner.name);
    await page.getByLabel("Email").fill(owner.email);
    await page.getByLabel("Password", { exact: true }).fill(owner.password);
    await page.getByLabel("Confirm password").fill(owner.password);
    await page.getByRole("button", { name: /create (owner )?account/i }).click();
    await page.waitForURL(/\/w\/[0-9a-f-]+$/);
    await page.getByRole("heading", { level: 1 }).waitFor();
    await checkpoint(page, "02-workspace-empty");
  });

  test("create a project and an empty service", async () => {
    await page.getByRole("button", { name: /new project|create your first project/i }).first().click();
    await page.getByLabel("Name").fill(projectName);
    await page.getByRole("button", { name: "Create project" }).click();
    await page.waitForURL(/\/p\/[0-9a-f-]+/);
    projectUrl = new URL(page.url()).pathname;
    await page.getByText("Add your first service").waitFor();
    await waitFor(() => page.getByTestId("live-indicator").getAttribute("data-live").then((v) => v === "true"), { what: "the project events WebSocket" });
    await checkpoint(page, "03-project-empty");

    await page.getByRole("button", { name: "New service" }).first().click();
    await page.getByRole("tab", { name: /empty/i }).click();
    await page.getByLabel("Service name").fill(serviceName);
    await page.getByRole("button", { name: "Create service" }).click();
    await page.getByText("caboose up").first().waitFor();
    await checkpoint(page, "04-new-service-snippet");
    await page.getByRole("button", { name: `Open ${serviceName}` }).click();
    await page.getByTestId("service-sheet").waitFor();
  });

  test("deploy by upload: build logs stream and the status reaches ACTIVE with a URL", async () => {
    await page.getByTestId("upload-input").setInputFiles(sampleTarball());
    await page.getByRole("tab", { name: "Logs" }).waitFor();
    await waitFor(async () => (await page.getByTestId("log-line").count()) > 0, { timeout: DEPLOY_TIMEOUT, what: "build log lines" });
    await checkpoint(page, "05-build-logs");
    await waitFor(async () => (await page.getByTestId("service-url").count()) > 0, { timeout: DEPLOY_TIMEOUT, interval: 1000, what: "an ACTIVE deployment with a URL" });
    const url = await page.getByTestId("service-url").getAttribute("href");
    assert.ok(url, "the service has a public URL");
    const body = await waitFor(() => appBody(browser, url), { what: `${url} answering` });
    assert.match(body, /no greeting/);
    await page.getByRole("tab", { name: "Deployments" }).click();
    await page.locator('[data-testid=deployment-row][data-status=ACTIVE]').first().waitFor();
    await checkpoint(page, "06-deployments");
    await page.keyboard.press("Escape");
    await page.locator(`[data-testid=service-card][data-service=${serviceName}][data-status=ACTIVE]`).waitFor();
    await checkpoint(page, "07-canvas-active");
  });

  test("the keyboard alone opens a service, with a visible focus, and Escape gives the focus back", async () => {
    await page.reload();
    const card = page.getByRole("button", { name: serviceName, exact: true });
    await card.waitFor();
    const focusedName = () => page.evaluate(() => document.activeElement?.textContent?.trim() ?? "");
    let presses = 0;
    while (!(await card.evaluate((el) => el === document.activeElement))) {
      assert.ok(++presses <= 30, `Tab never reached the ${serviceName} card (last focus: ${await focusedName()})`);
      await page.keyboard.press("Tab");
    }
    // The card's button is stretched over the card by its ::after, which draws the outline.
    const outlines = await card.evaluate((el) => [getComputedStyle(el).outlineStyle, getComputedStyle(el, "::after").outlineStyle]);
    assert.ok(outlines.some((style) => style !== "none"), `the focused card shows a focus outline (${outlines})`);
    await page.keyboard.press("Enter");
    await page.getByTestId("service-sheet").waitFor();
    await page.keyboard.press("Escape");
    await page.getByTestId("service-sheet").waitFor({ state: "detached" });
    await waitFor(() => card.evaluate((el) => el === document.activeElement), { what: "the focus back on the card" });
  });

  test("set a variable and redeploy", async () => {
    await page.getByRole("button", { name: serviceName, exact: true }).click();
    await page.getByRole("tab", { name: "Variables" }).click();
    const own = page.getByTestId("service-variables");
    await own.getByLabel("Name", { exact: true }).fill("GREETING");
    await own.getByRole("combobox", { name: "Value", exact: true }).fill("hello from e2e");
    await own.getByRole("button", { name: "Add variable", exact: true }).click();
    await page.locator("[data-testid=variable-row][data-key=GREETING]").waitFor();
    await checkpoint(page, "08-variables");
    await page.getByRole("button", { name: "Redeploy now" }).click();
    const url = await page.getByTestId("service-url").getAttribute("href");
    await waitFor(async () => ((await appBody(browser, url)) || "").includes("hello from e2e"), {
      timeout: DEPLOY_TIMEOUT,
      interval: 1000,
      what: "the redeployed app serving the variable",
    });
  });

  test("roll back to the first deployment", async () => {
    await page.getByRole("tab", { name: "Deployments" }).click();
    await waitFor(async () => (await page.getByTestId("deployment-row").count()) >= 2, { what: "two deployments" });
    const rows = page.getByTestId("deployment-row");
    const oldest = rows.last();
    await oldest.getByRole("button", { name: /actions for deployment/i }).click();
    await page.getByRole("menuitem", { name: /roll back/i }).click();
    // The panel follows the new deployment's logs; come back to the list.
    await page.getByRole("tab", { name: "Logs", selected: true }).waitFor();
    await page.getByRole("tab", { name: "Deployments" }).click();
    await waitFor(async () => (await page.getByTestId("deployment-row").count()) >= 3, { what: "the rollback deployment" });
    await waitFor(async () => (await rows.first().getAttribute("data-status")) === "ACTIVE", { timeout: DEPLOY_TIMEOUT, interval: 1000, what: "the rollback to be ACTIVE" });
    const url = await page.getByTestId("service-url").getAttribute("href");
    // A rollback reuses the first build (no rebuild); the app answers again through its route.
    assert.ok(await waitFor(() => appBody(browser, url), { what: "the rolled-back app answering" }));
    await checkpoint(page, "09-rolled-back");
  });

  test("invite a member, who sees variable names but not values", async () => {
    await page.keyboard.press("Escape");
    await page.getByRole("link", { name: /members & settings/i }).click();
    await page.getByLabel("Email").fill(member.email);
    await page.getByRole("button", { name: "Invite" }).click();
    const link = await page.getByTestId("invitation-link").inputValue();
    await checkpoint(page, "10-invitation");
    await page.getByRole("button", { name: "Done" }).click();
    await page.getByTestId("members").waitFor();
    await checkpoint(page, "11-workspace-settings");

    const other = await browser.newContext({ baseURL: BASE, viewport: { width: 1280, height: 860 } });
    const p2 = await other.newPage();
    await p2.goto(link);
    await p2.getByRole("link", { name: "Create an account" }).click();
    await p2.getByLabel("Your name").fill(member.name);
    await p2.getByLabel("Password", { exact: true }).fill(member.password);
    await p2.getByLabel("Confirm password").fill(member.password);
    await p2.getByRole("button", { name: /create account and join/i }).click();
    await p2.waitForURL(/\/(w\/|account)/);
    await p2.goto(projectUrl);
    await p2.getByRole("button", { name: serviceName, exact: true }).click();
    await p2.getByRole("tab", { name: "Variables" }).click();
    await p2.getByTestId("values-hidden-note").waitFor();
    const row = p2.locator("[data-testid=variable-row][data-key=GREETING]");
    await row.waitFor();
    assert.equal(await row.getByRole("button", { name: /reveal/i }).count(), 0, "no reveal for a member");
    assert.doesNotMatch(await row.getByTestId("variable-value").innerText(), /hello from e2e/);
    assert.equal(await p2.getByRole("button", { name: /add .*variable/i }).count(), 0, "a member cannot add variables");
    assert.equal(await p2.getByRole("tab", { name: "Settings" }).count(), 0, "a member has no settings tab");
    await checkpoint(p2, "12-member-variables");
    await other.close();
  });

  test("log out", async () => {
    await page.getByRole("button", { name: "Account menu" }).click();
    await page.getByRole("menuitem", { name: "Sign out" }).click();
    // /login itself: not /login?next=… (a query's late 401 must not make the next person who
    // signs in land on this user's page).
    await page.waitForURL((url) => url.pathname === "/login");
    await page.getByRole("button", { name: "Sign in", exact: true }).waitFor();
    assert.equal(new URL(page.url()).search, "", "sign-out lands on /login with no ?next=");
    await checkpoint(page, "13-login");
    await page.goto(projectUrl);
    await page.waitForURL(/\/login\?next=/);
  });
});
