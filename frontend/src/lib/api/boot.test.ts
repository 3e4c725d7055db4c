import { afterEach, describe, expect, it } from "vitest";
import { BOOT_MAX_AGE_MS, BOOT_SCRIPT, takeBoot } from "./boot";

const answer = (body: unknown) => Promise.resolve(new Response(JSON.stringify(body), { status: 200 }));

afterEach(() => {
  delete window.__cabooseBoot;
});

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
});
