// Shared by the e2e tests, the screenshot tour and the benchmark: Debian's Chromium through
// playwright-core (no browser download), with the flags a sandboxed CI machine needs.
import { existsSync, mkdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export const FRONTEND = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const SCREENSHOTS = process.env.CABOOSE_SCREENSHOTS_DIR ?? path.join(FRONTEND, "screenshots");

export function chromiumPath() {
  const candidates = [process.env.CHROMIUM_PATH, "/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"];
  const found = candidates.find((p) => p && existsSync(p));
  if (!found) throw new Error("No Chromium found: `apt-get install -y chromium` (or set CHROMIUM_PATH)");
  return found;
}

export async function launch() {
  return chromium.launch({
    executablePath: chromiumPath(),
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
      "--disable-dev-shm-usage",
    ],
  });
}

/** Save a full-page screenshot as screenshots/<name>.png (the folder is git-ignored). */
export async function shot(page, name, options = {}) {
  mkdirSync(SCREENSHOTS, { recursive: true });
  const file = path.join(SCREENSHOTS, `${name}.png`);
  // Let fonts and transitions settle so screenshots are stable.
  await page.evaluate(() => document.fonts.ready);
  await page.waitForTimeout(250);
  await page.screenshot({ path: file, fullPage: false, ...options });
  return file;
}

const AXE_SOURCE = path.join(FRONTEND, "node_modules", "axe-core", "axe.min.js");

/**
 * Accessibility violations on the page as it is now (axe-core's WCAG 2.1 A and AA rules: contrast,
 * names and labels, roles, landmarks, keyboard traps…), as "rule (impact, count): help — targets".
 */
export async function accessibilityViolations(page) {
  // Once per document: client-side navigations keep the one injected before.
  if (!(await page.evaluate(() => "axe" in window))) await page.addScriptTag({ path: AXE_SOURCE });
  const violations = await page.evaluate(async () => {
    const result = await window.axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] } });
    return result.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      targets: v.nodes.slice(0, 5).map((n) => n.target.join(" ")),
      count: v.nodes.length,
    }));
  });
  return violations.map((v) => `${v.id} (${v.impact}, ${v.count}×): ${v.help} — ${v.targets.join(" | ")}`);
}

/** A main page reached: its screenshot, then fail if it breaks a WCAG 2.1 A/AA rule axe can check. */
export async function checkpoint(page, name) {
  await shot(page, name);
  const violations = await accessibilityViolations(page);
  if (violations.length) throw new Error(`${name}: accessibility violations (axe-core):\n${violations.join("\n")}`);
}
