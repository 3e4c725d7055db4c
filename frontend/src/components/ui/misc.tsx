import * as React from "react";
import { cn } from "@/lib/utils";

export function Skeleton({ className }: { className?: string }) {
  return <div className={cn("animate-pulse rounded-md bg-white/5", className)} aria-hidden />;
}

export function EmptyState({
  icon,
  title,
  children,
  action,
  className,
}: {
  icon?: React.ReactNode;
  title: string;
  children?: React.ReactNode;
  action?: React.ReactNode;
  className?: string;
}) {
  return (
    <div className={cn("flex flex-col items-center justify-center gap-3 rounded-xl border border-dashed border-white/10 px-6 py-12 text-center", className)}>
      {icon ? <div className="rounded-full bg-gradient-to-br from-indigo-600/30 to-violet-600/30 p-3 text-cyan-300">{icon}</div> : null}
      <h3 className="text-sm font-semibold text-white">{title}</h3>
      {children ? <div className="max-w-md text-sm text-slate-400">{children}</div> : null}
      {action}
    </div>
  );
}

export function ErrorState({ error, retry }: { error: unknown; retry?: () => void }) {
  const message = error instanceof Error ? error.message : "Something went wrong";
  return (
    <div role="alert" className="rounded-xl border border-red-500/30 bg-red-500/5 p-4 text-sm text-red-200">
      <p>{message}</p>
      {retry ? (
        <button type="button" onClick={retry} className="mt-2 text-xs font-medium text-red-100 underline underline-offset-2">
          Try again
        </button>
      ) : null}
    </div>
  );
}

export function Kbd({ children }: { children: React.ReactNode }) {
  return <kbd className="rounded border border-white/15 bg-white/5 px-1 font-mono text-[10px] text-slate-400">{children}</kbd>;
}
