"use client";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { Activity, ExternalLink, KeyRound, Rocket, ScrollText, Settings, Upload, X, History } from "lucide-react";
import dynamic from "next/dynamic";
import * as React from "react";
import type { SheetTab } from "@/components/project/canvas";
import { StatusBadge } from "@/components/status";
import { Button } from "@/components/ui/button";
import { Dialog, DialogClose, SheetContent } from "@/components/ui/dialog";
import { Skeleton } from "@/components/ui/misc";
import { Tabs, TabsContent, TabsList, TabsTrigger } from "@/components/ui/tabs";
import { api, type ProjectDetail, type Role, type ServicePublic } from "@/lib/api";
import { displayStatus, summarize } from "@/lib/deployments";
import { can } from "@/lib/permissions";
import { keys, useDeployments } from "@/lib/queries";
import { toast } from "@/lib/toast";
import { DeploymentsTab } from "./deployments-tab";
import { LogsTab } from "./logs-tab";
import { VariablesTab } from "./variables-tab";
import { SettingsTab } from "./settings-tab";

// recharts is the heaviest dependency: only the Metrics tab pulls it in.
const MetricsTab = dynamic(() => import("./metrics-tab").then((m) => m.MetricsTab), {
  ssr: false,
  loading: () => <Skeleton className="m-5 h-64" />,
});

