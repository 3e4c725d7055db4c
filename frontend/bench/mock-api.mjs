// A stand-in for the Caboose API that speaks API.md's shapes with generated data: a workspace,
// a project with N services and their deployments, variables, metrics, and a log WebSocket that
// streams as many lines as asked. The dashboard benchmark runs against it (so it measures the
// dashboard, not the API); it also serves screenshots of pages whose API routes are still being
// built. Not a test double for correctness: the e2e suite runs against the real platform.
//
//   node bench/mock-api.mjs --port 0 --services 50 --log-lines 100000
import { createHash, randomUUID } from "node:crypto";
import http from "node:http";
import { WebSocketServer } from "ws";

export function createMockApi({ services = 8, logLines = 400, logBatch = 2000, logIntervalMs = 16 } = {}) {
  const now = Date.now();
  const iso = (msAgo) => new Date(now - msAgo).toISOString();
  const user = { id: randomUUID(), email: "ada@example.com", name: "Ada Lovelace", is_instance_owner: true, github_login: null, last_login_at: iso(0), created_at: iso(9e8), updated_at: iso(1e6), has_password: true, github_connected: false };
  const workspace = { id: randomUUID(), name: "Acme", slug: "acme", role: "owner", is_personal: false, created_at: iso(9e8), updated_at: iso(9e8) };
  const personal = { id: randomUUID(), name: "Ada's workspace", slug: "ada", role: "owner", is_personal: true, created_at: iso(9e8), updated_at: iso(9e8) };
  const production = { id: randomUUID(), name: "production", is_preview: false, pr_number: null, created_at: iso(8e8), updated_at: iso(8e8) };
  const staging = { id: randomUUID(), name: "staging", is_preview: false, pr_number: null, created_at: iso(7e8), updated_at: iso(7e8) };
  const project = { id: randomUUID(), workspace_id: workspace.id, name: "storefront", description: "The shop: web front, API, workers and cron jobs.", preview_environments: false, created_at: iso(8e8), updated_at: iso(3e5) };
  const names = ["web", "api", "worker", "scheduler", "search", "images", "mailer", "admin", "billing", "auth", "gateway", "reports"];
  const statuses = ["ACTIVE", "ACTIVE", "ACTIVE", "BUILDING", "ACTIVE", "FAILED", "ACTIVE", "DEPLOYING", "ACTIVE", "ACTIVE", "CRASHED", "QUEUED"];
  const serviceList = Array.from({ length: services }, (_, i) => ({
    id: randomUUID(),
    project_id: project.id,
    name: i < names.length ? names[i] : `svc-${String(i).padStart(2, "0")}`,
    repo_url: i % 4 === 3 ? null : `https://github.com/acme/${i < names.length ? names[i] : "monorepo"}`,
    branch: "main",
    root_directory: i < names.length ? "" : `services/svc-${i}`,
    build_command: null,
    start_command: i === 0 ? "node server.js" : null,
    pre_deploy_command: i === 1 ? "npm run migrate" : null,
    healthcheck_path: i < 2 ? "/health" : null,
    healthcheck_timeout: i < 2 ? 60 : null,
    num_replicas: i === 1 ? 3 : i === 0 ? 2 : null,
    restart_policy_type: "ON_FAILURE",
    restart_policy_max_retries: 5,
    memory_limit_mb: i === 1 ? 512 : null,
    cron_schedule: i === 3 ? "*/15 * * * *" : null,
    watch_patterns: i === 0 ? ["apps/web/**", "package.json"] : null,
    overlap_seconds: null,
    draining_seconds: null,
    created_at: iso(8e8 - i * 1000),
    updated_at: iso(1e6),
  }));
  const authors = ["ada", "grace", "linus", "margaret"];
  const messages = ["Add checkout retries", "Bump dependencies", "Fix N+1 query on orders", "Cache product pages", "Log slow requests", "Initial commit"];
  const deployments = new Map();
  serviceList.forEach((s, i) => {
    const first = statuses[i % statuses.length];
    const list = Array.from({ length: 6 }, (_, k) => {
      const status = k === 0 ? first : k === 1 && first !== "ACTIVE" ? "ACTIVE" : "REMOVED";
      const created = 60_000 * (k * 47 + 3 + i);
      const replicas = Array.from({ length: s.num_replicas ?? 1 }, (_, r) => ({ index: r, port: 41000 + i * 10 + r, status: "online", restarts: r === 1 ? 2 : 0, pid: 3000 + i * 10 + r }));
      return {
        id: randomUUID(),
        service_id: s.id,
        environment_id: production.id,
        build_id: randomUUID(),
        status,
        status_reason: status === "FAILED" ? "Healthcheck /health did not answer 2xx within 60 s" : status === "CRASHED" ? "Exited with code 1 (5 restarts)" : null,
        trigger: k === 0 ? "webhook" : "manual",
        created_at: iso(created),
        updated_at: iso(created - 40_000),
        started_at: iso(created - 1000),
        finished_at: ["BUILDING", "DEPLOYING", "QUEUED"].includes(status) ? null : iso(created - 1000 - (30_000 + ((i * 7919 + k * 104729) % 90_000))),
        commit_sha: s.repo_url ? createHash("sha1").update(`${s.name}-${k}`).digest("hex") : null,
        commit_message: s.repo_url ? messages[(i + k) % messages.length] : null,
        commit_author: s.repo_url ? authors[(i + k) % authors.length] : null,
        url: status === "ACTIVE" ? `http://${s.name}-${project.name}.localhost:8080` : null,
        replicas: status === "ACTIVE" ? replicas : [],
      };
    });
    deployments.set(s.id, list);
  });
  const variables = {
    DATABASE_URL: "${{shared.DATABASE_URL}}",
    NODE_ENV: "production",
    API_URL: "https://${{api.CABOOSE_PUBLIC_DOMAIN}}",
    STRIPE_SECRET_KEY: "sk_live_51Habc",
    SESSION_SECRET: "*****",
    LOG_LEVEL: "info",
  };
  const shared = { DATABASE_URL: "postgres://shop:hunter2@db.internal:5432/shop", REDIS_URL: "redis://cache.internal:6379/0" };
  const page = (items) => ({ items, total: items.length, skip: 0, limit: 1000, has_more: false });

  function metrics(serviceId, window) {
    const span = { "1h": 3600e3, "6h": 6 * 3600e3, "24h": 24 * 3600e3 }[window] ?? 3600e3;
    const step = span / 120;
    const service = serviceList.find((s) => s.id === serviceId);
    const replicas = Math.max(1, service?.num_replicas ?? 1);
    return {
      window,
      service_id: serviceId,
      resolution_seconds: Math.round(step / 1000),
      replicas: Array.from({ length: replicas }, (_, r) => ({
        index: r,
        deployment_id: null,
        pid: 3000 + r,
        restarts: r === 1 ? 2 : 0,
        points: Array.from({ length: 120 }, (_, k) => ({
          at: new Date(now - span + k * step).toISOString(),
          cpu_percent: Math.max(0, 12 + r * 6 + 9 * Math.sin(k / 9 + r) + 5 * Math.sin(k / 2.3) + (k > 90 && k < 96 ? 40 : 0)),
          memory_bytes: Math.round((180 + r * 40 + k * 0.6 + 12 * Math.sin(k / 5 + r)) * 1_048_576),
        })),
      })),
    };
  }

  const routes = [
    ["GET", /^\/api\/v1\/auth\/setup$/, () => ({ needs_setup: false, registration_open: true, github_enabled: true })],
    ["GET", /^\/api\/v1\/me$/, () => ({ ...user, workspaces: [personal, workspace].map(({ created_at, updated_at, ...w }) => w) })],
    ["POST", /^\/api\/v1\/auth\/(login|refresh|logout)$/, () => ({ access_token: "x", refresh_token: "y", token_type: "bearer", expires_in: 900, csrf_token: "csrf" })],
    ["GET", /^\/api\/v1\/workspaces$/, () => page([personal, workspace])],
    ["GET", /^\/api\/v1\/workspaces\/([^/]+)\/projects$/, (m) => page(m[1] === workspace.id ? [project, { ...project, id: randomUUID(), name: "marketing-site", description: "Static site and its preview builds." }] : [])],
    ["GET", /^\/api\/v1\/projects\/([^/]+)$/, () => ({ ...project, environments: [production, staging], services: serviceList })],
    ["GET", /^\/api\/v1\/services\/([^/]+)\/deployments$/, (m, q) => {
      const list = q.get("environment_id") === production.id ? deployments.get(m[1]) ?? [] : [];
      return { ...page(list.slice(0, Number(q.get("limit") ?? 20))), total: list.length };
    }],
    ["GET", /^\/api\/v1\/projects\/([^/]+)\/deployments\/latest$/, (m, q) => ({
      environment_id: q.get("environment_id"),
      items: serviceList.map((s) => {
        const list = q.get("environment_id") === production.id ? deployments.get(s.id) ?? [] : [];
        return { service_id: s.id, latest: list[0] ?? null, active: list.find((d) => d.status === "ACTIVE") ?? null };
      }),
    })],
    ["GET", /^\/api\/v1\/deployments\/([^/]+)$/, (m) => [...deployments.values()].flat().find((d) => d.id === m[1]) ?? null],
    ["POST", /^\/api\/v1\/deployments\/([^/]+)\/(redeploy|rollback|restart|cancel)$/, (m) => [...deployments.values()].flat().find((d) => d.id === m[1])],
    ["GET", /^\/api\/v1\/services\/([^/]+)\/variables$/, () => ({ variables, sealed: ["SESSION_SECRET"], values_visible: true, undecryptable: [] })],
    ["PUT", /^\/api\/v1\/services\/([^/]+)\/variables$/, () => ({ variables, sealed: ["SESSION_SECRET"], values_visible: true, undecryptable: [] })],
    ["GET", /^\/api\/v1\/environments\/([^/]+)\/shared-variables$/, () => ({ variables: shared })],
    ["GET", /^\/api\/v1\/services\/([^/]+)\/metrics$/, (m, q) => metrics(m[1], q.get("window") ?? "1h")],
    ["GET", /^\/api\/v1\/services\/([^/]+)\/domains$/, (m) => {
      const s = serviceList.find((x) => x.id === m[1]);
      return page([
        { id: randomUUID(), service_id: m[1], environment_id: production.id, hostname: `${s?.name}-${project.name}.localhost`, kind: "generated", status: "active" },
        ...(s?.name === "web" ? [{ id: randomUUID(), service_id: m[1], environment_id: production.id, hostname: "shop.example.com", kind: "custom", status: "pending" }] : []),
      ]);
    }],
    ["GET", /^\/api\/v1\/services\/([^/]+)\/webhooks$/, (m) => page([{ id: randomUUID(), service_id: m[1], provider: "github", is_active: true, last_delivery_at: iso(3e6), last_delivery_status: "202 deployed", created_at: iso(5e8) }])],
    ["GET", /^\/api\/v1\/workspaces\/([^/]+)\/members$/, () => page([
      { user_id: user.id, email: user.email, name: user.name, role: "owner", joined_at: iso(9e8) },
      { user_id: randomUUID(), email: "grace@example.com", name: "Grace Hopper", role: "admin", joined_at: iso(5e8) },
      { user_id: randomUUID(), email: "linus@example.com", name: "Linus", role: "member", joined_at: iso(2e8) },
    ])],
    ["GET", /^\/api\/v1\/workspaces\/([^/]+)\/invitations$/, () => page([{ id: randomUUID(), workspace_id: workspace.id, email: "margaret@example.com", role: "member", invited_by_id: user.id, expires_at: new Date(now + 2.5 * 864e5).toISOString(), accepted_at: null, created_at: iso(4e6), updated_at: iso(4e6) }])],
    ["GET", /^\/api\/v1\/tokens$/, () => page([
      { id: randomUUID(), name: "GitHub Actions", prefix: "cb_7Hk2", project_id: null, expires_at: new Date(now + 80 * 864e5).toISOString(), last_used_at: iso(7e6), revoked_at: null, created_at: iso(9e8), updated_at: iso(7e6) },
      { id: randomUUID(), name: "laptop", prefix: "cb_Qm9x", project_id: null, expires_at: null, last_used_at: iso(6e5), revoked_at: null, created_at: iso(3e8), updated_at: iso(6e5) },
    ])],
  ];

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://mock");
    for (const [method, pattern, handler] of routes) {
      const m = pattern.exec(url.pathname);
      if (m && method === req.method) {
        const body = handler(m, url.searchParams);
        res.writeHead(body === null ? 404 : 200, { "content-type": "application/json" });
        res.end(JSON.stringify(body ?? { title: "Not found", status: 404 }));
        return;
      }
    }
    res.writeHead(404, { "content-type": "application/problem+json" });
    res.end(JSON.stringify({ title: "Not found", status: 404, detail: `${req.method} ${url.pathname} is not in the mock` }));
  });

  const LEVELS = ["\x1b[32mINFO\x1b[0m ", "\x1b[36mDEBUG\x1b[0m", "\x1b[33mWARN\x1b[0m ", "\x1b[31;1mERROR\x1b[0m"];
  const PATHS = ["/", "/products", "/cart", "/api/orders", "/health", "/checkout"];
  const buildLines = [
    "\x1b[1;35m==> Caboose build\x1b[0m plan: \x1b[36mnode\x1b[0m (package-lock.json found)",
    "    install: \x1b[2mnpm ci\x1b[0m",
    "    build:   \x1b[2mnpm run build\x1b[0m",
    "    start:   \x1b[2mnode server.js\x1b[0m",
    "\x1b[1m$ npm ci\x1b[0m",
    "added 412 packages in 9s",
    "\x1b[1m$ npm run build\x1b[0m",
    "\x1b[32m✓\x1b[0m Compiled successfully in \x1b[1m7.2s\x1b[0m",
    "\x1b[1;32m==> Build succeeded\x1b[0m in 21.4s · artifact 38.2 MB",
    "\x1b[1;35m==> Deploying\x1b[0m 2 replicas · healthcheck \x1b[36m/health\x1b[0m",
  ];
  function logLine(n) {
    if (n < buildLines.length) return { stream: "build", replica: null, line: buildLines[n] };
    if (n === buildLines.length) return { stream: "system", replica: null, line: "Replica 0 healthy on :41000 · replica 1 healthy on :41001 · routed" };
    const level = LEVELS[n % 17 === 0 ? 3 : n % 7 === 0 ? 2 : n % 3 === 0 ? 1 : 0];
    const stream = level.includes("ERROR") ? "stderr" : "stdout";
    const path = PATHS[n % PATHS.length];
    return { stream, replica: n % 2, line: `${level} ${stream === "stderr" ? `Unhandled rejection in ${path}: \x1b[31mECONNRESET\x1b[0m` : `GET ${path} \x1b[32m200\x1b[0m in ${(n * 7) % 120}ms req=${(n * 2654435761 >>> 0).toString(16)}`}` };
  }

  const wss = new WebSocketServer({ noServer: true });
  server.on("upgrade", (req, socket, head) => {
    const url = new URL(req.url ?? "/", "http://mock");
    wss.handleUpgrade(req, socket, head, (ws) => {
      if (/\/logs\/ws$/.test(url.pathname)) {
        const since = url.searchParams.get("since");
        let n = since ? Number(since.split("-")[0]) + 1 : 0;
        const base = now - 3600e3;
        const timer = setInterval(() => {
          // Like the API: one frame per batch of lines.
          const end = Math.min(logLines, n + logBatch);
          const items = [];
          for (; n < end; n++) items.push({ id: `${n}-0`, ts: new Date(base + n * 35).toISOString(), ...logLine(n) });
          if (items.length) ws.send(JSON.stringify({ type: "logs", items }));
          if (n >= logLines) {
            clearInterval(timer);
            ws.send(JSON.stringify({ type: "status", status: "ACTIVE" }));
          }
        }, logIntervalMs);
        const ping = setInterval(() => ws.send('{"type":"ping"}'), 30_000);
        ws.on("close", () => {
          clearInterval(timer);
          clearInterval(ping);
        });
      } else {
        ws.send(JSON.stringify({ type: "ready", id: "0-0" }));
        const ping = setInterval(() => ws.send('{"type":"ping"}'), 30_000);
        ws.on("close", () => clearInterval(ping));
      }
    });
  });

  return { server, workspace, project, production, services: serviceList, deployments };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const arg = (name, fallback) => {
    const i = process.argv.indexOf(`--${name}`);
    return i >= 0 ? Number(process.argv[i + 1]) : fallback;
  };
  const mock = createMockApi({ services: arg("services", 8), logLines: arg("log-lines", 400) });
  mock.server.listen(arg("port", 0), "127.0.0.1", () => {
    const { port } = mock.server.address();
    console.log(JSON.stringify({ url: `http://127.0.0.1:${port}`, workspace: mock.workspace.id, project: mock.project.id, service: mock.services[0].id, deployment: mock.deployments.get(mock.services[0].id)[0].id }));
  });
}
