import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { isSettled, markSettled, resetSettled, SETTLE_FALLBACK_MS, whenSettled } from "./settle";

beforeEach(() => {
  resetSettled();
  vi.useFakeTimers();
});
afterEach(() => vi.useRealTimers());

describe("settle", () => {
  it("runs waiting work in an idle moment after the page says it has settled", () => {
    const work = vi.fn();
    whenSettled(work);
    vi.advanceTimersByTime(SETTLE_FALLBACK_MS / 2);
    expect(work).not.toHaveBeenCalled();
    markSettled();
    expect(isSettled()).toBe(true);
    vi.advanceTimersByTime(1_000);
    expect(work).toHaveBeenCalledOnce();
  });

  it("a page that never says so is settled after the fallback", () => {
    const work = vi.fn();
    whenSettled(work);
    vi.advanceTimersByTime(SETTLE_FALLBACK_MS + 1_000);
    expect(work).toHaveBeenCalledOnce();
    expect(isSettled()).toBe(true);
  });

  it("once settled, later work only waits for idle; cancelled work never runs", () => {
    markSettled();
    const later = vi.fn();
    const cancelled = vi.fn();
    whenSettled(later);
    whenSettled(cancelled)();
    vi.advanceTimersByTime(1_000);
    expect(later).toHaveBeenCalledOnce();
    expect(cancelled).not.toHaveBeenCalled();
  });
});
