/**
 * A WebSocket to the API that reconnects by itself (backoff with jitter), on the page's own
 * origin so the session cookie goes along. After an authentication close it refreshes the
 * session once through the fetch wrapper before trying again.
 */
import { apiFetch } from "@/lib/api/fetch";

export interface SocketHandlers {
  onMessage: (data: unknown) => void;
  onOpen?: () => void;
  onClose?: (event: CloseEvent) => void;
  /** Called before each (re)connection: lets the caller resume (e.g. `?since=<last id>`). */
  url: () => string;
  /** Stop reconnecting after a clean close (the server says the stream is over). */
  finalOnNormalClose?: boolean;
}

export function wsUrl(path: string): string {
  const { protocol, host } = window.location;
  return `${protocol === "https:" ? "wss" : "ws"}://${host}${path}`;
}

// 4401: sign in again (refresh, then retry). 1008: not found or not yours; 4403: role does not
// allow; 1013: too many viewers — retrying soon will not help, so wait long.
const AUTH_CLOSE_CODES = new Set([4001, 4401]);
const GIVE_IT_TIME_CODES = new Set([1008, 1013, 4403, 4404, 4429]);

export function connectSocket(handlers: SocketHandlers): () => void {
  let socket: WebSocket | null = null;
  let attempt = 0;
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;

  const open = () => {
    if (stopped) return;
    socket = new WebSocket(wsUrl(handlers.url()));
    let heard = false;
    socket.onopen = () => handlers.onOpen?.();
    socket.onmessage = (event) => {
      // Only a server that talks is a good connection: one that accepts and closes at once must
      // not reset the backoff (that would reconnect twice a second forever).
      if (!heard) {
        heard = true;
        attempt = 0;
      }
      handlers.onMessage(event.data);
    };
    socket.onclose = async (event) => {
      handlers.onClose?.(event);
      if (stopped) return;
      if (event.code === 1000 && handlers.finalOnNormalClose) return;
      if (GIVE_IT_TIME_CODES.has(event.code)) attempt = Math.max(attempt, 6);
      if (AUTH_CLOSE_CODES.has(event.code)) {
        // Let the fetch wrapper refresh the session (or send us to sign-in).
        await apiFetch("/api/v1/me").catch(() => undefined);
      }
      const delay = Math.min(30_000, 500 * 2 ** attempt) * (0.75 + Math.random() * 0.5);
      attempt++;
      timer = setTimeout(open, delay);
    };
  };

  open();
  return () => {
    stopped = true;
    clearTimeout(timer);
    if (socket && socket.readyState <= WebSocket.OPEN) socket.close(1000);
  };
}
