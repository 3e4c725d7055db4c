"use client";
import { useQuery } from "@tanstack/react-query";
import { Activity } from "lucide-react";
import * as React from "react";
import { CartesianGrid, Legend, Line, LineChart, ResponsiveContainer, Tooltip, XAxis, YAxis } from "recharts";
import { Card, CardHeader } from "@/components/ui/card";
import { EmptyState, ErrorState, Skeleton } from "@/components/ui/misc";
import { api, type Metrics, type MetricsWindow } from "@/lib/api";
import { keys } from "@/lib/queries";
import { cn } from "@/lib/utils";

const WINDOWS: MetricsWindow[] = ["1h", "6h", "24h"];
const COLORS = ["#22d3ee", "#a855f7", "#818cf8", "#34d399", "#f472b6", "#facc15"];

type Row = { t: number } & Record<string, number | null>;

/** Per-replica series → one row per timestamp with a column per replica (what recharts wants). */
export function toRows(metrics: Metrics, field: "cpu" | "memory"): { rows: Row[]; replicas: number[] } {
  const byTime = new Map<number, Row>();
  const replicas: number[] = [];
  for (const series of metrics.replicas) {
    const replica = series.index ?? series.replica ?? 0;
    replicas.push(replica);
    for (const p of series.points) {
      const t = new Date(p.at ?? p.ts ?? "").getTime();
      if (!Number.isFinite(t)) continue;
      const row = byTime.get(t) ?? ({ t } as Row);
      const value =
        field === "cpu"
          ? (p.cpu_percent ?? p.cpu)
          : p.memory_bytes != null
            ? p.memory_bytes / 1_048_576
            : p.memory_mb;
      row[`r${replica}`] = value ?? null;
      byTime.set(t, row);
    }
  }
  return { rows: [...byTime.values()].sort((a, b) => a.t - b.t), replicas };
}

function Chart({ title, unit, metrics, field, window }: { title: string; unit: string; metrics: Metrics; field: "cpu" | "memory"; window: MetricsWindow }) {
  const { rows, replicas } = React.useMemo(() => toRows(metrics, field), [metrics, field]);
  const time = (t: number) =>
    new Date(t).toLocaleTimeString([], window === "24h" ? { hour: "2-digit", minute: "2-digit" } : { hour: "2-digit", minute: "2-digit" });
  return (
    <Card>
      <CardHeader title={title} description={`Per replica, last ${window}`} />
      <div className="h-64 p-3" role="img" aria-label={`${title} chart, ${replicas.length} replicas`}>
        <ResponsiveContainer width="100%" height="100%">
          <LineChart data={rows} margin={{ top: 8, right: 12, bottom: 0, left: 0 }}>
            <CartesianGrid stroke="rgba(148,163,184,0.08)" vertical={false} />
            <XAxis dataKey="t" type="number" domain={["dataMin", "dataMax"]} tickFormatter={time} stroke="#64748b" fontSize={11} tickLine={false} />
            <YAxis stroke="#64748b" fontSize={11} tickLine={false} axisLine={false} width={64} tickFormatter={(v: number) => `${Math.round(v)}${unit}`} />
            <Tooltip
              contentStyle={{ background: "rgba(17,24,39,0.95)", border: "1px solid rgba(255,255,255,0.1)", borderRadius: 8, fontSize: 12 }}
              labelFormatter={(t) => new Date(Number(t)).toLocaleString()}
              formatter={(v) => [`${typeof v === "number" ? v.toFixed(1) : v}${unit}`]}
            />
            <Legend wrapperStyle={{ fontSize: 12 }} />
            {replicas.map((r, i) => (
              <Line key={r} type="monotone" dataKey={`r${r}`} name={`Replica ${r}`} stroke={COLORS[i % COLORS.length]} dot={false} strokeWidth={1.8} isAnimationActive={false} connectNulls />
            ))}
          </LineChart>
        </ResponsiveContainer>
      </div>
    </Card>
  );
}

export function MetricsTab({ serviceId, environmentId }: { serviceId: string; environmentId: string }) {
  const [window, setWindow] = React.useState<MetricsWindow>("1h");
  const metrics = useQuery({
    queryKey: keys.metrics(serviceId, environmentId, window),
    queryFn: () => api.metrics(serviceId, environmentId, window),
    refetchInterval: 30_000, // samples arrive every 10 s; charts need no sub-minute freshness
  });
  const restarts = metrics.data?.replicas.reduce((n, r) => n + (r.restarts ?? 0), 0) ?? 0;
  return (
    <div className="flex flex-col gap-4 p-4 sm:p-5">
      <div className="flex flex-wrap items-center justify-between gap-3">
        <div role="radiogroup" aria-label="Time window" className="inline-flex rounded-lg border border-white/10 bg-white/5 p-0.5">
          {WINDOWS.map((w) => (
            <button
              key={w}
              type="button"
              role="radio"
              aria-checked={window === w}
              onClick={() => setWindow(w)}
              className={cn("rounded-md px-3 py-1 text-xs", window === w ? "bg-gradient-to-r from-indigo-600 to-violet-600 text-white" : "text-slate-400 hover:text-white")}
            >
              {w}
            </button>
          ))}
        </div>
        {metrics.data ? <p className="text-xs text-slate-400">{restarts} restart{restarts === 1 ? "" : "s"} in this window</p> : null}
      </div>
      {metrics.isError ? (
        <ErrorState error={metrics.error} retry={() => void metrics.refetch()} />
      ) : metrics.isPending ? (
        <>
          <Skeleton className="h-72" />
          <Skeleton className="h-72" />
        </>
      ) : metrics.data.replicas.every((r) => r.points.length === 0) ? (
        <EmptyState icon={<Activity className="h-6 w-6" />} title="No samples yet">
          CPU and memory are sampled every 10 seconds while the service runs. Deploy it and come back in a minute.
        </EmptyState>
      ) : (
        <>
          <Chart title="CPU" unit="%" metrics={metrics.data} field="cpu" window={window} />
          <Chart title="Memory" unit=" MB" metrics={metrics.data} field="memory" window={window} />
        </>
      )}
    </div>
  );
}
