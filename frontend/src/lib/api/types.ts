/**
 * Types of the API. Those the server already publishes come from the generated client
 * (src/client/types.gen.ts); the rest follow API.md until their routes land, at which point
 * `npm run generate:client` brings their generated twins and these can be swapped over.
 */
export type {
  ApiTokenCreated,
  ApiTokenPublic,
  EnvironmentPublic,
  InvitationCreated,
  InvitationPublic,
  MePublic,
  MemberPublic,
  ProjectDetail,
  ProjectPublic,
  RestartPolicy,
  Role,
  ServicePublic,
  ServiceCreate,
  ServiceUpdate,
  WorkspaceMembership,
  WorkspacePublic,
} from "@/client/types.gen";

export interface Page<T> {
  items: T[];
  total: number;
  skip: number;
  limit: number;
  has_more: boolean;
}

/** `GET /auth/setup` (proposed): what the sign-in pages need to know before anyone signs in. */
export type { SetupState } from "@/client/types.gen";

/** `GET /projects/{id}/deployments/latest`: per service, its newest and its live deployment. */
export interface LatestDeployment {
  service_id: string;
  latest: Deployment | null;
  active: Deployment | null;
}
export interface LatestDeployments {
  environment_id: string;
  items: LatestDeployment[];
}

export const DEPLOYMENT_STATUSES = [
  "QUEUED",
  "BUILDING",
  "DEPLOYING",
  "ACTIVE",
  "FAILED",
  "CRASHED",
  "CANCELLED",
  "REMOVED",
] as const;
export type DeploymentStatus = (typeof DEPLOYMENT_STATUSES)[number];
export const IN_PROGRESS: ReadonlySet<string> = new Set(["QUEUED", "BUILDING", "DEPLOYING"]);

export interface Replica {
  index: number;
  port?: number | null;
  status?: string | null;
  restarts?: number | null;
  pid?: number | null;
}

export interface Deployment {
  id: string;
  service_id: string;
  environment_id: string;
  build_id?: string | null;
  status: DeploymentStatus;
  status_reason?: string | null;
  created_at: string;
  updated_at: string;
  started_at?: string | null;
  finished_at?: string | null;
  commit_sha?: string | null;
  commit_message?: string | null;
  commit_author?: string | null;
  trigger?: string | null;
  url?: string | null;
  replicas?: Replica[];
}

export type LogStream = "build" | "stdout" | "stderr" | "system";
export interface LogLine {
  id: string;
  ts: string;
  stream: LogStream | string;
  replica?: number | null;
  line: string;
}

export interface Variables {
  /** KEY → value, or "*****" where masked. */
  variables: Record<string, string>;
  /** Keys whose value is sealed (never readable again). */
  sealed?: string[];
  /** Whether unsealed values are shown (admins, owners) or masked (members). */
  values_visible?: boolean;
  /** Keys whose stored value no longer decrypts; shown masked until set again. */
  undecryptable?: string[];
}

export interface Domain {
  id: string;
  service_id: string;
  environment_id: string;
  hostname: string;
  kind: "generated" | "custom";
  status?: string;
  target_port?: number | null;
  created_at?: string;
}

export interface Webhook {
  id: string;
  service_id: string;
  provider: "github" | "gitlab";
  is_active?: boolean;
  last_delivery_at?: string | null;
  last_delivery_status?: string | null;
  created_at?: string;
  url?: string;
}
export interface WebhookCreated extends Webhook {
  secret: string;
}

/** `GET /services/{id}/metrics`: ServiceMetricsPublic (older draft field names still read). */
export interface MetricPoint {
  at?: string;
  cpu_percent?: number | null;
  memory_bytes?: number | null;
  ts?: string;
  cpu?: number | null;
  memory_mb?: number | null;
}
export interface ReplicaSeries {
  index?: number;
  replica?: number;
  restarts?: number;
  points: MetricPoint[];
}
export interface Metrics {
  window?: string;
  resolution_seconds?: number;
  replicas: ReplicaSeries[];
}

export type MetricsWindow = "1h" | "6h" | "24h";
