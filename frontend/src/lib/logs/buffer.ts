/**
 * The log view's model: lines in arrival order, deduplicated by id (a reconnect with `since` may
 * repeat the boundary line), bounded in memory, with an incrementally maintained list of the
 * indices that pass the current filter — so 100 000 lines filter once, and every new batch only
 * costs its own size.
 */
import type { LogLine } from "@/lib/api/types";
import { stripAnsi } from "./ansi";

export interface StoredLine extends LogLine {
  /**
   * The line without escape sequences, lower-cased: what search compares against. Made on the
   * first search, not on arrival: 100 000 streamed lines would otherwise be 100 000 more strings
   * for the garbage collector, for a search that may never come.
   */
  haystack?: string;
}

export interface LogFilter {
  search: string;
  /** Streams to show; empty = all. */
  streams: ReadonlySet<string>;
  /** A replica index, or null for all. */
  replica: number | null;
}

export const NO_FILTER: LogFilter = { search: "", streams: new Set(), replica: null };

export function isFiltering(filter: LogFilter): boolean {
  return filter.search.trim() !== "" || filter.streams.size > 0 || filter.replica !== null;
}

export function lineMatches(line: StoredLine, filter: LogFilter): boolean {
  if (filter.streams.size && !filter.streams.has(line.stream)) return false;
  if (filter.replica !== null && line.replica !== filter.replica) return false;
  const needle = filter.search.trim().toLowerCase();
  if (!needle) return true;
  line.haystack ??= stripAnsi(line.line).toLowerCase();
  return line.haystack.includes(needle);
}

export class LogBuffer {
  readonly maxLines: number;
  lines: StoredLine[] = [];
  /** Indices into `lines` that pass `filter`, ascending. */
  visible: number[] = [];
  replicas = new Set<number>();
  streams = new Set<string>();
  lastId: string | undefined;
  /** The longest line seen, in characters (the view's scroll width). */
  maxLength = 0;
  private ids = new Set<string>();
  private filter: LogFilter = NO_FILTER;

  constructor(maxLines = 200_000) {
    this.maxLines = maxLines;
  }

  /** Add a batch; returns how many lines were new. */
  append(batch: readonly LogLine[]): number {
    let added = 0;
    const start = this.lines.length;
    for (const raw of batch) {
      if (this.ids.has(raw.id)) continue;
      this.ids.add(raw.id);
      const line: StoredLine = { ...raw };
      this.lines.push(line);
      const length = stripAnsi(raw.line).length;
      if (length > this.maxLength) this.maxLength = length;
      if (typeof line.replica === "number") this.replicas.add(line.replica);
      this.streams.add(line.stream);
      this.lastId = raw.id;
      added++;
    }
    if (!added) return 0;
    if (this.lines.length > this.maxLines) {
      const drop = this.lines.length - this.maxLines;
      for (const gone of this.lines.slice(0, drop)) this.ids.delete(gone.id);
      this.lines = this.lines.slice(drop);
      this.refilter();
      return added;
    }
    for (let i = start; i < this.lines.length; i++) {
      const line = this.lines[i];
      if (line && lineMatches(line, this.filter)) this.visible.push(i);
    }
    return added;
  }

  setFilter(filter: LogFilter): void {
    this.filter = filter;
    this.refilter();
  }

  private refilter(): void {
    if (!isFiltering(this.filter)) {
      this.visible = Array.from({ length: this.lines.length }, (_, i) => i);
      return;
    }
    const out: number[] = [];
    for (let i = 0; i < this.lines.length; i++) {
      const line = this.lines[i];
      if (line && lineMatches(line, this.filter)) out.push(i);
    }
    this.visible = out;
  }

  clear(): void {
    this.lines = [];
    this.visible = [];
    this.ids.clear();
    this.replicas.clear();
    this.streams.clear();
    this.lastId = undefined;
    this.maxLength = 0;
  }

  /** Plain text of the visible lines, as a download or a copy would have them. */
  toText(indices: readonly number[] = this.visible): string {
    return indices
      .map((i) => this.lines[i])
      .filter((l): l is StoredLine => !!l)
      .map(formatLine)
      .join("\n");
  }
}

export function formatLine(line: LogLine): string {
  const where = typeof line.replica === "number" ? `${line.stream}/${line.replica}` : line.stream;
  return `${line.ts} [${where}] ${stripAnsi(line.line)}`;
}

// WebSocket messages --------------------------------------------------------------------------

export type LogSocketMessage =
  | ({ type: "log" } & LogLine)
  | { type: "logs"; items: LogLine[] }
  | { type: "status"; status: string; status_reason?: string | null; deployment_id?: string; [k: string]: unknown }
  | { type: "ping" }
  | { type: "error"; detail?: string; title?: string };

function toLogLine(m: Record<string, unknown>): LogLine | null {
  if (typeof m.id !== "string" || typeof m.line !== "string") return null;
  return {
    id: m.id,
    ts: typeof m.ts === "string" ? m.ts : String(m.ts ?? ""),
    stream: typeof m.stream === "string" ? m.stream : "stdout",
    replica: typeof m.replica === "number" ? m.replica : m.replica == null || m.replica === "" ? null : Number(m.replica),
    line: m.line,
  };
}

/**
 * Parse one WebSocket frame; anything unexpected is null (and ignored), never a crash.
 * Lines come one per frame (`{"type": "log", …}`, API.md) or batched
 * (`{"type": "logs", "items": [...]}`, what the API sends: one frame per batch).
 */
export function parseLogMessage(data: unknown): LogSocketMessage | null {
  if (typeof data !== "string") return null;
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch {
    return null;
  }
  if (!value || typeof value !== "object") return null;
  const m = value as Record<string, unknown>;
  switch (m.type) {
    case "log": {
      const line = toLogLine(m);
      return line ? { type: "log", ...line } : null;
    }
    case "logs": {
      if (!Array.isArray(m.items)) return null;
      const items: LogLine[] = [];
      for (const item of m.items) {
        const line = item && typeof item === "object" ? toLogLine(item as Record<string, unknown>) : null;
        if (line) items.push(line);
      }
      return { type: "logs", items };
    }
    case "status":
      return typeof m.status === "string" ? (m as LogSocketMessage) : null;
    case "ping":
      return { type: "ping" };
    case "error":
      return m as LogSocketMessage;
    default:
      return null;
  }
}
