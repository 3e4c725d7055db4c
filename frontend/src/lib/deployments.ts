"use client";
import { useQueries } from "@tanstack/react-query";
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

/** The latest deployments of several services at once (shared cache with the service panel). */
export function useServiceStates(serviceIds: readonly string[], environmentId: string | undefined): Record<string, ServiceState> {
  const results = useQueries({
    queries: serviceIds.map((id) => ({
      ...deploymentsQuery(id, environmentId ?? ""),
      enabled: !!environmentId,
      staleTime: 30_000,
    })),
  });
  const out: Record<string, ServiceState> = {};
  serviceIds.forEach((id, i) => {
    const r = results[i];
    out[id] = { ...summarize(r?.data?.items), loading: !!r?.isPending && !!environmentId };
  });
  return out;
}
