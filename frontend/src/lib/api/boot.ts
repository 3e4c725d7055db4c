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

/**
 * The worker that asks for the canvas' project and then, as soon as it has it, for the latest
 * deployments of its first environment. On the page's main thread that second request waited
 * for the answer to be read, i.e. behind the bundles' evaluation and hydration (400–600 ms in the
 * profile, on the canvas' critical path); a worker's thread is free. It posts each answer as
 * {u: path, s: status, x: statusText, h: headers, b: body text, n: the next path it asks for},
 * or {u, f: 1} when the request failed. Plain ES5: it is a string in the inline script.
 */
export const BOOT_WORKER = `self.onmessage=function(e){
var o=e.data.o,u=e.data.u,h={credentials:"include",headers:{Accept:"application/json"}};
var send=function(p,r,t,n){var hs=[];r.headers.forEach(function(v,k){hs.push([k,v]);});self.postMessage({u:p,s:r.status,x:r.statusText,h:hs,b:t,n:n});};
var ask=function(p,then){fetch(o+p,h).then(function(r){return r.text().then(function(t){then(r,t);});}).catch(function(){self.postMessage({u:p,f:1});});};
ask(u,function(r,t){var n=null;
if(r.ok){try{var d=JSON.parse(t),v=d&&d.environments&&d.environments[0];if(v)n=u+"/deployments/latest?environment_id="+encodeURIComponent(v.id);}catch(x){}}
send(u,r,t,n);
if(n)ask(n,function(q,s){send(n,q,s,null);});});};`;

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
var latest=function(e){return base+"/deployments/latest?environment_id="+encodeURIComponent(e)};
var env=new URLSearchParams(l.search).get("env");
if(env){get(base);get(latest(env));return;}
var w=null;
try{w=new Worker(URL.createObjectURL(new Blob([${JSON.stringify(BOOT_WORKER)}],{type:"text/javascript"})));}catch(x){w=null;}
if(!w){
get(base).then(function(r){if(!r.ok)return;return r.clone().json().then(function(d){
var e=d&&d.environments&&d.environments[0]&&d.environments[0].id;
if(e)get(latest(e));});}).catch(function(){});
return;}
var pend={};
var defer=function(u){var d={};b.r[u]=new Promise(function(ok,ko){d.ok=ok;d.ko=ko;});b.r[u].catch(function(){});pend[u]=d;};
var done=function(){for(var k in pend)return;w.terminate();};
defer(base);
w.onmessage=function(e){var a=e.data,d=pend[a.u];if(!d)return;delete pend[a.u];if(a.n)defer(a.n);
try{if(a.f)throw new Error("failed");d.ok(new Response(a.b,{status:a.s,statusText:a.x,headers:a.h}));}catch(x){d.ko(x);}
done();};
w.onerror=function(){for(var k in pend)pend[k].ko(new Error("boot worker"));pend={};w.terminate();};
w.postMessage({o:l.origin,u:base});
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
