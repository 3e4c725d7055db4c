// First-load JavaScript per route, gzipped, from the build output in .next/: every JS file a first
// visit of the route loads, i.e. the route's page plus every layout above it (the root layout
// included). `next build`'s "First Load JS" column counts only the page's own entry, which leaves
// out the layouts' chunks (the root layout's providers, for one), so this is larger than what it
// prints; the browser downloads the larger set.
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { gzipSync } from "node:zlib";

// The manifest entries whose chunks a page's first load needs: its layouts, from the root down.
// "/(app)/p/[projectId]/page" → "/layout", "/(app)/layout", "/(app)/p/layout", … "/(app)/p/[projectId]/page".
// Next's 404 route ("/_not-found/page") renders the app's root not-found.tsx inside the root layout.
function entriesOfRoute(page) {
  const segments = page.replace(/\/page$/, "").split("/").filter(Boolean);
  const entries = ["/layout"];
  for (let i = 1; i <= segments.length; i++) entries.push(`/${segments.slice(0, i).join("/")}/layout`);
  if (page === "/_not-found/page") entries.push("/not-found");
  entries.push(page);
  return entries;
}

export function firstLoadJs(frontend) {
  const next = path.join(frontend, ".next");
  const manifestPath = path.join(next, "app-build-manifest.json");
  if (!existsSync(manifestPath)) throw new Error("No build in .next/: run `npm run build` first");
  const app = JSON.parse(readFileSync(manifestPath, "utf8")).pages;
  const cache = new Map();
  const gz = (file) => {
    if (!cache.has(file)) cache.set(file, gzipSync(readFileSync(path.join(next, file)), { level: 9 }).length);
    return cache.get(file);
  };
  const jsOf = (entries) => [...new Set(entries.flatMap((entry) => (app[entry] ?? []).filter((f) => f.endsWith(".js"))))];
  const bytesOf = (files) => files.reduce((n, f) => n + gz(f), 0);
  // What every route loads: the framework's main files and the root layout's own chunks.
  const sharedBytes = bytesOf(jsOf(["/layout"]));
  const routes = [];
  for (const page of Object.keys(app)) {
    if (!page.endsWith("/page")) continue;
    const route = page.replace(/\/page$/, "").replace(/\/\([^)]+\)/g, "") || "/";
    routes.push({ route, bytes: bytesOf(jsOf(entriesOfRoute(page))) });
  }
  routes.sort((a, b) => a.route.localeCompare(b.route));
  return { sharedBytes, routes };
}
