"use client";
import { useMutation, useQueryClient, type UseQueryResult } from "@tanstack/react-query";
import { Ban, GitCommitHorizontal, MoreHorizontal, RefreshCcw, RotateCcw, ScrollText, Trash2, Undo2, Rocket } from "lucide-react";
import * as React from "react";
import { StatusBadge } from "@/components/status";
import { Button } from "@/components/ui/button";
import { ConfirmDialog } from "@/components/ui/confirm";
import { Dropdown, DropdownContent, DropdownItem, DropdownSeparator, DropdownTrigger } from "@/components/ui/dropdown";
import { EmptyState, ErrorState, Skeleton } from "@/components/ui/misc";
import { api, type Deployment, IN_PROGRESS, type Page, type Role, type ServicePublic } from "@/lib/api";
import { can } from "@/lib/permissions";
import { keys } from "@/lib/queries";
import { toast } from "@/lib/toast";
import { cn, formatDuration, shortSha, timeAgo } from "@/lib/utils";

type Action = "redeploy" | "rollback" | "restart" | "cancel";
const ACTION_TEXT: Record<Action, string> = {
  redeploy: "Redeploy started",
  rollback: "Rolling back: a new deployment from this build",
  restart: "Restarting",
  cancel: "Cancelled",
};

function useTicker(active: boolean): void {
  const [, force] = React.useReducer((n: number) => n + 1, 0);
  React.useEffect(() => {
    if (!active) return;
    const id = setInterval(force, 1000);
    return () => clearInterval(id);
  }, [active]);
}

function DeploymentRow({
  deployment,
  isLatest,
  mayDeploy,
  onOpenLogs,
  onAction,
  onRemove,
}: {
  deployment: Deployment;
  isLatest: boolean;
  mayDeploy: boolean;
  onOpenLogs: () => void;
  onAction: (action: Action) => void;
  onRemove: () => void;
}) {
  const running = IN_PROGRESS.has(deployment.status);
  useTicker(running);
  const title = deployment.commit_message?.split("\n")[0] || (deployment.trigger ? `${deployment.trigger[0]?.toUpperCase()}${deployment.trigger.slice(1)} deployment` : "Deployment");
  return (
    <li
      className={cn("group flex flex-wrap items-center gap-3 px-4 py-3 hover:bg-white/[0.03] sm:px-5", deployment.status === "ACTIVE" && "bg-emerald-400/[0.03]")}
      data-testid="deployment-row"
      data-status={deployment.status}
      data-deployment={deployment.id}
    >
      <div className="w-24 shrink-0">
        <StatusBadge status={deployment.status} />
      </div>
      <button type="button" onClick={onOpenLogs} className="min-w-0 flex-1 text-left" title="Open its build and deploy logs">
        <p className="truncate text-sm text-slate-100">{title}</p>
        <p className="flex flex-wrap items-center gap-x-2 text-xs text-slate-400">
          {deployment.commit_sha ? (
            <span className="inline-flex items-center gap-1 font-mono text-slate-400">
              <GitCommitHorizontal className="h-3 w-3" aria-hidden />
              {shortSha(deployment.commit_sha)}
            </span>
          ) : (
            <span className="font-mono">{deployment.id.slice(0, 8)}</span>
          )}
          {deployment.commit_author ? <span>by {deployment.commit_author}</span> : null}
          <span title={deployment.created_at}>{timeAgo(deployment.created_at)}</span>
          {deployment.status_reason && !running && deployment.status !== "ACTIVE" ? (
            <span className="truncate text-red-300/80" title={deployment.status_reason}>
              · {deployment.status_reason}
            </span>
          ) : null}
        </p>
      </button>
      <span className="w-16 shrink-0 text-right font-mono text-xs text-slate-400" title="Duration">
        {formatDuration(deployment.started_at ?? deployment.created_at, deployment.finished_at ?? (running ? null : deployment.updated_at))}
      </span>
      <Dropdown>
        <DropdownTrigger asChild>
          <Button variant="ghost" size="icon" aria-label={`Actions for deployment ${deployment.id.slice(0, 8)}`}>
            <MoreHorizontal className="h-4 w-4" />
          </Button>
        </DropdownTrigger>
        <DropdownContent>
          <DropdownItem onSelect={onOpenLogs}>
            <ScrollText className="h-4 w-4" /> View logs
          </DropdownItem>
          {mayDeploy ? (
            <>
              <DropdownSeparator />
              <DropdownItem onSelect={() => onAction("redeploy")}>
                <RefreshCcw className="h-4 w-4" /> Redeploy
              </DropdownItem>
              {!isLatest && deployment.build_id !== null ? (
                <DropdownItem onSelect={() => onAction("rollback")}>
                  <Undo2 className="h-4 w-4" /> Roll back to this
                </DropdownItem>
              ) : null}
              {deployment.status === "ACTIVE" ? (
                <DropdownItem onSelect={() => onAction("restart")}>
                  <RotateCcw className="h-4 w-4" /> Restart
                </DropdownItem>
              ) : null}
              {running ? (
                <DropdownItem onSelect={() => onAction("cancel")}>
                  <Ban className="h-4 w-4" /> Cancel
                </DropdownItem>
              ) : null}
              {deployment.status === "ACTIVE" ? (
                <DropdownItem danger onSelect={onRemove}>
                  <Trash2 className="h-4 w-4" /> Remove
                </DropdownItem>
              ) : null}
            </>
          ) : null}
        </DropdownContent>
      </Dropdown>
    </li>
  );
}

