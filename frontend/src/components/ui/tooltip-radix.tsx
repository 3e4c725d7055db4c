"use client";
import { Tooltip as T } from "radix-ui";
import * as React from "react";

/** Radix' tooltip (loaded by ./tooltip.tsx when needed), with its provider: 300 ms delay. */
export function RadixTooltip({
  content,
  children,
  triggerRef,
}: {
  content: React.ReactNode;
  children: React.ReactElement;
  triggerRef: React.Ref<HTMLElement>;
}) {
  return (
    <T.Provider delayDuration={300}>
      <T.Root delayDuration={300}>
        <T.Trigger asChild ref={triggerRef as React.Ref<HTMLButtonElement>}>
          {children}
        </T.Trigger>
        <T.Portal>
          <T.Content sideOffset={6} className="z-50 rounded-md border border-white/10 bg-slate-900 px-2 py-1 text-xs text-slate-200 shadow-lg">
            {content}
          </T.Content>
        </T.Portal>
      </T.Root>
    </T.Provider>
  );
}
