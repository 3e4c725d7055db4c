import { describe, expect, it } from "vitest";
import type { LogLine } from "@/lib/api/types";
import { LogBuffer, formatLine, parseLogMessage } from "./buffer";

const line = (n: number, extra: Partial<LogLine> = {}): LogLine => ({
  id: `${n}-0`,
  ts: `2026-01-01T00:00:${String(n % 60).padStart(2, "0")}Z`,
  stream: "stdout",
  replica: 0,
  line: `line ${n}`,
  ...extra,
});

describe("LogBuffer", () => {
  it("appends lines and skips ids it has seen (reconnect overlap)", () => {
    const b = new LogBuffer();
    expect(b.append([line(1), line(2)])).toBe(2);
    expect(b.append([line(2), line(3)])).toBe(1);
    expect(b.lines.map((l) => l.id)).toEqual(["1-0", "2-0", "3-0"]);
    expect(b.lastId).toBe("3-0");
    expect(b.visible).toEqual([0, 1, 2]);
  });

  it("filters by search (ANSI-insensitive, case-insensitive), stream and replica", () => {
    const b = new LogBuffer();
    b.append([
      line(1, { line: "\x1b[32mServer READY\x1b[0m" }),
      line(2, { stream: "stderr", line: "boom" }),
      line(3, { replica: 1, line: "ready on 1" }),
      line(4, { stream: "build", replica: null, line: "npm ci" }),
    ]);
    b.setFilter({ search: "ready", streams: new Set(), replica: null });
    expect(b.visible).toEqual([0, 2]);
    b.setFilter({ search: "", streams: new Set(["stderr", "build"]), replica: null });
    expect(b.visible).toEqual([1, 3]);
    b.setFilter({ search: "", streams: new Set(), replica: 1 });
    expect(b.visible).toEqual([2]);
    // New lines are filtered as they arrive.
    b.append([line(5, { replica: 1 }), line(6, { replica: 0 })]);
    expect(b.visible).toEqual([2, 4]);
    expect([...b.replicas].sort()).toEqual([0, 1]);
    expect(b.streams.has("build")).toBe(true);
  });

  it("stays bounded, dropping the oldest lines", () => {
    const b = new LogBuffer(1000);
    b.append(Array.from({ length: 1500 }, (_, i) => line(i)));
    expect(b.lines).toHaveLength(1000);
    expect(b.lines[0]?.id).toBe("500-0");
    expect(b.visible).toHaveLength(1000);
    // An id dropped from memory may come back (it is no longer known).
    expect(b.append([line(10)])).toBe(1);
  });

  it("holds and filters 100 000 lines (timing is bench/dashboard.py's job)", () => {
    const b = new LogBuffer();
    for (let start = 0; start < 100_000; start += 10_000) {
      b.append(Array.from({ length: 10_000 }, (_, k) => line(start + k, { line: `\x1b[36mGET /items/${start + k}\x1b[0m 200` })));
    }
    expect(b.lines).toHaveLength(100_000);
    b.setFilter({ search: "/items/99999", streams: new Set(), replica: null });
    expect(b.visible).toEqual([99_999]);
  });

  it("renders plain text for copy and download", () => {
    const b = new LogBuffer();
    b.append([line(1, { line: "\x1b[1mhi\x1b[0m" }), line(2, { stream: "build", replica: null, line: "x" })]);
    expect(b.toText()).toBe("2026-01-01T00:00:01Z [stdout/0] hi\n2026-01-01T00:00:02Z [build] x");
    expect(formatLine(line(3))).toContain("[stdout/0] line 3");
  });
});

describe("parseLogMessage", () => {
  it("parses log, status and ping messages", () => {
    expect(parseLogMessage(JSON.stringify({ type: "log", id: "1-0", ts: "t", stream: "stderr", replica: 2, line: "x" }))).toEqual({
      type: "log",
      id: "1-0",
      ts: "t",
      stream: "stderr",
      replica: 2,
      line: "x",
    });
    expect(parseLogMessage('{"type":"status","status":"ACTIVE"}')).toMatchObject({ type: "status", status: "ACTIVE" });
    expect(parseLogMessage('{"type":"ping"}')).toEqual({ type: "ping" });
  });

  it("parses batched lines, dropping malformed items", () => {
    const m = parseLogMessage(JSON.stringify({ type: "logs", items: [{ id: "1-0", ts: "t", stream: "build", replica: null, line: "a" }, { nope: 1 }, { id: "2-0", ts: "t", stream: "stdout", replica: 0, line: "b" }] }));
    expect(m).toEqual({
      type: "logs",
      items: [
        { id: "1-0", ts: "t", stream: "build", replica: null, line: "a" },
        { id: "2-0", ts: "t", stream: "stdout", replica: 0, line: "b" },
      ],
    });
    expect(parseLogMessage('{"type":"logs","items":"x"}')).toBeNull();
  });

  it("returns null for anything malformed", () => {
    expect(parseLogMessage("not json")).toBeNull();
    expect(parseLogMessage('{"type":"log"}')).toBeNull();
    expect(parseLogMessage('{"type":"mystery"}')).toBeNull();
    expect(parseLogMessage(42)).toBeNull();
    expect(parseLogMessage("null")).toBeNull();
  });

  it("normalises a missing replica to null", () => {
    const m = parseLogMessage('{"type":"log","id":"1","ts":"t","stream":"build","line":"x"}');
    expect(m).toMatchObject({ replica: null });
  });
});
