import { afterEach, describe, expect, it, vi } from "vitest";
import { BOOT_MAX_AGE_MS, BOOT_SCRIPT, BOOT_WORKER, hasBoot, takeBoot } from "./boot";

const answer = (body: unknown) => Promise.resolve(new Response(JSON.stringify(body), { status: 200 }));

afterEach(() => {
  delete window.__cabooseBoot;
  vi.unstubAllGlobals();
  window.history.replaceState(null, "", "/");
});

const PROJECT = "/api/v1/projects/p1";
const LATEST = `${PROJECT}/deployments/latest?environment_id=e%201`;

/** A stand-in API: the project (first environment "e 1"), its latest deployments, /me; `fail`: once each. */
function fakeApi(fail: string[] = []) {
  const asked: string[] = [];
  const fetch = vi.fn(async (input: RequestInfo | URL) => {
    const url = String(input);
    asked.push(url.replace(window.location.origin, ""));
    const failing = fail.findIndex((f) => url.endsWith(f));
    if (failing >= 0) {
      fail.splice(failing, 1);
      throw new TypeError("network down");
    }
    const body = url.endsWith(PROJECT) ? { id: "p1", environments: [{ id: "e 1" }, { id: "e2" }] } : url.includes("/latest") ? { items: ["latest"] } : { id: "u" };
    return new Response(JSON.stringify(body), { status: 200, statusText: "OK", headers: { "content-type": "application/json" } });
  });
  return { asked, fetch };
}

/** Worker, running BOOT_WORKER on this thread with the given fetch (messages stay asynchronous). */
function fakeWorker(fetch: typeof globalThis.fetch) {
  const workers: { terminated: boolean }[] = [];
  class FakeWorker {
    onmessage: ((e: { data: unknown }) => void) | null = null;
    onerror: (() => void) | null = null;
    terminated = false;
    private scope: { onmessage?: (e: { data: unknown }) => void; postMessage: (m: unknown) => void };
    constructor() {
      this.scope = { postMessage: (m) => setTimeout(() => this.onmessage?.({ data: m }), 0) };
      new Function("self", "fetch", BOOT_WORKER)(this.scope, fetch);
      workers.push(this);
    }
    postMessage(data: unknown) {
      setTimeout(() => this.scope.onmessage?.({ data }), 0);
    }
    terminate() {
      this.terminated = true;
    }
  }
  return { FakeWorker, workers };
}

function runBoot(path: string) {
  window.history.replaceState(null, "", path);
  new Function(BOOT_SCRIPT)();
}

describe("early requests", () => {
  it("hands an early answer to the first GET of the same URL, once", async () => {
    window.__cabooseBoot = { t: Date.now(), r: { "/api/v1/me": answer({ id: "u" }) } };
    const first = takeBoot(`${window.location.origin}/api/v1/me`);
    expect(first).toBeDefined();
    expect(await (await first!).json()).toEqual({ id: "u" });
    expect(takeBoot("/api/v1/me")).toBeUndefined();
  });

  it("matches Requests (what the generated client passes) and query strings exactly", () => {
    window.__cabooseBoot = { t: Date.now(), r: { "/api/v1/projects/p/deployments/latest?environment_id=e": answer({}) } };
    expect(takeBoot("/api/v1/projects/p/deployments/latest?environment_id=other")).toBeUndefined();
    expect(takeBoot(new Request(`${window.location.origin}/api/v1/projects/p/deployments/latest?environment_id=e`))).toBeDefined();
  });

  it("never answers other methods, other origins or stale boots", () => {
    window.__cabooseBoot = { t: Date.now(), r: { "/api/v1/me": answer({}) } };
    expect(takeBoot("/api/v1/me", { method: "POST" })).toBeUndefined();
    expect(takeBoot("https://elsewhere.example/api/v1/me")).toBeUndefined();
    window.__cabooseBoot = { t: Date.now() - BOOT_MAX_AGE_MS - 1, r: { "/api/v1/me": answer({}) } };
    expect(takeBoot("/api/v1/me")).toBeUndefined();
  });

  it("without a boot, there is nothing to take", () => {
    expect(takeBoot("/api/v1/me")).toBeUndefined();
  });

  it("the inline script is valid JavaScript", () => {
    expect(() => new Function(BOOT_SCRIPT)).not.toThrow();
  });

  it("the canvas: the worker asks for the project, then its first environment's latest deployments", async () => {
    const api = fakeApi();
    const { FakeWorker, workers } = fakeWorker(api.fetch);
    vi.stubGlobal("fetch", api.fetch);
    vi.stubGlobal("Worker", FakeWorker);
    vi.stubGlobal("URL", Object.assign(URL, { createObjectURL: () => "blob:boot" }));
    runBoot("/p/p1");
    const project = takeBoot(PROJECT);
    expect(project).toBeDefined();
    const answer = await project!;
    expect(answer.status).toBe(200);
    expect(answer.headers.get("content-type")).toBe("application/json");
    expect(await answer.json()).toMatchObject({ id: "p1" });
    // Announced with the project, before the canvas looks for it.
    expect(hasBoot(LATEST)).toBe(true);
    expect(await (await takeBoot(LATEST)!).json()).toEqual({ items: ["latest"] });
    expect(api.asked).toEqual(["/api/v1/me", PROJECT, LATEST]);
    expect(workers[0]?.terminated).toBe(true);
  });

  it("a request the worker could not make is made again by the page", async () => {
    const api = fakeApi(["/latest?environment_id=e%201"]);
    const { FakeWorker } = fakeWorker(api.fetch);
    vi.stubGlobal("fetch", api.fetch);
    vi.stubGlobal("Worker", FakeWorker);
    vi.stubGlobal("URL", Object.assign(URL, { createObjectURL: () => "blob:boot" }));
    runBoot("/p/p1");
    await takeBoot(PROJECT);
    // takeBoot's fallback: the same request, from the page.
    expect(await (await takeBoot(LATEST)!).json()).toEqual({ items: ["latest"] });
    expect(api.asked.filter((u) => u === LATEST)).toHaveLength(2);
  });

  it("without workers, the page asks for both itself", async () => {
    const api = fakeApi();
    vi.stubGlobal("fetch", api.fetch);
    vi.stubGlobal("Worker", undefined);
    runBoot("/p/p1");
    expect(await (await takeBoot(PROJECT)!).json()).toMatchObject({ id: "p1" });
    await vi.waitFor(() => expect(hasBoot(LATEST)).toBe(true));
    expect(await (await takeBoot(LATEST)!).json()).toEqual({ items: ["latest"] });
  });

  it("with ?env=, the project and that environment's deployments are asked for at once", () => {
    const api = fakeApi();
    vi.stubGlobal("fetch", api.fetch);
    runBoot("/p/p1?env=e2");
    expect(api.asked).toEqual(["/api/v1/me", PROJECT, `${PROJECT}/deployments/latest?environment_id=e2`]);
  });

  it("other pages ask for /me only; public pages for nothing", () => {
    const api = fakeApi();
    vi.stubGlobal("fetch", api.fetch);
    runBoot("/w/w1");
    expect(api.asked).toEqual(["/api/v1/me"]);
    delete window.__cabooseBoot;
    runBoot("/login");
    expect(window.__cabooseBoot).toBeUndefined();
  });
});
