#!/usr/bin/env node
// Run the built dashboard: `npm start` (after `npm run build`).
//
//   PORT              where to listen (default 3000)
//   HOSTNAME          which address (default 127.0.0.1)
//   CABOOSE_API_URL   optional: when set, /api/* (HTTP and WebSocket) is proxied there, so the
//                     dashboard works on its own origin without Traefik (development, benchmarks).
//                     Behind Traefik (caboosed up) leave it unset: Traefik routes /api/* itself.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const server = path.join(root, ".next", "standalone", "server.js");
if (!existsSync(server)) {
  console.error("The dashboard is not built: run `npm run build` first.");
  process.exit(1);
}

const port = Number(process.env.PORT ?? 3000);
const host = process.env.HOSTNAME ?? "127.0.0.1";
const api = process.env.CABOOSE_API_URL ? new URL(process.env.CABOOSE_API_URL) : null;

function freePort() {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port: p } = probe.address();
      probe.close(() => resolve(p));
    });
  });
}

function runNext(nextPort, nextHost) {
  const child = spawn(process.execPath, [server], {
    stdio: "inherit",
    env: { ...process.env, PORT: String(nextPort), HOSTNAME: nextHost, NEXT_TELEMETRY_DISABLED: "1" },
  });
  for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => child.kill(signal));
  child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
  return child;
}

if (!api) {
  runNext(port, host);
} else {
  const nextPort = await freePort();
  runNext(nextPort, "127.0.0.1");
  const targetOf = (url) =>
    url.startsWith("/api/") ? { host: api.hostname, port: Number(api.port || 80), api: true } : { host: "127.0.0.1", port: nextPort, api: false };

  const proxy = http.createServer((req, res) => {
    const target = targetOf(req.url ?? "/");
    // The Host header stays the browser's, as Traefik passes it: the API checks WebSocket
    // origins against it, and Next builds redirects from it.
    const headers = { ...req.headers, "x-forwarded-host": req.headers.host ?? "", "x-forwarded-proto": "http" };
    const upstream = http.request({ host: target.host, port: target.port, method: req.method, path: req.url, headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on("error", () => {
      if (!res.headersSent) res.writeHead(502, { "content-type": "application/problem+json" });
      res.end(JSON.stringify({ title: "Bad gateway", status: 502, detail: `${target.api ? "The API" : "The dashboard"} is not answering` }));
    });
    req.pipe(upstream);
  });

  // WebSockets: pass the upgrade through byte for byte.
  proxy.on("upgrade", (req, socket, head) => {
    const target = targetOf(req.url ?? "/");
    const upstream = net.connect(target.port, target.host, () => {
      const headers = { ...req.headers };
      const lines = [`${req.method} ${req.url} HTTP/1.1`, ...Object.entries(headers).flatMap(([k, v]) => (Array.isArray(v) ? v.map((x) => `${k}: ${x}`) : [`${k}: ${v}`]))];
      upstream.write(`${lines.join("\r\n")}\r\n\r\n`);
      if (head?.length) upstream.write(head);
      upstream.pipe(socket);
      socket.pipe(upstream);
    });
    upstream.on("error", () => socket.destroy());
    socket.on("error", () => upstream.destroy());
  });

  proxy.listen(port, host, () => console.log(`Caboose dashboard on http://${host}:${port} (API: ${api.origin})`));
}
