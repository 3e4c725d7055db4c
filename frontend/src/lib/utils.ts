import { clsx, type ClassValue } from "clsx";
import { twMerge } from "tailwind-merge";

export function cn(...inputs: ClassValue[]): string {
  return twMerge(clsx(inputs));
}

const UNITS: [Intl.RelativeTimeFormatUnit, number][] = [
  ["year", 365 * 24 * 3600],
  ["month", 30 * 24 * 3600],
  ["day", 24 * 3600],
  ["hour", 3600],
  ["minute", 60],
  ["second", 1],
];

// English relative times, written out rather than with Intl.RelativeTimeFormat: the first
// formatter a page creates loads its locale data, ~80 ms on a loaded machine, right when the
// canvas renders its 50 cards. Same words as `new Intl.RelativeTimeFormat("en", { numeric: "auto" })`.
const NAMED: Partial<Record<Intl.RelativeTimeFormatUnit, [string, string]>> = {
  day: ["yesterday", "tomorrow"],
  month: ["last month", "next month"],
  year: ["last year", "next year"],
};

function relative(value: number, unit: Intl.RelativeTimeFormatUnit): string {
  const named = Math.abs(value) === 1 ? NAMED[unit] : undefined;
  if (named) return value < 0 ? named[0] : named[1];
  const n = Math.abs(value);
  const words = `${n} ${unit}${n === 1 ? "" : "s"}`;
  return value < 0 ? `${words} ago` : `in ${words}`;
}

/** "3 minutes ago", "just now"; `now` is injectable for tests. */
export function timeAgo(iso: string | null | undefined, now: number = Date.now()): string {
  if (!iso) return "—";
  const seconds = Math.round((new Date(iso).getTime() - now) / 1000);
  if (Math.abs(seconds) < 10) return "just now";
  for (const [unit, size] of UNITS) {
    if (Math.abs(seconds) >= size || unit === "second") {
      return relative(Math.round(seconds / size), unit);
    }
  }
  return "just now";
}

/** "1m 05s", "12s", "1h 02m" between two instants (`end` defaults to now). */
export function formatDuration(start?: string | null, end?: string | null, now = Date.now()): string {
  if (!start) return "—";
  const ms = (end ? new Date(end).getTime() : now) - new Date(start).getTime();
  if (!Number.isFinite(ms) || ms < 0) return "—";
  const total = Math.round(ms / 1000);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  if (h) return `${h}h ${String(m).padStart(2, "0")}m`;
  if (m) return `${m}m ${String(s).padStart(2, "0")}s`;
  return `${s}s`;
}

export function shortSha(sha?: string | null): string {
  return sha ? sha.slice(0, 7) : "";
}

export function formatBytes(mb: number): string {
  return mb >= 1024 ? `${(mb / 1024).toFixed(1)} GB` : `${Math.round(mb)} MB`;
}

/** Save text as a file (log download, .env export). */
export function downloadText(filename: string, text: string, type = "text/plain"): void {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

/** The log font (JetBrains Mono), regular and bold: `font` values for `document.fonts`. */
const MONO_FACES = ['400 12px "JetBrains Mono"', '700 12px "JetBrains Mono"'];

/** Whether the log font is loaded (true where the browser cannot tell, e.g. jsdom). */
export function monoFontReady(): boolean {
  if (typeof document === "undefined" || !document.fonts?.check) return true;
  return MONO_FACES.every((face) => document.fonts.check(face));
}

/**
 * Fetch the log font now, before any log line needs it: a font arriving while lines stream in
 * swaps every visible row and lays them out again in one long task. Resolves when loaded, or
 * after `timeoutMs` (then the fallback font is used: never wait on a font for longer).
 */
export function loadMonoFont(timeoutMs = 1500): Promise<void> {
  if (monoFontReady()) return Promise.resolve();
  const loaded = Promise.all(MONO_FACES.map((face) => document.fonts.load(face))).then(() => undefined);
  const timeout = new Promise<void>((resolve) => setTimeout(resolve, timeoutMs));
  return Promise.race([loaded, timeout]).catch(() => undefined);
}
