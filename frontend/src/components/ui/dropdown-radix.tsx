"use client";
import { DropdownMenu as M } from "radix-ui";
import * as React from "react";
import { cn } from "@/lib/utils";

// Radix' dropdown menu, styled; loaded by ./dropdown.tsx when needed.
export const Root = M.Root;
export const Trigger = M.Trigger;
export const Separator = () => <M.Separator className="my-1 h-px bg-white/10" />;
export const Label = ({ children }: { children: React.ReactNode }) => (
  <M.Label className="px-2 py-1.5 text-[11px] font-medium tracking-wide text-slate-400 uppercase">{children}</M.Label>
);

export function Content({ className, ...props }: React.ComponentProps<typeof M.Content>) {
  return (
    <M.Portal>
      <M.Content
        sideOffset={6}
        align="end"
        className={cn("card z-50 min-w-48 p-1 shadow-xl shadow-black/40", className)}
        {...props}
      />
    </M.Portal>
  );
}

export function Item({ className, danger, ...props }: React.ComponentProps<typeof M.Item> & { danger?: boolean }) {
  return (
    <M.Item
      className={cn(
        "flex cursor-pointer items-center gap-2 rounded-md px-2 py-1.5 text-sm text-slate-200 outline-none select-none data-[disabled]:opacity-40 data-[highlighted]:bg-white/10",
        danger && "text-red-300 data-[highlighted]:bg-red-500/15",
        className,
      )}
      {...props}
    />
  );
}
