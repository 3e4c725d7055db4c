"use client";
import { Tooltip as T } from "radix-ui";
import * as React from "react";

export const TooltipProvider = T.Provider;

export function Tooltip({ content, children }: { content: React.ReactNode; children: React.ReactElement }) {
  return (
    <T.Root delayDuration={300}>
      <T.Trigger asChild>{children}</T.Trigger>
      <T.Portal>
        <T.Content sideOffset={6} className="z-50 rounded-md border border-white/10 bg-slate-900 px-2 py-1 text-xs text-slate-200 shadow-lg">
          {content}
        </T.Content>
      </T.Portal>
    </T.Root>
  );
}
