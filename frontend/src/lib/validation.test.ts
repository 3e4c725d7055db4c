import { describe, expect, it } from "vitest";
import {
  serviceSettingsPatch,
  serviceToForm,
  toDnsLabel,
  validateBranch,
  validateCron,
  validateDnsLabel,
  validateEmail,
  validateHealthcheckPath,
  validateRepoUrl,
  validateServiceSettings,
} from "./validation";

const service = {
  name: "api",
  repo_url: "https://github.com/acme/api",
  branch: "main",
  root_directory: "",
  build_command: null,
  start_command: "node server.js",
  pre_deploy_command: null,
  healthcheck_path: "/health",
  healthcheck_timeout: 60,
  num_replicas: 2,
  restart_policy_type: "ON_FAILURE" as const,
  restart_policy_max_retries: 5,
  watch_patterns: ["src/**"],
  memory_limit_mb: null,
  cron_schedule: null,
};

describe("field validators", () => {
  it("DNS labels", () => {
    expect(validateDnsLabel("my-api")).toBeUndefined();
    expect(validateDnsLabel("My_API")).toBeDefined();
    expect(validateDnsLabel("-x")).toBeDefined();
    expect(validateDnsLabel("")).toBeDefined();
    expect(toDnsLabel("  My Shiny API!! ")).toBe("my-shiny-api");
  });
  it("emails", () => {
    expect(validateEmail("a@b.co")).toBeUndefined();
    expect(validateEmail("nope")).toBeDefined();
    expect(validateEmail("a b@c.d")).toBeDefined();
  });
  it("repository URLs: https, http and git@ only", () => {
    expect(validateRepoUrl("https://github.com/acme/api")).toBeUndefined();
    expect(validateRepoUrl("git@github.com:acme/api.git")).toBeUndefined();
    expect(validateRepoUrl("")).toBeUndefined();
    expect(validateRepoUrl("file:///etc")).toBeDefined();
    expect(validateRepoUrl("ssh://git@x/y")).toBeDefined();
    expect(validateRepoUrl("https://github.com/")).toBeDefined();
    expect(validateRepoUrl("https://github.com/a/b?x=1")).toBeDefined();
  });
  it("branches, health paths and cron", () => {
    expect(validateBranch("feature/x")).toBeUndefined();
    expect(validateBranch("a..b")).toBeDefined();
    expect(validateBranch("-rf")).toBeDefined();
    expect(validateHealthcheckPath("/health")).toBeUndefined();
    expect(validateHealthcheckPath("health")).toBeDefined();
    expect(validateHealthcheckPath("//evil")).toBeDefined();
    expect(validateCron("*/5 * * * *")).toBeUndefined();
    expect(validateCron("0 9 * jan-mar mon-fri")).toBeUndefined();
    expect(validateCron("0 24 * * *")).toMatch(/hour/);
    expect(validateCron("* * *")).toMatch(/5 fields/);
  });
});

describe("service settings form", () => {
  it("reports each invalid field", () => {
    const form = { ...serviceToForm(service), num_replicas: "50", memory_limit_mb: "12", healthcheck_path: "x" };
    expect(Object.keys(validateServiceSettings(form)).sort()).toEqual(["healthcheck_path", "memory_limit_mb", "num_replicas"]);
    expect(validateServiceSettings(serviceToForm(service))).toEqual({});
  });
  it("does not complain about a masked repository URL it did not change", () => {
    const form = serviceToForm({ ...service, repo_url: "https://***@github.com/acme/api" });
    expect(validateServiceSettings(form).repo_url).toBeUndefined();
  });
  it("patches only what changed, blanks as null, numbers as numbers", () => {
    const initial = serviceToForm(service);
    const form = { ...initial, start_command: "", num_replicas: "3", watch_patterns: "src/**\n\n docs/** ", restart_policy_type: "" as const };
    expect(serviceSettingsPatch(initial, form)).toEqual({
      start_command: null,
      num_replicas: 3,
      watch_patterns: ["src/**", "docs/**"],
      restart_policy_type: null,
    });
    expect(serviceSettingsPatch(initial, initial)).toEqual({});
  });
});
