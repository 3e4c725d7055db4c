import * as React from "react";
import { cn } from "@/lib/utils";

const TONES = {
  neutral: "border-white/10 bg-white/5 text-slate-300",
  green: "border-emerald-400/30 bg-emerald-400/10 text-emerald-300",
  cyan: "border-cyan-400/30 bg-cyan-400/10 text-cyan-300",
  purple: "border-purple-500/30 bg-purple-500/10 text-purple-300",
  amber: "border-amber-400/30 bg-amber-400/10 text-amber-300",
  red: "border-red-500/30 bg-red-500/10 text-red-300",
} as const;
export type Tone = keyof typeof TONES;

export function Badge({ tone = "neutral", className, ...props }: React.HTMLAttributes<HTMLSpanElement> & { tone?: Tone }) {
  return (
    <span
      className={cn("inline-flex items-center gap-1 rounded-md border px-1.5 py-0.5 text-[11px] font-medium", TONES[tone], className)}
      {...props}
    />
  );
}
