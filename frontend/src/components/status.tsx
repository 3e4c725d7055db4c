import { cn } from "@/lib/utils";
import { Badge, type Tone } from "@/components/ui/badge";

const TONE: Record<string, Tone> = {
  ACTIVE: "green",
  QUEUED: "neutral",
  BUILDING: "cyan",
  DEPLOYING: "purple",
  FAILED: "red",
  CRASHED: "red",
  CANCELLED: "neutral",
  REMOVED: "neutral",
};
const DOT: Record<string, string> = {
  ACTIVE: "bg-emerald-400 shadow-[0_0_8px] shadow-emerald-400/60",
  QUEUED: "bg-slate-400",
  BUILDING: "bg-cyan-400 animate-status",
  DEPLOYING: "bg-purple-500 animate-status",
  FAILED: "bg-red-500",
  CRASHED: "bg-red-500",
  CANCELLED: "bg-slate-600",
  REMOVED: "bg-slate-600",
};
const LABEL: Record<string, string> = {
  ACTIVE: "Active",
  QUEUED: "Queued",
  BUILDING: "Building",
  DEPLOYING: "Deploying",
  FAILED: "Failed",
  CRASHED: "Crashed",
  CANCELLED: "Cancelled",
  REMOVED: "Removed",
};

export function statusLabel(status: string | undefined | null): string {
  return status ? (LABEL[status] ?? status) : "Not deployed";
}

export function StatusDot({ status, className }: { status: string | undefined | null; className?: string }) {
  return (
    <span
      role="img"
      aria-label={statusLabel(status)}
      title={statusLabel(status)}
      className={cn("inline-block h-2 w-2 shrink-0 rounded-full", status ? DOT[status] ?? "bg-slate-500" : "bg-slate-700 ring-1 ring-slate-500", className)}
    />
  );
}

export function StatusBadge({ status }: { status: string }) {
  return (
    <Badge tone={TONE[status] ?? "neutral"} data-status={status}>
      <StatusDot status={status} className="h-1.5 w-1.5" />
      {statusLabel(status)}
    </Badge>
  );
}
