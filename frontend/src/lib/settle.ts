"use client";
import * as React from "react";

/**
 * "The page has shown what it is for" (the canvas: its cards, with their data). Work that can wait
 * — Next's route prefetches of the header's links, loading the toast library — waits for it, then
 * for an idle moment, instead of competing with the first render on a small machine. A page that
 * never says so is treated as settled SETTLE_FALLBACK_MS after the first wait began.
 */
export const SETTLE_FALLBACK_MS = 2000;
/** Longest wait for an idle moment once settled. */
export const IDLE_TIMEOUT_MS = 1000;

let settled = false;
const listeners = new Set<() => void>();

export function markSettled(): void {
  if (settled) return;
  settled = true;
  const waiting = [...listeners];
  listeners.clear();
  for (const listener of waiting) listener();
}

export function isSettled(): boolean {
  return settled;
}

/** For tests: back to a fresh page. */
export function resetSettled(): void {
  settled = false;
  listeners.clear();
}

function onIdle(fn: () => void): () => void {
  if (typeof window.requestIdleCallback === "function") {
    const id = window.requestIdleCallback(fn, { timeout: IDLE_TIMEOUT_MS });
    return () => window.cancelIdleCallback(id);
  }
  const id = window.setTimeout(fn, 1);
  return () => window.clearTimeout(id);
}

/** Runs `fn` in an idle moment once the page has settled (or the fallback passed). Returns a cancel. */
export function whenSettled(fn: () => void, fallbackMs: number = SETTLE_FALLBACK_MS): () => void {
  let cancelIdle: (() => void) | undefined;
  let done = false;
  const go = () => {
    if (done) return;
    done = true;
    listeners.delete(go);
    window.clearTimeout(timer);
    cancelIdle = onIdle(fn);
  };
  const timer = settled ? undefined : window.setTimeout(markSettled, fallbackMs);
  if (settled) go();
  else listeners.add(go);
  return () => {
    done = true;
    listeners.delete(go);
    window.clearTimeout(timer);
    cancelIdle?.();
  };
}

/** False until the page has settled and the main thread had an idle moment. */
export function useSettled(): boolean {
  const [ready, setReady] = React.useState(false);
  React.useEffect(() => (ready ? undefined : whenSettled(() => setReady(true))), [ready]);
  return ready;
}
