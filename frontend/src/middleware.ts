import { NextResponse, type NextRequest } from "next/server";

// Pages that work signed out. Everything else needs a session: without even the CSRF cookie
// (which lives as long as the refresh token) there is none, so go to sign-in straight away
// instead of rendering a page that would bounce.
const PUBLIC = ["/login", "/setup", "/register", "/join"];

export function middleware(request: NextRequest) {
  const { pathname, search } = request.nextUrl;
  if (PUBLIC.some((p) => pathname === p || pathname.startsWith(`${p}/`))) return NextResponse.next();
  if (request.cookies.has("caboose_csrf")) return NextResponse.next();
  // Behind Traefik (or any proxy) Next's own idea of its host and port is not the one the browser
  // used: build the redirect from the forwarded (or Host) header.
  const host = request.headers.get("x-forwarded-host") ?? request.headers.get("host") ?? request.nextUrl.host;
  const proto = request.headers.get("x-forwarded-proto") ?? request.nextUrl.protocol.replace(/:$/, "");
  const target = new URL(`${proto}://${host}/login`);
  if (pathname !== "/") target.searchParams.set("next", pathname + search);
  return NextResponse.redirect(target, 307);
}

export const config = {
  // Not the API (Traefik sends it elsewhere; `next dev` rewrites it), static files or Next's own.
  matcher: ["/((?!api/|_next/|favicon|robots\\.txt).*)"],
};