export function DeploymentsTab({
  service,
  environmentId,
  role,
  query,
  onOpenLogs,
}: {
  service: ServicePublic;
  environmentId: string;
  role: Role | null;
  query: UseQueryResult<Page<Deployment>>;
  onOpenLogs: (id: string) => void;
}) {
  const queryClient = useQueryClient();
  const [removing, setRemoving] = React.useState<Deployment | null>(null);
  const refresh = () => void queryClient.invalidateQueries({ queryKey: keys.deployments(service.id, environmentId) });
  const act = useMutation({
    mutationFn: ({ id, action }: { id: string; action: Action }) => api.deploymentAction(id, action),
    onSuccess: (d, { action }) => {
      toast.success(ACTION_TEXT[action]);
      refresh();
      if (action !== "cancel" && d?.id) onOpenLogs(d.id);
    },
  });
  const remove = useMutation({
    mutationFn: (id: string) => api.removeDeployment(id),
    onSuccess: () => {
      toast.success("Deployment removed: the service is no longer served");
      setRemoving(null);
      refresh();
    },
  });
  const mayDeploy = can(role, "deploy");

  if (query.isError) return <div className="p-5"><ErrorState error={query.error} retry={() => void query.refetch()} /></div>;
  if (query.isPending)
    return (
      <div className="flex flex-col gap-2 p-5">
        {[0, 1, 2].map((i) => <Skeleton key={i} className="h-12" />)}
      </div>
    );
  const items = query.data.items;
  if (!items.length)
    return (
      <div className="p-5">
        <EmptyState icon={<Rocket className="h-6 w-6" />} title="No deployments yet">
          {service.repo_url
            ? mayDeploy
              ? "Press Deploy to build the latest commit of the branch, or push to it with a webhook set up."
              : "Deployments appear here as soon as someone deploys."
            : "Upload a source tarball, or run `caboose up` in your project folder."}
        </EmptyState>
      </div>
    );
  return (
    <>
      <ul className="divide-y divide-white/5" aria-label="Deployments" aria-busy={act.isPending}>
        {items.map((d, i) => (
          <DeploymentRow
            key={d.id}
            deployment={d}
            isLatest={i === 0}
            mayDeploy={mayDeploy}
            onOpenLogs={() => onOpenLogs(d.id)}
            onAction={(action) => act.mutate({ id: d.id, action })}
            onRemove={() => setRemoving(d)}
          />
        ))}
      </ul>
      <ConfirmDialog
        open={!!removing}
        onOpenChange={(o) => !o && setRemoving(null)}
        title="Remove this deployment?"
        description="Its replicas are stopped and its route removed: the service stops answering until the next deploy."
        confirmLabel="Remove deployment"
        pending={remove.isPending}
        onConfirm={() => removing && remove.mutate(removing.id)}
      />
    </>
  );
}
