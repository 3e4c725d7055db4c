"use client";
import { ExternalLink, GitBranch, Layers, Upload } from "lucide-react";
import * as React from "react";
import { StatusBadge, StatusDot } from "@/components/status";
import { Skeleton } from "@/components/ui/misc";
import type { ServicePublic } from "@/lib/api";
import { displayStatus, type ServiceState } from "@/lib/deployments";
import { cn, timeAgo } from "@/lib/utils";

function repoLabel(url: string): string {
  return url.replace(/^https?:\/\/(www\.)?/, "").replace(/^git@/, "").replace(/\.git$/, "").replace(/^github\.com[/:]/, "");
}

function sameState(a: ServiceState, b: ServiceState): boolean {
  return (
    a.loading === b.loading &&
    a.latest?.id === b.latest?.id &&
    a.latest?.status === b.latest?.status &&
    a.latest?.created_at === b.latest?.created_at &&
    a.active?.id === b.active?.id &&
    a.active?.url === b.active?.url &&
    a.active?.replicas?.length === b.active?.replicas?.length
  );
}

// 50 cards, each re-rendered only when its own service or deployment state changes.
export const ServiceCard = React.memo(ServiceCardView, (a, b) =>
  a.service === b.service && a.selected === b.selected && a.onOpen === b.onOpen && sameState(a.state, b.state),
);

function ServiceCardView({
  service,
  state,
  selected,
  onOpen,
}: {
  service: ServicePublic;
  state: ServiceState;
  selected: boolean;
  onOpen: (serviceId: string) => void;
}) {
  const status = displayStatus(state);
  const url = state.active?.url ?? undefined;
  const replicas = state.active?.replicas?.length || service.num_replicas || 1;
  const when = state.latest?.created_at;
  return (
    <article
      className={cn(
        "card group relative flex flex-col gap-3 p-4 transition-all hover:-translate-y-0.5 hover:border-violet-500/50 hover:shadow-lg hover:shadow-violet-950/40",
        selected && "border-violet-500/70 ring-1 ring-violet-500/40",
      )}
      data-testid="service-card"
      data-service={service.name}
      data-status={status ?? "NONE"}
    >
      <div className="flex items-start gap-3">
        <div className="flex h-9 w-9 shrink-0 items-center justify-center rounded-lg bg-gradient-to-br from-indigo-600/40 to-violet-600/40 ring-1 ring-white/10">
          {service.repo_url ? <GitBranch className="h-4 w-4 text-cyan-300" aria-hidden /> : <Upload className="h-4 w-4 text-cyan-300" aria-hidden />}
        </div>
        <div className="min-w-0 flex-1">
          <h3 className="truncate font-semibold text-white">
            {/* The whole card opens the panel: a stretched button, with the domain link above it. */}
            <button type="button" onClick={() => onOpen(service.id)} className="text-left after:absolute after:inset-0 after:rounded-xl focus-visible:outline-none focus-visible:after:outline-2 focus-visible:after:outline-cyan-400">
              {service.name}
            </button>
          </h3>
          <p className="truncate text-xs text-slate-500">{service.repo_url ? repoLabel(service.repo_url) : "Deployed with caboose up"}</p>
        </div>
        <StatusDot status={status} className="mt-1.5" />
      </div>
      <div className="flex min-h-6 items-center">
        {state.loading ? (
          <Skeleton className="h-5 w-24" />
        ) : status ? (
          <StatusBadge status={status} />
        ) : (
          <span className="text-xs text-slate-500">Not deployed yet</span>
        )}
      </div>
      {url ? (
        <a
          href={url}
          target="_blank"
          rel="noreferrer"
          className="relative z-10 flex items-center gap-1.5 truncate text-xs text-cyan-400 hover:text-cyan-300 hover:underline"
        >
          <ExternalLink className="h-3 w-3 shrink-0" aria-hidden />
          <span className="truncate">{url.replace(/^https?:\/\//, "")}</span>
        </a>
      ) : (
        <span className="text-xs text-slate-600">No public URL</span>
      )}
      <div className="flex items-center justify-between border-t border-white/5 pt-2.5 text-xs text-slate-400">
        <span className="flex items-center gap-1.5">
          <Layers className="h-3.5 w-3.5" aria-hidden />
          {replicas} {replicas === 1 ? "replica" : "replicas"}
        </span>
        <span title={when ?? undefined}>{when ? `Deployed ${timeAgo(when)}` : ""}</span>
      </div>
    </article>
  );
}
