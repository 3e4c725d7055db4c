/**
 * The one fetch every API call goes through (the generated client and the hand-written calls).
 *
 * - Same origin, cookies included: the session lives in HTTP-only cookies.
 * - Unsafe methods echo the `caboose_csrf` cookie in `X-CSRF-Token` (double-submit CSRF).
 * - A 401 triggers one `POST /api/v1/auth/refresh` (shared by every request that got a 401 at the
 *   same time), then the request is retried once; if the refresh fails, `onUnauthenticated` runs
 *   (the dashboard sends the user to /login?next=…).
 */
import { takeBoot } from "./boot";

export const CSRF_COOKIE = "caboose_csrf";
export const CSRF_HEADER = "X-CSRF-Token";
export const REFRESH_PATH = "/api/v1/auth/refresh";

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);
// Answers about credentials themselves: a 401 there means "wrong password", not "expired".
const NO_REFRESH = [/\/api\/v1\/auth\/(login|register|refresh|logout|setup)\b/];

export type FetchLike = (input: RequestInfo | URL, init?: RequestInit) => Promise<Response>;

export interface ApiFetchOptions {
  fetch?: FetchLike;
  readCookie?: (name: string) => string | undefined;
  onUnauthenticated?: () => void;
}

export function readDocumentCookie(name: string): string | undefined {
  if (typeof document === "undefined") return undefined;
  for (const part of document.cookie.split(";")) {
    const [key, ...rest] = part.trim().split("=");
    if (key === name) return decodeURIComponent(rest.join("="));
  }
  return undefined;
}

function urlOf(input: RequestInfo | URL): string {
  if (typeof input === "string") return input;
  if (input instanceof URL) return input.href;
  return input.url;
}

function methodOf(input: RequestInfo | URL, init?: RequestInit): string {
  if (init?.method) return init.method.toUpperCase();
  if (typeof input === "object" && "method" in input) return input.method.toUpperCase();
  return "GET";
}

export function createApiFetch(options: ApiFetchOptions = {}): FetchLike {
  const baseFetch: FetchLike = options.fetch ?? ((i, n) => globalThis.fetch(i, n));
  const readCookie = options.readCookie ?? readDocumentCookie;
  let refreshing: Promise<boolean> | null = null;

  function withCsrf(method: string, headers: Headers): Headers {
    if (!SAFE_METHODS.has(method)) {
      const csrf = readCookie(CSRF_COOKIE);
      if (csrf) headers.set(CSRF_HEADER, csrf);
    }
    return headers;
  }

  async function refreshSession(): Promise<boolean> {
    refreshing ??= (async () => {
      try {
        const response = await baseFetch(REFRESH_PATH, {
          method: "POST",
          credentials: "include",
          headers: withCsrf("POST", new Headers({ Accept: "application/json" })),
        });
        return response.ok;
      } catch {
        return false;
      } finally {
        // Let the next 401 (after this family of requests) start a new refresh.
        setTimeout(() => {
          refreshing = null;
        }, 0);
      }
    })();
    return refreshing;
  }

  function send(input: RequestInfo | URL, init: RequestInit | undefined): Promise<Response> {
    const method = methodOf(input, init);
    if (typeof input === "object" && !(input instanceof URL)) {
      // A Request (what the generated client passes): rebuild it with fresh headers.
      const headers = withCsrf(method, new Headers(init?.headers ?? input.headers));
      return baseFetch(new Request(input, { ...init, headers, credentials: "include" }));
    }
    const headers = withCsrf(method, new Headers(init?.headers));
    return baseFetch(input, { ...init, headers, credentials: "include" });
  }

  return async function apiFetch(input, init) {
    const url = urlOf(input);
    const mayRefresh = !NO_REFRESH.some((re) => re.test(url));
    // Keep an unread copy of a Request's body for the retry.
    const spare = mayRefresh && typeof input === "object" && !(input instanceof URL) ? input.clone() : null;
    const response = await send(input, init);
    if (response.status !== 401 || !mayRefresh) return response;
    if (await refreshSession()) {
      const retried = await send(spare ?? input, init);
      if (retried.status !== 401) return retried;
      options.onUnauthenticated?.();
      return retried;
    }
    options.onUnauthenticated?.();
    return response;
  };
}

const PUBLIC_PAGES = ["/login", "/setup", "/register", "/join"];

let signingOut = false;

/**
 * Sign out, then load /login afresh (so nothing of the session stays in memory). Meanwhile the
 * page's queries still run and get 401s: those must not send the browser to /login?next=<here>,
 * which would bring the next person who signs in back to this page.
 */
export async function signOut(logout: () => Promise<unknown>, go: (url: string) => void = (url) => window.location.assign(url)): Promise<void> {
  signingOut = true;
  try {
    await logout();
  } finally {
    go("/login");
  }
}

/** Send the browser to /login?next=<where it was>, unless it is on a public page already. */
export function redirectToLogin(): void {
  if (typeof window === "undefined" || signingOut) return;
  const { pathname, search } = window.location;
  if (PUBLIC_PAGES.some((p) => pathname === p || pathname.startsWith(`${p}/`))) return;
  const next = encodeURIComponent(pathname + search);
  window.location.assign(`/login?next=${next}`);
}

export const apiFetch: FetchLike = createApiFetch({
  onUnauthenticated: redirectToLogin,
  // The page's first answers may already be on their way (lib/api/boot.ts).
  fetch: (input, init) => takeBoot(input, init) ?? globalThis.fetch(input, init),
});
