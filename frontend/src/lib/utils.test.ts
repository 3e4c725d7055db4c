import { describe, expect, it } from "vitest";
import { timeAgo } from "./utils";

describe("timeAgo", () => {
  const now = Date.parse("2026-11-22T12:00:00Z");
  const rtf = new Intl.RelativeTimeFormat("en", { numeric: "auto" });

  it("says what Intl.RelativeTimeFormat('en', numeric: auto) says, without creating one", () => {
    const units: [Intl.RelativeTimeFormatUnit, number][] = [
      ["second", 1],
      ["minute", 60],
      ["hour", 3600],
      ["day", 86_400],
      ["month", 30 * 86_400],
      ["year", 365 * 86_400],
    ];
    for (const [unit, size] of units) {
      for (const n of [-11, -2, -1, 1, 2, 11]) {
        const seconds = n * size;
        if (Math.abs(seconds) < 10) continue;
        // The largest unit that fits is the one used: only compare where that is `unit`.
        const next = units[units.findIndex(([u]) => u === unit) + 1];
        if (next && Math.abs(seconds) >= next[1]) continue;
        const iso = new Date(now + seconds * 1000).toISOString();
        expect(timeAgo(iso, now)).toBe(rtf.format(n, unit));
      }
    }
  });

  it("rounds to the largest unit, and has words for nothing and for now", () => {
    expect(timeAgo(null, now)).toBe("—");
    expect(timeAgo(new Date(now - 3_000).toISOString(), now)).toBe("just now");
    expect(timeAgo(new Date(now - 130 * 60_000).toISOString(), now)).toBe("2 hours ago");
    expect(timeAgo(new Date(now + 5 * 60_000).toISOString(), now)).toBe("in 5 minutes");
  });
});
