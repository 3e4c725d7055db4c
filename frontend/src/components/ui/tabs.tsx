"use client";
import { Tabs as T } from "radix-ui";
import * as React from "react";
import { cn } from "@/lib/utils";

export const Tabs = T.Root;
export const TabsContent = T.Content;

export function TabsList({ className, ...props }: React.ComponentProps<typeof T.List>) {
  return <T.List className={cn("flex gap-1 overflow-x-auto border-b border-white/10 px-3 sm:px-5", className)} {...props} />;
}

export function TabsTrigger({ className, ...props }: React.ComponentProps<typeof T.Trigger>) {
  return (
    <T.Trigger
      className={cn(
        "-mb-px flex items-center gap-1.5 border-b-2 border-transparent px-3 py-2.5 text-sm text-slate-400 transition-colors hover:text-slate-100 data-[state=active]:border-violet-500 data-[state=active]:text-white",
        className,
      )}
      {...props}
    />
  );
}
