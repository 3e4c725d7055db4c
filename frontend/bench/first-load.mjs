// First-load JavaScript per route, gzipped, from the build output in .next/ — what `next build`
// prints as "First Load JS": the root main files plus the route's own client chunks.
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { gzipSync } from "node:zlib";

export function firstLoadJs(frontend) {
  const next = path.join(frontend, ".next");
  const manifestPath = path.join(next, "app-build-manifest.json");
  const buildManifestPath = path.join(next, "build-manifest.json");
  if (!existsSync(manifestPath) || !existsSync(buildManifestPath)) throw new Error("No build in .next/: run `npm run build` first");
  const app = JSON.parse(readFileSync(manifestPath, "utf8")).pages;
  const build = JSON.parse(readFileSync(buildManifestPath, "utf8"));
  const cache = new Map();
  const gz = (file) => {
    if (!cache.has(file)) cache.set(file, gzipSync(readFileSync(path.join(next, file)), { level: 9 }).length);
    return cache.get(file);
  };
  const shared = [...new Set([...(build.rootMainFiles ?? []), ...(build.polyfillFiles ?? []).filter(() => false)])].filter((f) => f.endsWith(".js"));
  const sharedBytes = shared.reduce((n, f) => n + gz(f), 0);
  const routes = [];
  for (const [entry, files] of Object.entries(app)) {
    if (!entry.endsWith("/page")) continue;
    const route = entry.replace(/\/page$/, "").replace(/\/\([^)]+\)/g, "") || "/";
    const all = [...new Set([...shared, ...files.filter((f) => f.endsWith(".js"))])];
    routes.push({ route, bytes: all.reduce((n, f) => n + gz(f), 0) });
  }
  routes.sort((a, b) => a.route.localeCompare(b.route));
  return { sharedBytes, routes };
}
