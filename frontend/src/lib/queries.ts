"use client";
import { useQuery, type UseQueryOptions } from "@tanstack/react-query";
import { api, type MetricsWindow } from "@/lib/api";

export const keys = {
  setup: ["setup"] as const,
  me: ["me"] as const,
  workspaces: ["workspaces"] as const,
  projects: (workspaceId: string) => ["projects", workspaceId] as const,
  project: (projectId: string) => ["project", projectId] as const,
  deployments: (serviceId: string, environmentId: string) => ["deployments", serviceId, environmentId] as const,
  deployment: (id: string) => ["deployment", id] as const,
  latest: (projectId: string, environmentId: string) => ["latest-deployments", projectId, environmentId] as const,
  variables: (serviceId: string, environmentId: string) => ["variables", serviceId, environmentId] as const,
  shared: (environmentId: string) => ["shared-variables", environmentId] as const,
  domains: (serviceId: string) => ["domains", serviceId] as const,
  webhooks: (serviceId: string) => ["webhooks", serviceId] as const,
  metrics: (serviceId: string, environmentId: string, window: MetricsWindow) =>
    ["metrics", serviceId, environmentId, window] as const,
  members: (workspaceId: string) => ["members", workspaceId] as const,
  invitations: (workspaceId: string) => ["invitations", workspaceId] as const,
  tokens: ["tokens"] as const,
};

type Extra<T> = Omit<UseQueryOptions<T>, "queryKey" | "queryFn">;

export const useSetup = () => useQuery({ queryKey: keys.setup, queryFn: api.setup, staleTime: 60_000 });
export const useMe = (options: Extra<Awaited<ReturnType<typeof api.me>>> = {}) =>
  useQuery({ queryKey: keys.me, queryFn: api.me, staleTime: 30_000, ...options });
export const useProjects = (workspaceId: string) =>
  useQuery({ queryKey: keys.projects(workspaceId), queryFn: () => api.projects(workspaceId) });
export const useProject = (projectId: string) =>
  useQuery({ queryKey: keys.project(projectId), queryFn: () => api.project(projectId) });
export const useDeployments = (serviceId: string, environmentId: string | undefined, enabled = true) =>
  useQuery({
    queryKey: keys.deployments(serviceId, environmentId ?? ""),
    queryFn: () => api.deployments(serviceId, environmentId ?? ""),
    enabled: enabled && !!environmentId,
  });
export const useMembers = (workspaceId: string) =>
  useQuery({ queryKey: keys.members(workspaceId), queryFn: () => api.members(workspaceId) });

/** The signed-in user's role in a workspace (null while unknown). */
export function useRole(workspaceId: string | undefined) {
  const me = useMe();
  const membership = me.data?.workspaces.find((w) => w.id === workspaceId);
  return membership?.role ?? null;
}
