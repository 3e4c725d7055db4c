"use client";
import { useQueryClient, type QueryClient } from "@tanstack/react-query";
import * as React from "react";
import type { Deployment, LatestDeployments, Page } from "@/lib/api/types";
import { keys } from "@/lib/queries";
import { connectSocket } from "./socket";

/**
 * An event of `WS /projects/{id}/events/ws`, read leniently: whatever names a deployment or a
 * service is enough to refresh the right data.
 */
export interface ProjectEvent {
  type: string;
  deployment?: Partial<Deployment> & { id: string };
  serviceId?: string;
  environmentId?: string;
}

export function parseProjectEvent(data: unknown): ProjectEvent | null {
  if (typeof data !== "string") return null;
  let raw: unknown;
  try {
    raw = JSON.parse(data);
  } catch {
    return null;
  }
  if (!raw || typeof raw !== "object") return null;
  const m = raw as Record<string, unknown>;
  const type = typeof m.type === "string" ? m.type : typeof m.event === "string" ? m.event : "";
  if (!type || type === "ping" || type === "ready") return null;
  const nested = (m.deployment ?? (typeof m.data === "object" ? (m.data as Record<string, unknown>).deployment : undefined)) as
    | Record<string, unknown>
    | undefined;
  const payload = (typeof m.data === "object" && m.data ? (m.data as Record<string, unknown>) : m) as Record<string, unknown>;
  let deployment: ProjectEvent["deployment"];
  if (nested && typeof nested.id === "string") deployment = nested as ProjectEvent["deployment"];
  else if (typeof payload.deployment_id === "string")
    deployment = {
      id: payload.deployment_id,
      ...(typeof payload.status === "string" ? { status: payload.status as Deployment["status"] } : {}),
      ...(typeof payload.service_id === "string" ? { service_id: payload.service_id } : {}),
      ...(typeof payload.environment_id === "string" ? { environment_id: payload.environment_id } : {}),
      ...(typeof payload.url === "string" ? { url: payload.url } : {}),
    };
  const serviceId = (deployment?.service_id ?? payload.service_id ?? (nested ? undefined : undefined)) as string | undefined;
  const environmentId = (deployment?.environment_id ?? payload.environment_id) as string | undefined;
  return { type, deployment, serviceId: typeof serviceId === "string" ? serviceId : undefined, environmentId };
}

/** Apply an event to the cache: patch what it carries, and refetch what it touches. */
export function applyProjectEvent(queryClient: QueryClient, projectId: string, event: ProjectEvent): void {
  const d = event.deployment;
  if (d) {
    queryClient.setQueryData<Deployment>(keys.deployment(d.id), (old) => (old ? { ...old, ...d } : old));
    queryClient.setQueriesData<Page<Deployment>>({ queryKey: ["deployments"] }, (old) =>
      old ? { ...old, items: old.items.map((item) => (item.id === d.id ? { ...item, ...d } : item)) } : old,
    );
    const patch = (item: Deployment | null) => (item && item.id === d.id ? { ...item, ...d } : item);
    queryClient.setQueriesData<LatestDeployments>({ queryKey: ["latest-deployments", projectId] }, (old) =>
      old ? { ...old, items: old.items.map((entry) => ({ ...entry, latest: patch(entry.latest), active: patch(entry.active) })) } : old,
    );
  }
  // The canvas' batch: one request brings every service's newest and live deployment (a new
  // deployment, or one that went ACTIVE, changes which those are).
  void queryClient.invalidateQueries({ queryKey: ["latest-deployments", projectId] });
  if (event.serviceId) {
    void queryClient.invalidateQueries({
      queryKey: event.environmentId ? keys.deployments(event.serviceId, event.environmentId) : ["deployments", event.serviceId],
    });
  }
  if (event.type.startsWith("service") || event.type.startsWith("environment") || !event.serviceId) {
    void queryClient.invalidateQueries({ queryKey: keys.project(projectId) });
  }
  if (d && !event.serviceId) void queryClient.invalidateQueries({ queryKey: ["deployments"] });
}

/** Follow the project's events while mounted; returns whether the socket is connected. */
export function useProjectEvents(projectId: string): boolean {
  const queryClient = useQueryClient();
  const [connected, setConnected] = React.useState(false);
  React.useEffect(() => {
    let wasConnected = false;
    let lastId: string | undefined;
    return connectSocket({
      // Resume after a drop: the API replays the events after `since` that it still keeps.
      url: () => `/api/v1/projects/${projectId}/events/ws${lastId ? `?since=${encodeURIComponent(lastId)}` : ""}`,
      onOpen: () => {
        setConnected(true);
        // Anything may have changed while we were away.
        if (wasConnected) void queryClient.invalidateQueries({ queryKey: ["deployments"] });
        wasConnected = true;
      },
      onClose: () => setConnected(false),
      onMessage: (data) => {
        if (typeof data === "string" && data.includes('"id"')) {
          try {
            const id = (JSON.parse(data) as { id?: unknown }).id;
            if (typeof id === "string") lastId = id;
          } catch {
            // not JSON: ignored below too
          }
        }
        const event = parseProjectEvent(data);
        if (event) applyProjectEvent(queryClient, projectId, event);
      },
    });
  }, [projectId, queryClient]);
  return connected;
}
