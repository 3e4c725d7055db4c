import path from "node:path";
import { fileURLToPath } from "node:url";
import type { NextConfig } from "next";

// In production the dashboard and the API share one origin: Traefik sends /api/* to the API and
// everything else here. Without Traefik, `npm run dev` proxies /api/* to CABOOSE_API_URL with the
// rewrite below, and `npm start` (scripts/start.mjs) does the same at run time, WebSockets included.
const apiUrl = process.env.NODE_ENV === "development" ? process.env.CABOOSE_API_URL?.replace(/\/$/, "") : undefined;
const here = path.dirname(fileURLToPath(import.meta.url));

const nextConfig: NextConfig = {
  output: "standalone",
  // The repository root has its own package-lock.json (PM2): this app's root is this folder.
  outputFileTracingRoot: here,
  reactStrictMode: true,
  poweredByHeader: false,
  eslint: { ignoreDuringBuilds: true },
  // `make test` type-checks with `tsc --noEmit` (and CI with it): checking again inside every
  // build `caboosed up` makes would add a minute on a small machine for nothing.
  typescript: { ignoreBuildErrors: true },
  async rewrites() {
    if (!apiUrl) return [];
    return [{ source: "/api/:path*", destination: `${apiUrl}/api/:path*` }];
  },
  async headers() {
    return [
      {
        source: "/:path*",
        headers: [
          { key: "X-Frame-Options", value: "DENY" },
          { key: "X-Content-Type-Options", value: "nosniff" },
          { key: "Referrer-Policy", value: "same-origin" },
        ],
      },
    ];
  },
};

export default nextConfig;
