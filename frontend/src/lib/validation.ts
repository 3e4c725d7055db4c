/**
 * Client-side checks mirroring the API's validators (schemas/projects.py), so a form says what is
 * wrong before a round trip. The API stays the authority: its 422s are shown too.
 */
import type { RestartPolicy, ServiceUpdate } from "@/lib/api/types";

const DNS_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

export function validateDnsLabel(value: string): string | undefined {
  if (!value) return "A name is required";
  if (!DNS_LABEL.test(value)) return "Lowercase letters, digits and hyphens (1–63), starting and ending with a letter or digit";
  return undefined;
}

/** What the user probably meant as a DNS label: "My API" → "my-api". */
export function toDnsLabel(value: string): string {
  return value
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, "-")
    .replace(/-+/g, "-")
    .replace(/^-|-$/g, "")
    .slice(0, 63);
}

export function validateEmail(value: string): string | undefined {
  const v = value.trim();
  const at = v.lastIndexOf("@");
  if (at < 1 || !v.slice(at + 1).includes(".") || /\s/.test(v)) return "Enter an email address";
  return undefined;
}

export function validateNewPassword(value: string): string | undefined {
  if (value.length < 10) return "At least 10 characters";
  return undefined;
}

export function validateRepoUrl(value: string): string | undefined {
  if (!value) return undefined;
  if (/\s/.test(value)) return "No spaces";
  if (/^git@[^:/]+:[A-Za-z0-9._~+\/-]+$/.test(value)) return undefined;
  try {
    const url = new URL(value);
    if (url.protocol !== "https:" && url.protocol !== "http:") throw new Error();
    if (url.pathname.replace(/\//g, "") === "") return "Name the repository, e.g. https://github.com/owner/repo";
    if (url.search || url.hash) return "No query string or fragment";
    return undefined;
  } catch {
    return "An https://, http:// or git@host:path repository URL";
  }
}

export function validateBranch(value: string): string | undefined {
  if (!value) return "A branch is required";
  if (/[\s~^:?*[\\]/.test(value) || value.startsWith("-") || value.includes("..") || value.endsWith("/") || value.endsWith(".") || value.endsWith(".lock"))
    return "Not a valid branch name";
  return undefined;
}

export function validateRootDirectory(value: string): string | undefined {
  if (value.startsWith("/")) return "Relative to the repository root (no leading /)";
  if (value.split("/").includes("..")) return "May not contain ..";
  return undefined;
}

export function validateHealthcheckPath(value: string): string | undefined {
  if (!value) return undefined;
  if (!value.startsWith("/") || value.startsWith("//")) return "A path starting with /, like /health";
  if (/[\s#]/.test(value)) return "No spaces or #";
  return undefined;
}

const CRON_RANGES: [string, number, number][] = [
  ["minute", 0, 59],
  ["hour", 0, 23],
  ["day of month", 1, 31],
  ["month", 1, 12],
  ["day of week", 0, 7],
];
const NAMES = /^(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec|sun|mon|tue|wed|thu|fri|sat)$/i;

export function validateCron(value: string): string | undefined {
  if (!value.trim()) return undefined;
  const fields = value.trim().split(/\s+/);
  if (fields.length !== 5) return "5 fields: minute hour day-of-month month day-of-week";
  for (let i = 0; i < 5; i++) {
    const [name, low, high] = CRON_RANGES[i]!;
    for (const item of fields[i]!.split(",")) {
      const [base = "", step] = item.split("/");
      if (step !== undefined && !/^\d+$/.test(step)) return `${name}: bad step in ${item}`;
      if (base === "*") continue;
      for (const part of base.split("-")) {
        if (NAMES.test(part)) continue;
        if (!/^\d+$/.test(part) || Number(part) < low || Number(part) > high) return `${name}: ${part} is outside ${low}–${high}`;
      }
    }
  }
  return undefined;
}

function intInRange(value: string, low: number, high: number): string | undefined {
  if (value === "") return undefined;
  if (!/^\d+$/.test(value)) return "A whole number";
  const n = Number(value);
  if (n < low || n > high) return `Between ${low} and ${high}`;
  return undefined;
}

/** The service settings form, as strings (what inputs hold). */
export interface ServiceSettingsForm {
  name: string;
  repo_url: string;
  branch: string;
  root_directory: string;
  build_command: string;
  start_command: string;
  pre_deploy_command: string;
  healthcheck_path: string;
  healthcheck_timeout: string;
  num_replicas: string;
  restart_policy_type: "" | RestartPolicy;
  restart_policy_max_retries: string;
  watch_patterns: string;
  memory_limit_mb: string;
  cron_schedule: string;
}

export type FormErrors<T> = Partial<Record<keyof T, string>>;

export function validateServiceSettings(form: ServiceSettingsForm): FormErrors<ServiceSettingsForm> {
  const errors: FormErrors<ServiceSettingsForm> = {
    name: validateDnsLabel(form.name),
    repo_url: form.repo_url.includes("***") ? undefined : validateRepoUrl(form.repo_url),
    branch: validateBranch(form.branch),
    root_directory: validateRootDirectory(form.root_directory),
    healthcheck_path: validateHealthcheckPath(form.healthcheck_path),
    healthcheck_timeout: intInRange(form.healthcheck_timeout, 1, 3600),
    num_replicas: intInRange(form.num_replicas, 1, 20),
    restart_policy_max_retries: intInRange(form.restart_policy_max_retries, 0, 100),
    memory_limit_mb: intInRange(form.memory_limit_mb, 64, 65536),
    cron_schedule: validateCron(form.cron_schedule),
  };
  for (const key of Object.keys(errors) as (keyof ServiceSettingsForm)[]) if (!errors[key]) delete errors[key];
  return errors;
}

const blank = (v: string) => (v.trim() === "" ? null : v.trim());
const int = (v: string) => (v.trim() === "" ? null : Number(v));

/** The PATCH body: only what changed from `initial`, blanks as null. */
export function serviceSettingsPatch(initial: ServiceSettingsForm, form: ServiceSettingsForm): ServiceUpdate {
  const out: Record<string, unknown> = {};
  const changed = (k: keyof ServiceSettingsForm) => initial[k] !== form[k];
  if (changed("name")) out.name = form.name.trim();
  if (changed("repo_url")) out.repo_url = blank(form.repo_url);
  if (changed("branch")) out.branch = form.branch.trim();
  if (changed("root_directory")) out.root_directory = form.root_directory.trim();
  for (const k of ["build_command", "start_command", "pre_deploy_command", "healthcheck_path", "cron_schedule"] as const) {
    if (changed(k)) out[k] = blank(form[k]);
  }
  for (const k of ["healthcheck_timeout", "num_replicas", "restart_policy_max_retries", "memory_limit_mb"] as const) {
    if (changed(k)) out[k] = int(form[k]);
  }
  if (changed("restart_policy_type")) out.restart_policy_type = form.restart_policy_type || null;
  if (changed("watch_patterns")) {
    const patterns = form.watch_patterns.split("\n").map((p) => p.trim()).filter(Boolean);
    out.watch_patterns = patterns.length ? patterns : null;
  }
  return out as ServiceUpdate;
}

export function serviceToForm(s: {
  name: string;
  repo_url?: string | null;
  branch: string;
  root_directory: string;
  build_command?: string | null;
  start_command?: string | null;
  pre_deploy_command?: string | null;
  healthcheck_path?: string | null;
  healthcheck_timeout?: number | null;
  num_replicas?: number | null;
  restart_policy_type?: RestartPolicy | null;
  restart_policy_max_retries?: number | null;
  watch_patterns?: string[] | null;
  memory_limit_mb?: number | null;
  cron_schedule?: string | null;
}): ServiceSettingsForm {
  const str = (v: string | number | null | undefined) => (v === null || v === undefined ? "" : String(v));
  return {
    name: s.name,
    repo_url: str(s.repo_url),
    branch: s.branch,
    root_directory: s.root_directory,
    build_command: str(s.build_command),
    start_command: str(s.start_command),
    pre_deploy_command: str(s.pre_deploy_command),
    healthcheck_path: str(s.healthcheck_path),
    healthcheck_timeout: str(s.healthcheck_timeout),
    num_replicas: str(s.num_replicas),
    restart_policy_type: s.restart_policy_type ?? "",
    restart_policy_max_retries: str(s.restart_policy_max_retries),
    watch_patterns: (s.watch_patterns ?? []).join("\n"),
    memory_limit_mb: str(s.memory_limit_mb),
    cron_schedule: str(s.cron_schedule),
  };
}
