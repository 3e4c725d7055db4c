/**
 * What each workspace role may do: the dashboard's copy of the API's permission matrix
 * (backend/caboose/core/permissions.py). The API enforces it; the dashboard uses it to not offer
 * what a role may not do.
 */
import type { Role } from "@/lib/api/types";

export type Permission =
  | "workspace:read"
  | "workspace:update"
  | "workspace:delete"
  | "members:read"
  | "members:manage"
  | "ownership:manage"
  | "project:read"
  | "project:manage"
  | "service:manage"
  | "deploy"
  | "logs:read"
  | "variables:read-names"
  | "variables:read-values"
  | "variables:write"
  | "domains:manage"
  | "webhooks:manage";

const MEMBER: Permission[] = [
  "workspace:read",
  "members:read",
  "project:read",
  "deploy",
  "logs:read",
  "variables:read-names",
];
const ADMIN: Permission[] = [
  ...MEMBER,
  "workspace:update",
  "members:manage",
  "project:manage",
  "service:manage",
  "variables:read-values",
  "variables:write",
  "domains:manage",
  "webhooks:manage",
];
const OWNER: Permission[] = [...ADMIN, "workspace:delete", "ownership:manage"];

const MATRIX: Record<Role, ReadonlySet<Permission>> = {
  member: new Set(MEMBER),
  admin: new Set(ADMIN),
  owner: new Set(OWNER),
};

export function can(role: Role | null | undefined, permission: Permission): boolean {
  return role ? MATRIX[role].has(permission) : false;
}

export const ROLE_LABELS: Record<Role, string> = { owner: "Owner", admin: "Admin", member: "Member" };
export const ROLE_DESCRIPTIONS: Record<Role, string> = {
  member: "Deploy, read logs and metrics, see variable names",
  admin: "Everything a member can, plus settings, variable values, domains and members",
  owner: "Everything, including deleting the workspace and managing owners",
};
