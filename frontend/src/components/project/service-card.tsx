"use client";
import * as React from "react";
import { StatusBadge, StatusDot } from "@/components/status";
import { Skeleton } from "@/components/ui/misc";
import type { ServicePublic } from "@/lib/api";
import { displayStatus, type ServiceState } from "@/lib/deployments";
import { cn, timeAgo } from "@/lib/utils";

// lucide's git-branch, upload, external-link and layers, each drawn as one path: a card has four
// icons and the canvas 50 cards, and lucide's components make an SVG element per stroke (plus
// their own props work), which was ~15 % of the canvas' first render.
const ICONS = {
  branch: "M15 6a9 9 0 0 0-9 9V3M21 6a3 3 0 1 1-6 0a3 3 0 1 1 6 0M9 18a3 3 0 1 1-6 0a3 3 0 1 1 6 0",
  upload: "M12 3v12M17 8l-5-5-5 5M21 15v4a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2v-4",
  external: "M15 3h6v6M10 14 21 3M18 13v6a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2V8a2 2 0 0 1 2-2h6",
  layers:
    "M12.83 2.18a2 2 0 0 0-1.66 0L2.6 6.08a1 1 0 0 0 0 1.83l8.58 3.91a2 2 0 0 0 1.66 0l8.58-3.9a1 1 0 0 0 0-1.83zM2 12a1 1 0 0 0 .58.91l8.6 3.91a2 2 0 0 0 1.65 0l8.58-3.9A1 1 0 0 0 22 12M2 17a1 1 0 0 0 .58.91l8.6 3.91a2 2 0 0 0 1.65 0l8.58-3.9A1 1 0 0 0 22 17",
} as const;

function Icon({ name, className }: { name: keyof typeof ICONS; className: string }) {
  return (
    <svg viewBox="0 0 24 24" fill="none" stroke="currentColor" strokeWidth={2} strokeLinecap="round" strokeLinejoin="round" className={className} aria-hidden>
      <path d={ICONS[name]} />
    </svg>
  );
}

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
        // Not `.card`: its backdrop blur, times 50 cards over a static dot grid, made every card a
        // composited, blurred layer (software-rendered here) for a change nobody can see under a
        // 90%-opaque background.
        "group relative flex flex-col gap-3 rounded-xl border border-white/10 bg-gray-900/90 p-4 transition-all hover:-translate-y-0.5 hover:border-violet-500/50 hover:shadow-lg hover:shadow-violet-950/40",
        selected && "border-violet-500/70 ring-1 ring-violet-500/40",
        // Cards below the fold are not styled, laid out or painted until scrolled to (most of
        // the 50); their last size, or this estimate, holds their place.
        "[content-visibility:auto] [contain-intrinsic-size:auto_172px]",
      )}
      data-testid="service-card"
      data-service={service.name}
      data-status={status ?? "NONE"}
    >
      <div className="flex items-start gap-3">
        <div className="flex h-9 w-9 shrink-0 items-center justify-center rounded-lg bg-gradient-to-br from-indigo-600/40 to-violet-600/40 ring-1 ring-white/10">
          <Icon name={service.repo_url ? "branch" : "upload"} className="h-4 w-4 text-cyan-300" />
        </div>
        <div className="min-w-0 flex-1">
          <h3 className="truncate font-semibold text-white">
            {/* The whole card opens the panel: a stretched button, with the domain link above it. */}
            <button type="button" onClick={() => onOpen(service.id)} className="text-left after:absolute after:inset-0 after:rounded-xl focus-visible:outline-none focus-visible:after:outline-2 focus-visible:after:outline-cyan-400">
              {service.name}
            </button>
          </h3>
          <p className="truncate text-xs text-slate-400">{service.repo_url ? repoLabel(service.repo_url) : "Deployed with caboose up"}</p>
        </div>
        <StatusDot status={status} className="mt-1.5" />
      </div>
      <div className="flex min-h-6 items-center">
        {state.loading ? (
          <Skeleton className="h-5 w-24" />
        ) : status ? (
          <StatusBadge status={status} />
        ) : (
          <span className="text-xs text-slate-400">Not deployed yet</span>
        )}
      </div>
      {url ? (
        <a
          href={url}
          target="_blank"
          rel="noreferrer"
          className="relative z-10 flex items-center gap-1.5 truncate text-xs text-cyan-400 hover:text-cyan-300 hover:underline"
        >
          <Icon name="external" className="h-3 w-3 shrink-0" />
          <span className="truncate">{url.replace(/^https?:\/\//, "")}</span>
        </a>
      ) : (
        <span className="text-xs text-slate-400">No public URL</span>
      )}
      <div className="flex items-center justify-between border-t border-white/5 pt-2.5 text-xs text-slate-400">
        <span className="flex items-center gap-1.5">
          <Icon name="layers" className="h-3.5 w-3.5" />
          {replicas} {replicas === 1 ? "replica" : "replicas"}
        </span>
        <span title={when ?? undefined}>{when ? `Deployed ${timeAgo(when)}` : ""}</span>
      </div>
    </article>
  );
}