export function ServiceSheet({
  project,
  service,
  environmentId,
  role,
  tab,
  deploymentId,
  onTab,
  onClose,
}: {
  project: ProjectDetail;
  service: ServicePublic;
  environmentId: string;
  role: Role | null;
  tab: SheetTab;
  deploymentId: string | null;
  onTab: (tab: SheetTab, deploymentId?: string | null) => void;
  onClose: () => void;
}) {
  const deployments = useDeployments(service.id, environmentId);
  const state = summarize(deployments.data?.items);
  const status = displayStatus(state);
  const queryClient = useQueryClient();
  const uploadRef = React.useRef<HTMLInputElement>(null);
  const environment = project.environments.find((e) => e.id === environmentId);
  const mayDeploy = can(role, "deploy");
  const refresh = () => {
    void queryClient.invalidateQueries({ queryKey: keys.deployments(service.id, environmentId) });
    void queryClient.invalidateQueries({ queryKey: keys.latest(project.id, environmentId) });
  };

  const deploy = useMutation({
    mutationFn: () => api.deploy(service.id, environmentId),
    onSuccess: (d) => {
      toast.success("Deployment started");
      refresh();
      onTab("logs", d.id);
    },
  });
  const upload = useMutation({
    mutationFn: (file: File) => api.upload(service.id, environmentId, file),
    onMutate: () => toast.loading("Uploading source…", { id: "upload" }),
    onSuccess: (d) => {
      toast.success("Uploaded: building now", { id: "upload" });
      refresh();
      onTab("logs", d.id);
    },
    onError: () => toast.dismiss("upload"),
  });

  return (
    // Not modal: like Railway's panel, the canvas stays usable beside it, and toasts (with their
    // "Redeploy now" actions) stay clickable. Escape and the close button still close it.
    <Dialog open modal={false} onOpenChange={(open) => !open && onClose()}>
      <SheetContent
        title={`Service ${service.name}`}
        data-testid="service-sheet"
        onInteractOutside={(event) => {
          const target = event.target as HTMLElement | null;
          // A toast, or a click on the canvas (opening another service replaces the panel).
          if (target?.closest("[data-sonner-toaster], [data-testid=canvas], header")) event.preventDefault();
        }}
      >
        <div className="flex flex-wrap items-start gap-3 border-b border-white/10 px-4 py-4 sm:px-5">
          <div className="min-w-0 flex-1">
            <p className="text-xs text-slate-400">
              {project.name} · {environment?.name}
            </p>
            <h2 className="flex flex-wrap items-center gap-2 text-lg font-semibold text-white">
              <span className="truncate">{service.name}</span>
              {status ? <StatusBadge status={status} /> : null}
            </h2>
            {state.active?.url ? (
              <a href={state.active.url} target="_blank" rel="noreferrer" className="mt-1 inline-flex items-center gap-1 text-sm text-cyan-400 hover:underline" data-testid="service-url">
                {state.active.url.replace(/^https?:\/\//, "")} <ExternalLink className="h-3 w-3" aria-hidden />
              </a>
            ) : null}
          </div>
          <div className="flex items-center gap-2">
            {mayDeploy && service.repo_url ? (
              <Button size="sm" loading={deploy.isPending} onClick={() => deploy.mutate()}>
                <Rocket className="h-3.5 w-3.5" /> Deploy
              </Button>
            ) : null}
            {mayDeploy ? (
              <>
                <Button size="sm" variant={service.repo_url ? "secondary" : "primary"} loading={upload.isPending} onClick={() => uploadRef.current?.click()}>
                  <Upload className="h-3.5 w-3.5" /> Upload
                </Button>
                <input
                  ref={uploadRef}
                  type="file"
                  accept=".tar.gz,.tgz,application/gzip"
                  className="sr-only"
                  aria-label="Upload a source tarball (.tar.gz)"
                  data-testid="upload-input"
                  onChange={(e) => {
                    const file = e.target.files?.[0];
                    if (file) upload.mutate(file);
                    e.target.value = "";
                  }}
                />
              </>
            ) : null}
            <DialogClose asChild>
              <Button variant="ghost" size="icon" aria-label="Close panel">
                <X className="h-4 w-4" />
              </Button>
            </DialogClose>
          </div>
        </div>
        <Tabs value={tab} onValueChange={(t) => onTab(t as SheetTab)} className="flex min-h-0 flex-1 flex-col">
          <TabsList aria-label="Service">
            <TabsTrigger value="deployments"><History className="h-4 w-4" aria-hidden /> Deployments</TabsTrigger>
            <TabsTrigger value="logs"><ScrollText className="h-4 w-4" aria-hidden /> Logs</TabsTrigger>
            <TabsTrigger value="variables"><KeyRound className="h-4 w-4" aria-hidden /> Variables</TabsTrigger>
            <TabsTrigger value="metrics"><Activity className="h-4 w-4" aria-hidden /> Metrics</TabsTrigger>
            {can(role, "service:manage") ? (
              <TabsTrigger value="settings"><Settings className="h-4 w-4" aria-hidden /> Settings</TabsTrigger>
            ) : null}
          </TabsList>
          <TabsContent value="deployments" className="min-h-0 flex-1 overflow-y-auto">
            <DeploymentsTab
              service={service}
              environmentId={environmentId}
              role={role}
              query={deployments}
              onOpenLogs={(id) => onTab("logs", id)}
            />
          </TabsContent>
          <TabsContent value="logs" className="flex min-h-0 flex-1 flex-col">
            <LogsTab deployments={deployments.data?.items ?? []} deploymentId={deploymentId ?? state.latest?.id ?? null} onSelect={(id) => onTab("logs", id)} loading={deployments.isPending} />
          </TabsContent>
          <TabsContent value="variables" className="min-h-0 flex-1 overflow-y-auto">
            <VariablesTab project={project} service={service} environmentId={environmentId} role={role} />
          </TabsContent>
          <TabsContent value="metrics" className="min-h-0 flex-1 overflow-y-auto">
            <MetricsTab serviceId={service.id} environmentId={environmentId} />
          </TabsContent>
          {can(role, "service:manage") ? (
            <TabsContent value="settings" className="min-h-0 flex-1 overflow-y-auto">
              <SettingsTab project={project} service={service} environmentId={environmentId} role={role} onDeleted={onClose} />
            </TabsContent>
          ) : null}
        </Tabs>
      </SheetContent>
    </Dialog>
  );
}
