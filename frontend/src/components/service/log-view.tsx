"use client";
import { useQueryClient } from "@tanstack/react-query";
import { ArrowDownToLine, Download, Pause, Play, Search } from "lucide-react";
import * as React from "react";
import { Button } from "@/components/ui/button";
import { copyText } from "@/components/ui/copy-button";
import { Input } from "@/components/ui/input";
import { Select } from "@/components/ui/select";
import type { Deployment, LogLine, Page } from "@/lib/api/types";
import { parseAnsi, styleToCss } from "@/lib/logs/ansi";
import { LogBuffer, parseLogMessage, type StoredLine } from "@/lib/logs/buffer";
import { keys } from "@/lib/queries";
import { toast } from "@/lib/toast";
import { cn, downloadText, loadMonoFont, monoFontReady } from "@/lib/utils";
import { connectSocket } from "@/lib/ws/socket";

export const ROW_HEIGHT = 20;
// New lines are shown in batches, at most every FLUSH_MS (nobody reads 100 000 lines a second;
// re-rendering and re-laying-out the view on every frame is what costs), and each batch is added
// in slices within a time budget, so a burst of history never blocks the page: the rest follows
// in the next batches.
const FLUSH_MS = 50;
const FLUSH_BUDGET_MS = 12;
const SLICE = 250;
const STREAMS = ["build", "stdout", "stderr", "system"] as const;
const STREAM_STYLE: Record<string, string> = {
  build: "text-purple-400",
  stdout: "text-slate-400",
  stderr: "text-red-400",
  system: "text-cyan-400",
};

const LogRow = React.memo(function LogRow({ line, showReplica }: { line: StoredLine; showReplica: boolean }) {
  const { spans } = parseAnsi(line.line);
  const time = line.ts.length >= 23 ? line.ts.slice(11, 23) : line.ts;
  return (
    <>
      <span className="w-[6.5rem] shrink-0 text-slate-400 select-none">{time}</span>
      <span className={cn("w-12 shrink-0 select-none", STREAM_STYLE[line.stream] ?? "text-slate-400")}>{line.stream}</span>
      {showReplica ? <span className="w-6 shrink-0 text-slate-400 select-none">{line.replica ?? ""}</span> : null}
      <span className={cn("whitespace-pre", line.stream === "stderr" ? "text-red-200" : "text-slate-200")}>
        {spans.map((s, i) => (
          <span key={i} style={styleToCss(s.style)}>
            {s.text}
          </span>
        ))}
      </span>
    </>
  );
});

export interface LogStreamState {
  buffer: LogBuffer;
  version: number;
  connected: boolean;
  ended: boolean;
  pending: number;
  paused: boolean;
  setPaused: (paused: boolean) => void;
  refilter: () => void;
}

