import { describe, expect, it, vi } from "vitest";
import { CSRF_HEADER, createApiFetch, signOut, type FetchLike } from "./fetch";

type Call = { url: string; method: string; csrf: string | null; body: string | null };

/** A fake server: answers from a script, records what it was sent. */
function fakeServer(answer: (call: Call, n: number) => number) {
  const calls: Call[] = [];
  const fetch: FetchLike = async (input, init) => {
    const request = input instanceof Request ? input : null;
    const url = request ? request.url : String(input);
    const method = (init?.method ?? request?.method ?? "GET").toUpperCase();
    const headers = new Headers(init?.headers ?? request?.headers);
    const body = request ? await request.text() : typeof init?.body === "string" ? init.body : null;
    const call = { url, method, csrf: headers.get(CSRF_HEADER), body: body || null };
    calls.push(call);
    return new Response(null, { status: answer(call, calls.length) });
  };
  return { fetch, calls };
}

describe("apiFetch", () => {
  it("sends the CSRF cookie's value on unsafe methods only", async () => {
    const { fetch, calls } = fakeServer(() => 200);
    const apiFetch = createApiFetch({ fetch, readCookie: () => "tok123" });
    await apiFetch("/api/v1/me");
    await apiFetch("/api/v1/projects/1", { method: "DELETE" });
    expect(calls.map((c) => c.csrf)).toEqual([null, "tok123"]);
  });

  it("refreshes once on 401 and retries the request with its body and the new CSRF token", async () => {
    let csrf = "old";
    let refreshed = false;
    const { fetch, calls } = fakeServer((call) => {
      if (call.url.endsWith("/auth/refresh")) {
        refreshed = true;
        csrf = "new";
        return 200;
      }
      return refreshed ? 201 : 401;
    });
    const apiFetch = createApiFetch({ fetch, readCookie: () => csrf });
    const request = new Request("http://x/api/v1/workspaces", { method: "POST", body: '{"name":"a"}' });
    const response = await apiFetch(request);
    expect(response.status).toBe(201);
    expect(calls.map((c) => `${c.method} ${new URL(c.url, "http://x").pathname} ${c.csrf}`)).toEqual([
      "POST /api/v1/workspaces old",
      "POST /api/v1/auth/refresh old",
      "POST /api/v1/workspaces new",
    ]);
    expect(calls[2]?.body).toBe('{"name":"a"}');
  });

  it("shares one refresh between requests that fail together", async () => {
    let refreshes = 0;
    let refreshed = false;
    const { fetch } = fakeServer((call) => {
      if (call.url.endsWith("/auth/refresh")) {
        refreshes++;
        refreshed = true;
        return 200;
      }
      return refreshed ? 200 : 401;
    });
    const apiFetch = createApiFetch({ fetch, readCookie: () => "c" });
    const results = await Promise.all([apiFetch("/api/v1/me"), apiFetch("/api/v1/workspaces"), apiFetch("/api/v1/tokens")]);
    expect(results.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(refreshes).toBe(1);
  });

  it("gives up after a failed refresh and signals unauthenticated, without looping", async () => {
    const onUnauthenticated = vi.fn();
    const { fetch, calls } = fakeServer(() => 401);
    const apiFetch = createApiFetch({ fetch, readCookie: () => "c", onUnauthenticated });
    const response = await apiFetch("/api/v1/me");
    expect(response.status).toBe(401);
    expect(calls).toHaveLength(2); // the request and one refresh; no retry
    expect(onUnauthenticated).toHaveBeenCalledOnce();
  });

  it("retries only once: a second 401 after a good refresh also signals unauthenticated", async () => {
    const onUnauthenticated = vi.fn();
    const { fetch, calls } = fakeServer((call) => (call.url.endsWith("/auth/refresh") ? 200 : 401));
    const apiFetch = createApiFetch({ fetch, readCookie: () => "c", onUnauthenticated });
    expect((await apiFetch("/api/v1/me")).status).toBe(401);
    expect(calls).toHaveLength(3);
    expect(onUnauthenticated).toHaveBeenCalledOnce();
  });

  it("never refreshes for a wrong password on login", async () => {
    const onUnauthenticated = vi.fn();
    const { fetch, calls } = fakeServer(() => 401);
    const apiFetch = createApiFetch({ fetch, readCookie: () => undefined, onUnauthenticated });
    await apiFetch("/api/v1/auth/login", { method: "POST", body: "{}" });
    expect(calls).toHaveLength(1);
    expect(onUnauthenticated).not.toHaveBeenCalled();
  });

  it("passes other errors through untouched", async () => {
    const { fetch, calls } = fakeServer(() => 403);
    const apiFetch = createApiFetch({ fetch, readCookie: () => "c" });
    expect((await apiFetch("/api/v1/workspaces/1", { method: "DELETE" })).status).toBe(403);
    expect(calls).toHaveLength(1);
  });
});

describe("signOut", () => {
  it("goes to /login once the session is closed, and also when closing it failed", async () => {
    const go = vi.fn();
    const order: string[] = [];
    await signOut(
      async () => order.push("logout"),
      (url) => {
        order.push(`go ${url}`);
        go(url);
      },
    );
    expect(order).toEqual(["logout", "go /login"]);
    await expect(signOut(() => Promise.reject(new Error("offline")), go)).rejects.toThrow("offline");
    expect(go).toHaveBeenLastCalledWith("/login");
    expect(go).toHaveBeenCalledTimes(2);
  });
});
