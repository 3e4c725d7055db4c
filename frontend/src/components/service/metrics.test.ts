import { describe, expect, it } from "vitest";
import { toRows } from "./metrics-tab";

describe("toRows", () => {
  it("reads the API's ServiceMetricsPublic (index, at, cpu_percent, memory_bytes)", () => {
    const { rows, replicas } = toRows(
      {
        replicas: [{ index: 2, restarts: 0, points: [{ at: "2026-01-01T00:00:00Z", cpu_percent: 12.5, memory_bytes: 104857600 }] }],
      },
      "memory",
    );
    expect(replicas).toEqual([2]);
    expect(rows).toEqual([{ t: Date.parse("2026-01-01T00:00:00Z"), r2: 100 }]);
    expect(toRows({ replicas: [{ index: 0, points: [{ at: "2026-01-01T00:00:00Z", cpu_percent: 7 }] }] }, "cpu").rows[0]).toMatchObject({ r0: 7 });
  });

  it("merges replica series into rows by time", () => {
    const { rows, replicas } = toRows(
      {
        replicas: [
          { replica: 0, points: [{ ts: "2026-01-01T00:00:10Z", cpu: 5, memory_mb: 100 }, { ts: "2026-01-01T00:00:00Z", cpu: 3, memory_mb: 90 }] },
          { replica: 1, points: [{ ts: "2026-01-01T00:00:10Z", cpu: 7, memory_bytes: 209715200 }] },
        ],
      },
      "memory",
    );
    expect(replicas).toEqual([0, 1]);
    expect(rows).toEqual([
      { t: Date.parse("2026-01-01T00:00:00Z"), r0: 90 },
      { t: Date.parse("2026-01-01T00:00:10Z"), r0: 100, r1: 200 },
    ]);
  });
});