/** Follow a deployment's logs over the WebSocket (history, then live; resumes with ?since=). */
export function useLogStream(deploymentId: string): LogStreamState {
  const queryClient = useQueryClient();
  const bufferRef = React.useRef<LogBuffer>(null as unknown as LogBuffer);
  bufferRef.current ??= new LogBuffer();
  // Lines received but not yet shown: a queue read from `headRef` on (no O(n) shifting).
  const pendingRef = React.useRef<LogLine[]>([]);
  const headRef = React.useRef(0);
  const lastIdRef = React.useRef<string | undefined>(undefined);
  const frameRef = React.useRef(0);
  const timerRef = React.useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  const pausedRef = React.useRef(false);
  const [version, setVersion] = React.useState(0);
  const [connected, setConnected] = React.useState(false);
  const [ended, setEnded] = React.useState(false);
  const [paused, setPausedState] = React.useState(false);

  const flush = React.useCallback(() => {
    frameRef.current = 0;
    clearTimeout(timerRef.current);
    timerRef.current = undefined;
    if (pausedRef.current) {
      setVersion((v) => v + 1); // update the "N new lines" count
      return;
    }
    const start = performance.now();
    const queue = pendingRef.current;
    let head = headRef.current;
    while (head < queue.length && performance.now() - start < FLUSH_BUDGET_MS) {
      bufferRef.current.append(queue.slice(head, head + SLICE));
      head += SLICE;
    }
    if (head >= queue.length) {
      pendingRef.current = [];
      head = 0;
    }
    headRef.current = head;
    setVersion((v) => v + 1);
    if (pendingRef.current.length) scheduleRef.current();
  }, []);

  // A batch waits for the next frame after at most FLUSH_MS, never more than one pending.
  const schedule = React.useCallback(() => {
    if (frameRef.current || timerRef.current !== undefined) return;
    timerRef.current = setTimeout(() => {
      frameRef.current = requestAnimationFrame(flush);
    }, FLUSH_MS);
  }, [flush]);
  const scheduleRef = React.useRef(schedule);
  scheduleRef.current = schedule;

  React.useEffect(() => {
    const buffer = bufferRef.current;
    buffer.clear();
    pendingRef.current = [];
    headRef.current = 0;
    lastIdRef.current = undefined;
    setEnded(false);
    const stop = connectSocket({
      url: () => `/api/v1/deployments/${deploymentId}/logs/ws${lastIdRef.current ? `?since=${encodeURIComponent(lastIdRef.current)}` : ""}`,
      finalOnNormalClose: true,
      onOpen: () => setConnected(true),
      onClose: (event) => {
        setConnected(false);
        if (event.code === 1000) setEnded(true);
      },
      onMessage: (data) => {
        const message = parseLogMessage(data);
        if (!message) return;
        if (message.type === "log") {
          pendingRef.current.push(message);
          lastIdRef.current = message.id;
          schedule();
        } else if (message.type === "logs") {
          if (!message.items.length) return;
          for (const line of message.items) pendingRef.current.push(line);
          lastIdRef.current = message.items[message.items.length - 1]?.id;
          schedule();
        } else if (message.type === "status") {
          const patch = { status: message.status, ...(message.status_reason !== undefined ? { status_reason: message.status_reason } : {}) } as Partial<Deployment>;
          queryClient.setQueryData<Deployment>(keys.deployment(deploymentId), (old) => (old ? { ...old, ...patch } : old));
          queryClient.setQueriesData<Page<Deployment>>({ queryKey: ["deployments"] }, (old) =>
            old ? { ...old, items: old.items.map((d) => (d.id === deploymentId ? { ...d, ...patch } : d)) } : old,
          );
        } else if (message.type === "error") {
          toast.error(message.title ?? "Log stream error", { description: message.detail });
        }
      },
    });
    return () => {
      stop();
      cancelAnimationFrame(frameRef.current);
      clearTimeout(timerRef.current);
      frameRef.current = 0;
      timerRef.current = undefined;
    };
  }, [deploymentId, schedule, queryClient]);

  const setPaused = React.useCallback(
    (value: boolean) => {
      pausedRef.current = value;
      setPausedState(value);
      if (!value) schedule();
    },
    [schedule],
  );
  const refilter = React.useCallback(() => setVersion((v) => v + 1), []);

  return { buffer: bufferRef.current, version, connected, ended, pending: pendingRef.current.length - headRef.current, paused, setPaused, refilter };
}

/**
 * Which rows to render: every row is ROW_HEIGHT tall, so the window is arithmetic on scrollTop —
 * O(1) per frame whether the buffer holds 100 or 200 000 lines (a measuring virtualiser walks
 * every row whenever the count changes, i.e. on every frame while logs stream).
 */
export function useRowWindow(scrollRef: React.RefObject<HTMLDivElement | null>, count: number, overscan = 20) {
  const [range, setRange] = React.useState({ top: 0, height: 800 });
  React.useEffect(() => {
    const el = scrollRef.current;
    if (!el) return;
    const update = () => setRange((r) => (r.top === el.scrollTop && r.height === el.clientHeight ? r : { top: el.scrollTop, height: el.clientHeight }));
    update();
    el.addEventListener("scroll", update, { passive: true });
    const observer = typeof ResizeObserver === "undefined" ? null : new ResizeObserver(update);
    observer?.observe(el);
    return () => {
      el.removeEventListener("scroll", update);
      observer?.disconnect();
    };
  }, [scrollRef, count > 0]);
  const first = Math.max(0, Math.floor(range.top / ROW_HEIGHT) - overscan);
  const last = Math.min(count, Math.ceil((range.top + range.height) / ROW_HEIGHT) + overscan);
  return { first, last, total: count * ROW_HEIGHT };
}

/** Lines are drawn once the log font is there (or given up on): never laid out twice. */
function useMonoFont(): boolean {
  const [ready, setReady] = React.useState(monoFontReady);
  React.useEffect(() => {
    if (ready) return;
    let live = true;
    void loadMonoFont().then(() => live && setReady(true));
    return () => {
      live = false;
    };
  }, [ready]);
  return ready;
}

