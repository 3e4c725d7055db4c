"use client";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { Plus, Radio, ServerCog, Trash2 } from "lucide-react";
import dynamic from "next/dynamic";
import { usePathname, useRouter, useSearchParams } from "next/navigation";
import * as React from "react";
import { useSetCurrentWorkspace } from "@/components/shell/workspace-context";
import { Button } from "@/components/ui/button";
import { EmptyState, ErrorState, Skeleton } from "@/components/ui/misc";
import { Select } from "@/components/ui/select";
import { SettledLink } from "@/components/ui/settled-link";
import { Tooltip } from "@/components/ui/tooltip";
import { api, type ProjectDetail } from "@/lib/api";
import { useServiceStates } from "@/lib/deployments";
import { can } from "@/lib/permissions";
import { keys, useProject, useRole } from "@/lib/queries";
import { markSettled } from "@/lib/settle";
import { loadMonoFont } from "@/lib/utils";
import { useProjectEvents } from "@/lib/ws/project-events";
import { CabooseUpSnippet } from "./caboose-up-snippet";
import { ServiceCard } from "./service-card";

// The panel (logs, charts, editors) loads when first opened: the canvas stays light.
const ServiceSheet = dynamic(() => import("@/components/service/sheet").then((m) => m.ServiceSheet), { ssr: false });
// So do the dialogs (forms, validation, Radix' dialog): each is mounted only while open.
const NewServiceDialog = dynamic(() => import("./new-service-dialog").then((m) => m.NewServiceDialog), { ssr: false });
const NewEnvironmentDialog = dynamic(() => import("./new-environment-dialog").then((m) => m.NewEnvironmentDialog), { ssr: false });
const ConfirmDialog = dynamic(() => import("@/components/ui/confirm").then((m) => m.ConfirmDialog), { ssr: false });

export type SheetTab = "deployments" | "logs" | "variables" | "metrics" | "settings";

/** The canvas' URL state: ?env=&service=&tab=&deployment= (shareable, back-button friendly). */
function useCanvasParams(project: ProjectDetail | undefined) {
  const params = useSearchParams();
  const router = useRouter();
  const pathname = usePathname();
  const environmentId = params.get("env") ?? project?.environments[0]?.id;
  const update = React.useCallback(
    (patch: Record<string, string | null>, mode: "push" | "replace" = "replace") => {
      const next = new URLSearchParams(params.toString());
      for (const [k, v] of Object.entries(patch)) {
        if (v === null) next.delete(k);
        else next.set(k, v);
      }
      const qs = next.toString();
      router[mode](qs ? `${pathname}?${qs}` : pathname, { scroll: false });
    },
    [params, router, pathname],
  );
  return {
    environmentId,
    serviceId: params.get("service"),
    tab: (params.get("tab") as SheetTab | null) ?? "deployments",
    deploymentId: params.get("deployment"),
    update,
  };
}

