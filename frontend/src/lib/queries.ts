"use client";
import { type QueryClient, useQuery, useQueryClient, type UseQueryOptions } from "@tanstack/react-query";
import { api, type MetricsWindow, type ProjectDetail } from "@/lib/api";
import { hasBoot } from "@/lib/api/boot";

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
export function useProject(projectId: string) {
  const queryClient = useQueryClient();
  return useQuery({
    queryKey: keys.project(projectId),
    queryFn: async () => {
      const project = await api.project(projectId);
      await takeEarlyLatest(queryClient, project);
      return project;
    },
  });
}

/**
 * When the page's early requests (lib/api/boot.ts) already asked for the project's latest
 * deployments, they come with the project: the canvas then renders its 50 cards once, with their
 * statuses, instead of once with placeholders and again a moment later.
 */
async function takeEarlyLatest(queryClient: QueryClient, project: ProjectDetail): Promise<void> {
  for (const environment of project.environments) {
    const path = `/api/v1/projects/${project.id}/deployments/latest?environment_id=${encodeURIComponent(environment.id)}`;
    if (!hasBoot(path)) continue;
    try {
      queryClient.setQueryData(keys.latest(project.id, environment.id), await api.latestDeployments(project.id, environment.id));
    } catch {
      // The canvas' own query asks again.
    }
  }
}
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
