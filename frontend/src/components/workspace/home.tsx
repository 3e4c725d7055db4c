"use client";
import { useQuery } from "@tanstack/react-query";
import { Boxes, FolderPlus, Plus } from "lucide-react";
import Link from "next/link";
import * as React from "react";
import { useSetCurrentWorkspace } from "@/components/shell/workspace-context";
import { StatusDot } from "@/components/status";
import { Button } from "@/components/ui/button";
import { EmptyState, ErrorState, Skeleton } from "@/components/ui/misc";
import { api, type ProjectPublic } from "@/lib/api";
import { displayStatus, useServiceStates } from "@/lib/deployments";
import { can } from "@/lib/permissions";
import { keys, useMe, useProjects, useRole } from "@/lib/queries";
import { markSettled } from "@/lib/settle";
import { timeAgo } from "@/lib/utils";

// The dialog (its form and Radix' dialog) loads when first opened, as the canvas' dialogs do.
// React.lazy, not next/dynamic: webpack would copy next/dynamic's loader into a chunk that the
// canvas shares with this page (+3.6 kB gzipped on the canvas).
const NewProjectDialog = React.lazy(() => import("./new-project-dialog").then((m) => ({ default: m.NewProjectDialog })));

const DOTS = 8;

function ProjectCard({ project }: { project: ProjectPublic }) {
  const detail = useQuery({ queryKey: keys.project(project.id), queryFn: () => api.project(project.id), staleTime: 30_000 });
  const production = detail.data?.environments[0];
  const services = detail.data?.services ?? [];
  const states = useServiceStates(project.id, services.slice(0, DOTS).map((s) => s.id), production?.id);
  return (
    <Link
      href={`/p/${project.id}`}
      className="card group flex flex-col gap-4 p-5 transition-colors hover:border-violet-500/50 focus-visible:border-cyan-400"
      data-testid="project-card"
    >
      <div className="flex items-start justify-between gap-3">
        <div className="min-w-0">
          <h3 className="truncate font-semibold text-white group-hover:text-cyan-300">{project.name}</h3>
          <p className="mt-1 line-clamp-2 min-h-[2.5em] text-sm text-slate-400">{project.description || "No description"}</p>
        </div>
        <Boxes className="h-5 w-5 shrink-0 text-purple-500/80" aria-hidden />
      </div>
      <div className="mt-auto flex items-center justify-between gap-3 border-t border-white/5 pt-3 text-xs text-slate-400">
        {detail.isPending ? (
          <Skeleton className="h-3 w-24" />
        ) : services.length ? (
          <ul className="flex min-w-0 flex-wrap items-center gap-x-3 gap-y-1" aria-label="Services">
            {services.slice(0, DOTS).map((s) => (
              <li key={s.id} className="flex items-center gap-1.5">
                <StatusDot status={displayStatus(states[s.id] ?? { latest: undefined, active: undefined })} />
                <span className="max-w-[8rem] truncate">{s.name}</span>
              </li>
            ))}
            {services.length > DOTS ? <li>+{services.length - DOTS} more</li> : null}
          </ul>
        ) : (
          <span>No services yet</span>
        )}
        <span className="shrink-0">{timeAgo(project.updated_at)}</span>
      </div>
    </Link>
  );
}

export function WorkspaceHome({ workspaceId }: { workspaceId: string }) {
  useSetCurrentWorkspace(workspaceId);
  const me = useMe();
  const role = useRole(workspaceId);
  const projects = useProjects(workspaceId);
  const [creating, setCreating] = React.useState(false);
  const workspace = me.data?.workspaces.find((w) => w.id === workspaceId);
  const mayCreate = can(role, "project:manage");
  // The projects (or the error) are on the page: work that can wait may start (lib/settle.ts).
  const shown = !projects.isPending;
  React.useEffect(() => {
    if (shown) markSettled();
  }, [shown]);

  return (
    <div className="mx-auto w-full max-w-6xl px-4 py-8 sm:px-6">
      <div className="mb-8 flex flex-wrap items-end justify-between gap-4">
        <div>
          <p className="text-xs font-medium tracking-wide text-cyan-400 uppercase">Workspace</p>
          <h1 className="mt-1 text-2xl font-semibold tracking-tight text-white">{workspace?.name ?? <Skeleton className="h-7 w-48" />}</h1>
        </div>
        {mayCreate ? (
          <Button onClick={() => setCreating(true)}>
            <Plus className="h-4 w-4" /> New project
          </Button>
        ) : null}
      </div>
      {projects.isError ? (
        <ErrorState error={projects.error} retry={() => void projects.refetch()} />
      ) : projects.isPending ? (
        <div className="grid gap-4 sm:grid-cols-2 lg:grid-cols-3">
          {[0, 1, 2].map((i) => (
            <Skeleton key={i} className="h-40 rounded-xl" />
          ))}
        </div>
      ) : projects.data.items.length === 0 ? (
        <EmptyState
          icon={<FolderPlus className="h-6 w-6" />}
          title="No projects yet"
          action={
            mayCreate ? (
              <Button onClick={() => setCreating(true)}>
                <Plus className="h-4 w-4" /> Create your first project
              </Button>
            ) : null
          }
        >
          {mayCreate
            ? "Create a project, add a service from a Git repository or with `caboose up`, and it is live in a minute."
            : "Ask an admin of this workspace to create a project; it will show up here."}
        </EmptyState>
      ) : (
        <div className="grid gap-4 sm:grid-cols-2 lg:grid-cols-3">
          {projects.data.items.map((p) => (
            <ProjectCard key={p.id} project={p} />
          ))}
        </div>
      )}
      {creating ? (
        <React.Suspense fallback={null}>
          <NewProjectDialog workspaceId={workspaceId} open onOpenChange={setCreating} />
        </React.Suspense>
      ) : null}
    </div>
  );
}
