"use client";
import { ScrollText } from "lucide-react";
import { StatusDot } from "@/components/status";
import { EmptyState, Skeleton } from "@/components/ui/misc";
import { Select } from "@/components/ui/select";
import type { Deployment } from "@/lib/api";
import { shortSha, timeAgo } from "@/lib/utils";
import { LogView } from "./log-view";

export function LogsTab({
  deployments,
  deploymentId,
  onSelect,
  loading,
}: {
  deployments: Deployment[];
  deploymentId: string | null;
  onSelect: (id: string) => void;
  loading: boolean;
}) {
  if (loading) return <Skeleton className="m-5 h-64" />;
  if (!deploymentId)
    return (
      <div className="p-5">
        <EmptyState icon={<ScrollText className="h-6 w-6" />} title="No logs yet">
          Deploy the service: its build output and then its runtime logs stream here live.
        </EmptyState>
      </div>
    );
  const current = deployments.find((d) => d.id === deploymentId);
  return (
    <div className="flex min-h-0 flex-1 flex-col">
      <div className="flex items-center gap-2 px-4 pt-3 sm:px-5">
        <StatusDot status={current?.status} />
        <label htmlFor="log-deployment" className="sr-only">
          Deployment
        </label>
        <Select id="log-deployment" value={deploymentId} onChange={(e) => onSelect(e.target.value)} className="h-8 max-w-md text-xs">
          {current ? null : <option value={deploymentId}>Deployment {deploymentId.slice(0, 8)}</option>}
          {deployments.map((d) => (
            <option key={d.id} value={d.id}>
              {d.status} · {d.commit_sha ? shortSha(d.commit_sha) : d.id.slice(0, 8)} · {timeAgo(d.created_at)}
            </option>
          ))}
        </Select>
      </div>
      <LogView key={deploymentId} deploymentId={deploymentId} className="mt-2" />
    </div>
  );
}
