/**
 * Early requests: the answers a page needs first, asked for by an inline script in the HTML's
 * <head> (BOOT_SCRIPT, in the root layout) while the JavaScript is still downloading, parsing and
 * hydrating, instead of once React has mounted (which on a slow machine is a second later). The
 * fetch wrapper (fetch.ts) takes each answer once, for the first GET of the same URL; anything
 * else (a 401, a retry, a later refetch) goes to the network as before.
 *
 * Pages: every signed-in page asks for /me; the canvas (/p/<id>) also for its project and then
 * its services' latest deployments in the environment shown (?env= or the first one).
 */

interface Boot {
  /** When the script ran (Date.now()). */
  t: number;
  /** Path + query → the pending response. */
  r: Record<string, Promise<Response> | undefined>;
}

declare global {
  interface Window {
    __cabooseBoot?: Boot;
  }
}

/** Answers older than this are not used (a page left open, then a client-side navigation). */
export const BOOT_MAX_AGE_MS = 15_000;

// Kept small and plain: it runs before any bundle. The same URLs as the API client builds.
export const BOOT_SCRIPT = `(function(){try{
var l=location,p=l.pathname;
if(!/^\\/(p|w)\\/|^\\/account(\\/|$)|^\\/$/.test(p))return;
var b=window.__cabooseBoot={t:Date.now(),r:{}};
var get=function(u){return b.r[u]=fetch(u,{credentials:"include",headers:{Accept:"application/json"}})};
get("/api/v1/me");
var m=/^\\/p\\/([^/]+)\\/?$/.exec(p);
if(!m)return;
var base="/api/v1/projects/"+m[1];
var env=new URLSearchParams(l.search).get("env");
get(base).then(function(r){if(!r.ok)return;return r.clone().json().then(function(d){
var e=env||(d&&d.environments&&d.environments[0]&&d.environments[0].id);
if(e)get(base+"/deployments/latest?environment_id="+encodeURIComponent(e));});}).catch(function(){});
}catch(e){}})();`;

function pathOf(input: RequestInfo | URL): string | undefined {
  try {
    const href = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
    const url = new URL(href, window.location.href);
    if (url.origin !== window.location.origin) return undefined;
    return url.pathname + url.search;
  } catch {
    return undefined;
  }
}

/** The early answer for this request, once; undefined when there is none (then fetch it). */
export function takeBoot(input: RequestInfo | URL, init?: RequestInit): Promise<Response> | undefined {
  if (typeof window === "undefined") return undefined;
  const boot = window.__cabooseBoot;
  if (!boot) return undefined;
  const method = (init?.method ?? (typeof input === "object" && "method" in input ? input.method : "GET")).toUpperCase();
  if (method !== "GET") return undefined;
  const path = pathOf(input);
  if (!path) return undefined;
  const found = boot.r[path];
  if (!found) return undefined;
  delete boot.r[path];
  if (Date.now() - boot.t > BOOT_MAX_AGE_MS) return undefined;
  // A failed early request is simply asked again.
  return found.catch(() => globalThis.fetch(input, init));
}

/** Whether an early answer for this path (+ query) is waiting to be taken. */
export function hasBoot(path: string): boolean {
  if (typeof window === "undefined") return false;
  const boot = window.__cabooseBoot;
  return !!boot?.r[path] && Date.now() - boot.t <= BOOT_MAX_AGE_MS;
}