export function LogView({ deploymentId, className }: { deploymentId: string; className?: string }) {
  const fontReady = useMonoFont();
  const stream = useLogStream(deploymentId);
  const { buffer } = stream;
  const scrollRef = React.useRef<HTMLDivElement>(null);
  const [follow, setFollow] = React.useState(true);
  const [search, setSearch] = React.useState("");
  const [streams, setStreams] = React.useState<ReadonlySet<string>>(new Set());
  const [replica, setReplica] = React.useState<number | null>(null);

  // Filtering is debounced while typing; it costs one pass over the buffer.
  React.useEffect(() => {
    const id = setTimeout(() => {
      buffer.setFilter({ search, streams, replica });
      stream.refilter();
    }, search ? 150 : 0);
    return () => clearTimeout(id);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [search, streams, replica, buffer]);

  const count = buffer.visible.length;
  const rows = useRowWindow(scrollRef, count);

  // Following: scroll to the end in the next frame's animation callback, not in the commit. Moving
  // the scroll position forces a layout of the new rows; done in the commit, that layout made the
  // batch's React task the page's longest (the CPU profile: most of its time); in the frame it is
  // the layout the frame does anyway, before anything is painted.
  React.useEffect(() => {
    if (!follow) return;
    const frame = requestAnimationFrame(() => {
      const el = scrollRef.current;
      if (el) el.scrollTop = el.scrollHeight;
    });
    return () => cancelAnimationFrame(frame);
  }, [stream.version, follow, count]);

  const onScroll = () => {
    const el = scrollRef.current;
    if (!el) return;
    const atBottom = el.scrollHeight - el.scrollTop - el.clientHeight < ROW_HEIGHT * 2;
    if (atBottom !== follow) setFollow(atBottom);
  };

  const showReplica = buffer.replicas.size > 1;
  const replicaKey = [...buffer.replicas].sort((a, b) => a - b).join(",");
  const toggleStream = React.useCallback(
    (s: string) =>
      setStreams((prev) => {
        const next = new Set(prev);
        if (next.has(s)) next.delete(s);
        else next.add(s);
        return next;
      }),
    [],
  );
  // The toolbar's actions read the current count through a ref: they stay the same functions, so
  // a batch of lines does not re-render the toolbar (only the rows and the footer change).
  const countRef = React.useRef(count);
  countRef.current = count;
  const onCopy = React.useCallback(async () => {
    if (await copyText(buffer.toText())) toast.success(`Copied ${countRef.current.toLocaleString()} lines`);
  }, [buffer]);
  const onDownload = React.useCallback(
    () => downloadText(`deployment-${deploymentId.slice(0, 8)}.log`, buffer.toText()),
    [buffer, deploymentId],
  );

  return (
    <div className={cn("flex min-h-0 flex-1 flex-col", className)} data-testid="log-view" data-lines={buffer.lines.length} data-visible={count}>
      <LogToolbar
        search={search}
        onSearch={setSearch}
        streams={streams}
        onToggleStream={toggleStream}
        replicaKey={replicaKey}
        replica={replica}
        onReplica={setReplica}
        paused={stream.paused}
        pending={stream.paused ? stream.pending : 0}
        onPause={stream.setPaused}
        hasLines={count > 0}
        onCopy={onCopy}
        onDownload={onDownload}
      />
      <div className="relative min-h-0 flex-1">
        <div
          ref={scrollRef}
          onScroll={onScroll}
          tabIndex={0}
          role="region"
          aria-label="Log lines"
          // Its own compositor layer (will-change): a batch of lines repaints this list only,
          // not the whole page under the panel (the trace showed #document repainted per batch).
          // No font features: the body's Inter ones (cv11, ss01) only slow shaping monospace text.
          className="absolute inset-0 overflow-auto bg-slate-950/70 font-mono text-xs leading-5 [contain:strict] [font-feature-settings:normal] will-change-transform"
          data-testid="log-scroll"
        >
          {count === 0 || !fontReady ? (
            <p className="p-5 font-sans text-sm text-slate-400">
              {buffer.lines.length && !fontReady
                ? "Loading…"
                : buffer.lines.length
                ? "No line matches the filters."
                : stream.connected
                  ? "Waiting for output… Build logs appear here as soon as the build starts."
                  : stream.ended
                    ? "This deployment has no logs."
                    : "Connecting to the log stream…"}
            </p>
          ) : (
            <div style={{ height: rows.total, width: `max(100%, ${Math.min(buffer.maxLength, 4000) + 26}ch)` }} className="relative">
              {/* One translated block of rows in normal flow, each row keyed by its slot in the
                  window: while lines stream in (or the list scrolls) the same DOM nodes get new
                  text, instead of every row being removed and re-created, re-styled and re-laid
                  out on every batch. */}
              <div className="absolute top-0 left-0 w-full" style={{ transform: `translateY(${rows.first * ROW_HEIGHT}px)` }}>
                {Array.from({ length: rows.last - rows.first }, (_, k) => {
                  const line = buffer.lines[buffer.visible[rows.first + k] ?? -1];
                  if (!line) return null;
                  return (
                    <div
                      key={k}
                      className="flex w-full gap-3 px-4 hover:bg-white/[0.03] sm:px-5"
                      style={{ height: ROW_HEIGHT }}
                      data-testid="log-line"
                    >
                      <LogRow line={line} showReplica={showReplica} />
                    </div>
                  );
                })}
              </div>
            </div>
          )}
        </div>
        {!follow && count ? (
          <Button size="sm" className="absolute right-5 bottom-4 shadow-xl" onClick={() => setFollow(true)}>
            <ArrowDownToLine className="h-3.5 w-3.5" /> Follow
          </Button>
        ) : null}
      </div>
      <LogFooter count={count} total={buffer.lines.length} connected={stream.connected} ended={stream.ended} />
    </div>
  );
}

/** Search, stream and replica filters, pause, copy, download: re-rendered when one of them changes. */
const LogToolbar = React.memo(function LogToolbar({
  search,
  onSearch,
  streams,
  onToggleStream,
  replicaKey,
  replica,
  onReplica,
  paused,
  pending,
  onPause,
  hasLines,
  onCopy,
  onDownload,
}: {
  search: string;
  onSearch: (value: string) => void;
  streams: ReadonlySet<string>;
  onToggleStream: (stream: string) => void;
  /** The replicas seen so far, sorted, comma-separated. */
  replicaKey: string;
  replica: number | null;
  onReplica: (replica: number | null) => void;
  paused: boolean;
  /** Lines held while paused. */
  pending: number;
  onPause: (paused: boolean) => void;
  hasLines: boolean;
  onCopy: () => Promise<void>;
  onDownload: () => void;
}) {
  const replicas = replicaKey ? replicaKey.split(",").map(Number) : [];
  return (
    <div className="flex flex-wrap items-center gap-2 border-b border-white/10 px-4 py-2 sm:px-5">
      <div className="relative min-w-[10rem] flex-1">
        <Search className="pointer-events-none absolute top-1/2 left-2.5 h-3.5 w-3.5 -translate-y-1/2 text-slate-500" aria-hidden />
        <Input
          value={search}
          onChange={(e) => onSearch(e.target.value)}
          placeholder="Search logs"
          aria-label="Search logs"
          className="h-8 pl-8 text-xs"
          type="search"
        />
      </div>
      <div role="group" aria-label="Streams" className="flex items-center gap-1">
        {STREAMS.map((s) => (
          <button
            key={s}
            type="button"
            aria-pressed={streams.has(s)}
            onClick={() => onToggleStream(s)}
            className={cn(
              "h-8 rounded-md border px-2 text-xs",
              streams.has(s) ? "border-violet-500/60 bg-violet-600/20 text-white" : "border-white/10 text-slate-400 hover:text-white",
            )}
          >
            {s}
          </button>
        ))}
      </div>
      {replicas.length > 1 ? (
        <Select aria-label="Replica" value={replica ?? ""} onChange={(e) => onReplica(e.target.value === "" ? null : Number(e.target.value))} className="h-8 w-32 text-xs">
          <option value="">All replicas</option>
          {replicas.map((r) => (
            <option key={r} value={r}>
              Replica {r}
            </option>
          ))}
        </Select>
      ) : null}
      <div className="ml-auto flex items-center gap-1">
        <Button
          variant="ghost"
          size="sm"
          onClick={() => onPause(!paused)}
          aria-pressed={paused}
          title={paused ? "Resume: show new lines" : "Pause: hold new lines"}
        >
          {paused ? <Play className="h-3.5 w-3.5" /> : <Pause className="h-3.5 w-3.5" />}
          {paused ? `Resume${pending ? ` (${pending.toLocaleString()} new)` : ""}` : "Pause"}
        </Button>
        <Button
          variant="ghost"
          size="sm"
          onClick={() => void onCopy()}
          disabled={!hasLines}
        >
          Copy
        </Button>
        <Button variant="ghost" size="icon" aria-label="Download logs" title="Download logs" onClick={onDownload} disabled={!hasLines}>
          <Download className="h-4 w-4" />
        </Button>
      </div>
    </div>
  );
});

/** How many lines, and the stream's state (announced politely to screen readers). */
const LogFooter = React.memo(function LogFooter({ count, total, connected, ended }: { count: number; total: number; connected: boolean; ended: boolean }) {
  return (
    <div className="flex items-center justify-between border-t border-white/10 px-4 py-1.5 text-[11px] text-slate-400 sm:px-5" aria-live="polite">
      <span>
        {count.toLocaleString()} {count === total ? "lines" : `of ${total.toLocaleString()} lines`}
      </span>
      <span className="flex items-center gap-1.5">
        <span className={cn("h-1.5 w-1.5 rounded-full", connected ? "bg-emerald-400" : ended ? "bg-slate-500" : "bg-amber-400 animate-status")} aria-hidden />
        {connected ? "Live" : ended ? "Stream ended" : "Connecting"}
      </span>
    </div>
  );
});
