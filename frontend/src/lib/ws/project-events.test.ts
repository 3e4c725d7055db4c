import { QueryClient } from "@tanstack/react-query";
import { describe, expect, it } from "vitest";
import type { Deployment, LatestDeployments, Page } from "@/lib/api/types";
import { keys } from "@/lib/queries";
import { applyProjectEvent, parseProjectEvent } from "./project-events";

const dep = (id: string, status: Deployment["status"]): Deployment => ({
  id,
  service_id: "s1",
  environment_id: "e1",
  status,
  created_at: "2026-01-01T00:00:00Z",
  updated_at: "2026-01-01T00:00:00Z",
});

describe("project events", () => {
  it("reads nested and flat deployment events", () => {
    expect(parseProjectEvent(JSON.stringify({ type: "deployment.status", deployment: dep("d1", "ACTIVE") }))).toMatchObject({
      type: "deployment.status",
      deployment: { id: "d1", status: "ACTIVE" },
      serviceId: "s1",
      environmentId: "e1",
    });
    expect(
      parseProjectEvent(JSON.stringify({ type: "deployment_status_changed", deployment_id: "d2", service_id: "s2", status: "FAILED" })),
    ).toMatchObject({ deployment: { id: "d2", status: "FAILED" }, serviceId: "s2" });
    expect(parseProjectEvent('{"type":"ping"}')).toBeNull();
    expect(parseProjectEvent("garbage")).toBeNull();
  });

  it("patches the cached deployment lists at once", () => {
    const qc = new QueryClient();
    qc.setQueryData<Page<Deployment>>(keys.deployments("s1", "e1"), {
      items: [dep("d1", "BUILDING")],
      total: 1,
      skip: 0,
      limit: 20,
      has_more: false,
    });
    applyProjectEvent(qc, "p1", parseProjectEvent(JSON.stringify({ type: "deployment.status", deployment: dep("d1", "ACTIVE") }))!);
    expect(qc.getQueryData<Page<Deployment>>(keys.deployments("s1", "e1"))?.items[0]?.status).toBe("ACTIVE");
  });

  it("patches the canvas' latest deployments and asks for them again", () => {
    const qc = new QueryClient();
    const building = dep("d1", "BUILDING");
    qc.setQueryData<LatestDeployments>(keys.latest("p1", "e1"), {
      environment_id: "e1",
      items: [{ service_id: "s1", latest: building, active: null }, { service_id: "s2", latest: null, active: null }],
    });
    applyProjectEvent(qc, "p1", parseProjectEvent(JSON.stringify({ type: "deployment.status", deployment: dep("d1", "ACTIVE") }))!);
    const latest = qc.getQueryData<LatestDeployments>(keys.latest("p1", "e1"));
    expect(latest?.items[0]?.latest?.status).toBe("ACTIVE");
    expect(latest?.items[1]).toEqual({ service_id: "s2", latest: null, active: null });
    expect(qc.getQueryState(keys.latest("p1", "e1"))?.isInvalidated).toBe(true);
  });
});
