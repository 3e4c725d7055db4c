/**
 * Every call the dashboard makes. Identity, workspaces, projects and services go through the
 * generated client (src/client); the calls whose routes are still being built are typed by hand
 * from API.md (see types.ts) and use the same fetch wrapper.
 */
import * as sdk from "@/client/sdk.gen";
import type {
  ApiTokenCreated,
  ApiTokenPublic,
  Deployment,
  Domain,
  EnvironmentPublic,
  InvitationCreated,
  InvitationPublic,
  LatestDeployments,
  LogLine,
  MePublic,
  MemberPublic,
  Metrics,
  MetricsWindow,
  Page,
  ProjectDetail,
  ProjectPublic,
  Role,
  ServiceCreate,
  ServicePublic,
  ServiceUpdate,
  SetupState,
  Variables,
  Webhook,
  WebhookCreated,
  WorkspacePublic,
} from "./types";
import { request, unwrap } from "./http";

export * from "./types";
export { ApiError, problemMessage } from "./problem";

const V1 = "/api/v1";

export const api = {
  // Identity ------------------------------------------------------------------------------
  setup: () => unwrap<SetupState>(sdk.authSetupState()),
  me: () => unwrap<MePublic>(sdk.authMe()),
  login: (email: string, password: string) => unwrap(sdk.authLogin({ body: { email, password } })),
  register: (body: { email: string; password: string; name: string; invitation_token?: string }) =>
    unwrap<MePublic>(sdk.authRegister({ body })),
  logout: () => unwrap(sdk.authLogout()),
  acceptInvitation: (token: string) =>
    unwrap<WorkspacePublic>(sdk.workspacesAcceptInvitation({ body: { token } })),

  tokens: () => unwrap<Page<ApiTokenPublic>>(sdk.tokensListTokens({ query: { limit: 200 } })),
  createToken: (body: { name: string; expires_in_days?: number | null; project_id?: string | null }) =>
    unwrap<ApiTokenCreated>(sdk.tokensCreateToken({ body })),
  revokeToken: (id: string) => unwrap(sdk.tokensRevokeToken({ path: { token_id: id } })),

  // Workspaces ----------------------------------------------------------------------------
  workspaces: () => unwrap<Page<WorkspacePublic>>(sdk.workspacesListWorkspaces({ query: { limit: 200 } })),
  workspace: (id: string) => unwrap<WorkspacePublic>(sdk.workspacesGetWorkspace({ path: { workspace_id: id } })),
  createWorkspace: (name: string) => unwrap<WorkspacePublic>(sdk.workspacesCreateWorkspace({ body: { name } })),
  renameWorkspace: (id: string, name: string) =>
    unwrap<WorkspacePublic>(sdk.workspacesUpdateWorkspace({ path: { workspace_id: id }, body: { name } })),
  deleteWorkspace: (id: string) => unwrap(sdk.workspacesDeleteWorkspace({ path: { workspace_id: id } })),
  members: (id: string) =>
    unwrap<Page<MemberPublic>>(
      sdk.workspacesListMembers({ path: { workspace_id: id }, query: { limit: 1000, sort_by: "joined_at", sort_order: "asc" } }),
    ),
  updateMember: (id: string, userId: string, role: Role) =>
    unwrap<MemberPublic>(sdk.workspacesUpdateMember({ path: { workspace_id: id, user_id: userId }, body: { role } })),
  removeMember: (id: string, userId: string) =>
    unwrap(sdk.workspacesRemoveMember({ path: { workspace_id: id, user_id: userId } })),
  invitations: (id: string) =>
    unwrap<Page<InvitationPublic>>(sdk.workspacesListInvitations({ path: { workspace_id: id }, query: { limit: 1000 } })),
  invite: (id: string, email: string, role: Role) =>
    unwrap<InvitationCreated>(sdk.workspacesInvite({ path: { workspace_id: id }, body: { email, role } })),
  revokeInvitation: (id: string, invitationId: string) =>
    unwrap(sdk.workspacesRevokeInvitation({ path: { workspace_id: id, invitation_id: invitationId } })),

  // Projects, environments, services ------------------------------------------------------
  projects: (workspaceId: string) =>
    unwrap<Page<ProjectPublic>>(
      sdk.projectsListProjects({ path: { workspace_id: workspaceId }, query: { limit: 1000, sort_by: "name", sort_order: "asc" } }),
    ),
  createProject: (workspaceId: string, name: string, description = "") =>
    unwrap<ProjectDetail>(sdk.projectsCreateProject({ path: { workspace_id: workspaceId }, body: { name, description } })),
  project: (id: string) => unwrap<ProjectDetail>(sdk.projectsGetProject({ path: { project_id: id } })),
  deleteProject: (id: string) => unwrap(sdk.projectsDeleteProject({ path: { project_id: id } })),
  createEnvironment: (projectId: string, name: string) =>
    unwrap<EnvironmentPublic>(sdk.environmentsCreateEnvironment({ path: { project_id: projectId }, body: { name } })),
  createService: (projectId: string, body: ServiceCreate) =>
    unwrap<ServicePublic>(sdk.servicesCreateService({ path: { project_id: projectId }, body })),
  service: (id: string) => unwrap<ServicePublic>(sdk.servicesGetService({ path: { service_id: id } })),
  updateService: (id: string, body: ServiceUpdate) =>
    unwrap<ServicePublic>(sdk.servicesUpdateService({ path: { service_id: id }, body })),
  deleteService: (id: string) => unwrap(sdk.servicesDeleteService({ path: { service_id: id } })),

  // Deployments (API.md) -------------------------------------------------------------------
  deployments: (serviceId: string, environmentId: string, limit = 50) =>
    request<Page<Deployment>>("GET", `${V1}/services/${serviceId}/deployments`, {
      query: { environment_id: environmentId, limit },
    }),
  /** Every service's newest and live deployment in an environment, in one request (the canvas). */
  latestDeployments: (projectId: string, environmentId: string) =>
    unwrap<LatestDeployments>(
      sdk.deploymentsLatestDeployments({ path: { project_id: projectId }, query: { environment_id: environmentId } }),
    ),
  deployment: (id: string) => request<Deployment>("GET", `${V1}/deployments/${id}`),
  deploy: (serviceId: string, environmentId: string, commitSha?: string) =>
    request<Deployment>("POST", `${V1}/services/${serviceId}/deployments`, {
      body: { environment_id: environmentId, ...(commitSha ? { commit_sha: commitSha } : {}) },
    }),
  upload: (serviceId: string, environmentId: string, tarball: Blob) =>
    request<Deployment>("POST", `${V1}/services/${serviceId}/uploads`, {
      query: { environment_id: environmentId },
      raw: tarball,
      contentType: "application/gzip",
    }),
  deploymentAction: (id: string, action: "redeploy" | "rollback" | "restart" | "cancel") =>
    request<Deployment>("POST", `${V1}/deployments/${id}/${action}`),
  removeDeployment: (id: string) => request<void>("DELETE", `${V1}/deployments/${id}`),
  logs: (id: string, query: { stream?: string; since?: string; limit?: number; search?: string } = {}) =>
    request<{ items: LogLine[]; next: string | null }>("GET", `${V1}/deployments/${id}/logs`, { query }),
  metrics: (serviceId: string, environmentId: string, window: MetricsWindow) =>
    request<Metrics>("GET", `${V1}/services/${serviceId}/metrics`, {
      query: { environment_id: environmentId, window },
    }),

  // Configuration (API.md) -----------------------------------------------------------------
  variables: (serviceId: string, environmentId: string) =>
    request<Variables>("GET", `${V1}/services/${serviceId}/variables`, { query: { environment_id: environmentId } }),
  putVariables: (
    serviceId: string,
    environmentId: string,
    body: { variables: Record<string, string>; replace?: boolean; sealed?: string[] },
    deploy = false,
  ) =>
    request<Variables>("PUT", `${V1}/services/${serviceId}/variables`, {
      query: { environment_id: environmentId, deploy: deploy || undefined },
      body: { replace: false, ...body },
    }),
  deleteVariable: (serviceId: string, environmentId: string, key: string) =>
    request<void>("DELETE", `${V1}/services/${serviceId}/variables/${encodeURIComponent(key)}`, {
      query: { environment_id: environmentId },
    }),
  sharedVariables: (environmentId: string) =>
    request<Variables>("GET", `${V1}/environments/${environmentId}/shared-variables`),
  putSharedVariables: (environmentId: string, body: { variables: Record<string, string>; replace?: boolean }) =>
    request<Variables>("PUT", `${V1}/environments/${environmentId}/shared-variables`, { body: { replace: false, ...body } }),
  deleteSharedVariable: (environmentId: string, key: string) =>
    request<Variables>("DELETE", `${V1}/environments/${environmentId}/shared-variables/${encodeURIComponent(key)}`),

  domains: (serviceId: string, environmentId?: string) =>
    request<Page<Domain> | Domain[]>("GET", `${V1}/services/${serviceId}/domains`, {
      query: { environment_id: environmentId, limit: 1000 },
    }).then(itemsOf),
  addDomain: (serviceId: string, body: { hostname?: string; environment_id: string; target_port?: number }) =>
    request<Domain>("POST", `${V1}/services/${serviceId}/domains`, { body }),
  removeDomain: (id: string) => request<void>("DELETE", `${V1}/domains/${id}`),

  webhooks: (serviceId: string) =>
    request<Page<Webhook> | Webhook[]>("GET", `${V1}/services/${serviceId}/webhooks`).then(itemsOf),
  addWebhook: (serviceId: string, provider: "github" | "gitlab") =>
    request<WebhookCreated>("POST", `${V1}/services/${serviceId}/webhooks`, { body: { provider } }),
  removeWebhook: (id: string) => request<void>("DELETE", `${V1}/webhooks/${id}`),
};

function itemsOf<T>(value: Page<T> | T[]): T[] {
  return Array.isArray(value) ? value : value.items;
}
