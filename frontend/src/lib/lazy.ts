"use client";
import * as React from "react";
import { whenSettled } from "@/lib/settle";

/**
 * A module loaded on first use, or once the page has settled (lib/settle.ts), whichever comes
 * first: what the first render does not need (Radix' menus and tooltips and their positioning
 * engine) stays out of the bundles evaluated before the page can show its content.
 */
export interface LazyModule<T> {
  /** The module, if loaded. */
  current(): T | null;
  /** Loads it (once; again after a failure). */
  load(): Promise<T>;
  /** Hook: the module once loaded (re-renders then); asks for it when the page settles. */
  use(): T | null;
}

export function lazyModule<T>(loader: () => Promise<T>): LazyModule<T> {
  let value: T | null = null;
  let pending: Promise<T> | null = null;
  const listeners = new Set<() => void>();
  const subscribe = (listener: () => void) => {
    listeners.add(listener);
    return () => void listeners.delete(listener);
  };
  const load = (): Promise<T> =>
    (pending ??= loader().then(
      (module) => {
        value = module;
        for (const listener of [...listeners]) listener();
        return module;
      },
      (error: unknown) => {
        pending = null;
        throw error;
      },
    ));
  function use(): T | null {
    const module = React.useSyncExternalStore(subscribe, () => value, () => null);
    React.useEffect(() => (module ? undefined : whenSettled(() => void load().catch(() => {}))), [module]);
    return module;
  }
  return { current: () => value, load, use };
}

/**
 * When a lazily loaded component replaces its stand-in, the element under it is a new DOM node:
 * if the stand-in had the focus, the replacement gets it. `ref` goes on both.
 */
export function useFocusCarry(swapped: boolean): React.RefCallback<HTMLElement> {
  const node = React.useRef<HTMLElement | null>(null);
  const carry = React.useRef(false);
  const wasSwapped = React.useRef(swapped);
  if (swapped && !wasSwapped.current) {
    // Rendering the replacement: the stand-in is still in the document.
    wasSwapped.current = true;
    carry.current = !!node.current && typeof document !== "undefined" && document.activeElement === node.current;
  }
  React.useLayoutEffect(() => {
    if (swapped && carry.current) {
      carry.current = false;
      node.current?.focus();
    }
  }, [swapped]);
  return React.useCallback((element: HTMLElement | null) => {
    node.current = element;
  }, []);
}

/** Both refs: ours and the one the element already had (React 19: a prop). */
export function mergeRefs<T>(...refs: (React.Ref<T> | undefined)[]): React.RefCallback<T> {
  return (value: T | null) => {
    for (const ref of refs) {
      if (typeof ref === "function") ref(value);
      else if (ref) (ref as React.RefObject<T | null>).current = value;
    }
  };
}
