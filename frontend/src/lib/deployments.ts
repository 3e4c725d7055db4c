"use client";
import { useQuery } from "@tanstack/react-query";
import * as React from "react";
import { api, type Deployment, IN_PROGRESS } from "@/lib/api";
import { keys } from "@/lib/queries";

export const DEPLOYMENTS_PAGE = 20;

export function deploymentsQuery(serviceId: string, environmentId: string) {
  return {
    queryKey: keys.deployments(serviceId, environmentId),
    queryFn: () => api.deployments(serviceId, environmentId, DEPLOYMENTS_PAGE),
  };
}

export interface ServiceState {
  /** The newest deployment, whatever its state. */
  latest: Deployment | undefined;
  /** The deployment serving traffic now, if any. */
  active: Deployment | undefined;
  loading: boolean;
}

/** What a status dot shows: an in-progress deploy, else what is live, else the last outcome. */
export function summarize(items: readonly Deployment[] | undefined): Omit<ServiceState, "loading"> {
  const list = items ?? [];
  const latest = list[0];
  const active = list.find((d) => d.status === "ACTIVE");
  return { latest, active };
}

export function displayStatus(state: Omit<ServiceState, "loading">): string | undefined {
  if (state.latest && IN_PROGRESS.has(state.latest.status)) return state.latest.status;
  if (state.active) return "ACTIVE";
  return state.latest?.status;
}

/**
 * What the canvas (and a project card) shows for each service, from one request per project and
 * environment (`GET /projects/{id}/deployments/latest`), however many services there are. Kept
 * fresh by the project events (lib/ws/project-events.ts), not by polling.
 */
export function useServiceStates(
  projectId: string | undefined,
  serviceIds: readonly string[],
  environmentId: string | undefined,
): Record<string, ServiceState> {
  const enabled = !!projectId && !!environmentId;
  const latest = useQuery({
    queryKey: keys.latest(projectId ?? "", environmentId ?? ""),
    queryFn: () => api.latestDeployments(projectId ?? "", environmentId ?? ""),
    enabled,
    staleTime: 30_000,
  });
  const loading = enabled && latest.isPending;
  const ids = serviceIds.join(",");
  return React.useMemo(() => {
    const found = new Map((latest.data?.items ?? []).map((item) => [item.service_id, item]));
    const out: Record<string, ServiceState> = {};
    for (const id of ids ? ids.split(",") : []) {
      const item = found.get(id);
      // A service missing from the answer was created since: never deployed here.
      out[id] = { latest: item?.latest ?? undefined, active: item?.active ?? undefined, loading };
    }
    return out;
  }, [latest.data, loading, ids]);
}