export function ProjectCanvas({ projectId }: { projectId: string }) {
  const project = useProject(projectId);
  useSetCurrentWorkspace(project.data?.workspace_id);
  const role = useRole(project.data?.workspace_id);
  const { environmentId, serviceId, tab, deploymentId, update } = useCanvasParams(project.data);
  const live = useProjectEvents(projectId);
  const services = project.data?.services ?? [];
  const states = useServiceStates(projectId, services.map((s) => s.id), environmentId);
  const [creating, setCreating] = React.useState(false);
  const [creatingEnv, setCreatingEnv] = React.useState(false);
  const [deleting, setDeleting] = React.useState(false);
  const router = useRouter();
  const queryClient = useQueryClient();
  const updateRef = React.useRef(update);
  updateRef.current = update;
  const openService = React.useCallback(
    (id: string) => updateRef.current({ service: id, tab: "deployments", deployment: null }, "push"),
    [],
  );
  // The canvas has shown what it is for (its cards with their statuses, the empty state or an
  // error): work that can wait may start (lib/settle.ts).
  const shown = project.isError || (!!project.data && !services.some((s) => states[s.id]?.loading));
  React.useEffect(() => {
    if (shown) markSettled();
  }, [shown]);
  // Once the canvas is idle, fetch the log font, so opening a service's logs never waits on it.
  React.useEffect(() => {
    const idle = window.requestIdleCallback ?? ((fn: () => void) => window.setTimeout(fn, 1000));
    const cancel = window.cancelIdleCallback ?? window.clearTimeout;
    const id = idle(() => void loadMonoFont());
    return () => cancel(id);
  }, []);
  const remove = useMutation({
    mutationFn: () => api.deleteProject(projectId),
    onSuccess: () => {
      void queryClient.invalidateQueries({ queryKey: ["projects"] });
      router.replace(`/w/${project.data?.workspace_id ?? ""}`);
    },
  });

  if (project.isError) {
    return (
      <div className="mx-auto w-full max-w-3xl p-6">
        <ErrorState error={project.error} retry={() => void project.refetch()} />
      </div>
    );
  }
  const data = project.data;
  const environment = data?.environments.find((e) => e.id === environmentId);
  const selected = services.find((s) => s.id === serviceId);
  const mayManage = can(role, "service:manage");

  return (
    <div className="bg-grid relative flex flex-1 flex-col">
      <div className="border-b border-white/10 bg-slate-950/60 backdrop-blur-xl">
        <div className="mx-auto flex max-w-[1600px] flex-wrap items-center gap-3 px-4 py-3 sm:px-6">
          <div className="mr-auto min-w-0">
            <nav aria-label="Breadcrumb" className="text-xs text-slate-400">
              <SettledLink href={data ? `/w/${data.workspace_id}` : "#"} className="hover:text-slate-300">Projects</SettledLink>
            </nav>
            <h1 className="flex items-center gap-2 truncate text-lg font-semibold text-white">
              {data?.name ?? <Skeleton className="h-6 w-40" />}
              <Tooltip content={live ? "Live: updates arrive as they happen" : "Reconnecting to live updates…"}>
                <span className="inline-flex items-center gap-1 rounded-full border border-white/10 px-2 py-0.5 text-[10px] font-medium text-slate-400" data-testid="live-indicator" data-live={live}>
                  <Radio className={live ? "h-3 w-3 text-emerald-400" : "h-3 w-3 text-amber-400 animate-status"} aria-hidden />
                  {live ? "Live" : "Offline"}
                </span>
              </Tooltip>
            </h1>
          </div>
          <div className="flex items-center gap-2">
            <label htmlFor="environment" className="sr-only">Environment</label>
            <Select
              id="environment"
              value={environmentId ?? ""}
              onChange={(e) => {
                if (e.target.value === "__new") setCreatingEnv(true);
                else update({ env: e.target.value, deployment: null });
              }}
              className="w-44"
              disabled={!data}
            >
              {data?.environments.map((e) => (
                <option key={e.id} value={e.id}>
                  {e.name}
                </option>
              ))}
              {can(role, "project:manage") ? <option value="__new">+ New environment…</option> : null}
            </Select>
            {mayManage ? (
              <Button onClick={() => setCreating(true)} disabled={!data}>
                <Plus className="h-4 w-4" /> New service
              </Button>
            ) : null}
            {can(role, "project:manage") && data ? (
              <Tooltip content="Delete project">
                <Button variant="ghost" size="icon" aria-label="Delete project" onClick={() => setDeleting(true)}>
                  <Trash2 className="h-4 w-4" />
                </Button>
              </Tooltip>
            ) : null}
          </div>
        </div>
      </div>

      <div className="mx-auto w-full max-w-[1600px] flex-1 px-4 py-6 sm:px-6">
        {!data ? (
          <div className="grid gap-4 sm:grid-cols-2 lg:grid-cols-3 xl:grid-cols-4">
            {[0, 1, 2, 3].map((i) => <Skeleton key={i} className="h-44 rounded-xl" />)}
          </div>
        ) : services.length === 0 ? (
          <EmptyState
            icon={<ServerCog className="h-6 w-6" />}
            title="Add your first service"
            action={mayManage ? <Button onClick={() => setCreating(true)}><Plus className="h-4 w-4" /> New service</Button> : null}
          >
            {mayManage ? (
              <div className="flex flex-col gap-3 text-left">
                <p>Deploy a Git repository, or push a folder from your machine:</p>
                <CabooseUpSnippet project={data.name} service="web" environment={environment?.name} />
              </div>
            ) : (
              "An admin can add services to this project. Once there, you can deploy them and follow their logs."
            )}
          </EmptyState>
        ) : (
          <div className="grid gap-4 sm:grid-cols-2 lg:grid-cols-3 xl:grid-cols-4" data-testid="canvas">
            {services.map((s) => (
              <ServiceCard
                key={s.id}
                service={s}
                state={states[s.id] ?? { latest: undefined, active: undefined, loading: true }}
                selected={s.id === serviceId}
                onOpen={openService}
              />
            ))}
          </div>
        )}
      </div>

      {data && selected && environmentId ? (
        <ServiceSheet
          project={data}
          service={selected}
          environmentId={environmentId}
          role={role}
          tab={tab}
          deploymentId={deploymentId}
          onTab={(t, deployment) => update({ tab: t, deployment: deployment ?? (t === "logs" ? deploymentId : null) })}
          onClose={() => update({ service: null, tab: null, deployment: null })}
        />
      ) : null}
      {data && creating ? (
        <NewServiceDialog
          project={data}
          environmentId={environmentId}
          open
          onOpenChange={setCreating}
          onCreated={(s) => update({ service: s.id, tab: s.repo_url ? "logs" : "deployments", deployment: null }, "push")}
        />
      ) : null}
      {data && creatingEnv ? (
        <NewEnvironmentDialog project={data} open onOpenChange={setCreatingEnv} onCreated={(id) => update({ env: id })} />
      ) : null}
      {data && deleting ? (
        <ConfirmDialog
          open
          onOpenChange={setDeleting}
          title={`Delete ${data.name}?`}
          description="Every service, deployment, variable and domain of this project is stopped and removed. This cannot be undone."
          typeToConfirm={data.name}
          confirmLabel="Delete project"
          pending={remove.isPending}
          onConfirm={() => remove.mutate()}
        />
      ) : null}
    </div>
  );
}
