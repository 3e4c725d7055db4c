import { describe, expect, it } from "vitest";
import { ApiError, asProblem, problemMessage } from "./problem";

describe("problem+json", () => {
  it("reads title and detail into a toast", () => {
    const e = new ApiError(409, asProblem({ title: "Conflict", detail: "A project named web already exists", status: 409 }));
    expect(problemMessage(e)).toEqual({ title: "Conflict", description: "A project named web already exists" });
    expect(e.message).toBe("Conflict: A project named web already exists");
  });
  it("uses the first field error when there is no detail, and finds field errors", () => {
    const e = new ApiError(422, asProblem({ title: "Validation failed", errors: [{ field: "name", message: "must be a DNS label" }] }));
    expect(problemMessage(e)).toEqual({ title: "Validation failed", description: "name must be a DNS label" });
    expect(e.fieldError("name")).toBe("must be a DNS label");
  });
  it("falls back to a title from the status", () => {
    expect(problemMessage(new ApiError(429, undefined)).title).toBe("Too many requests");
    expect(problemMessage(new ApiError(502, asProblem("<html>Bad gateway</html>"))).description).toContain("Bad gateway");
    expect(problemMessage(new Error("x"))).toEqual({ title: "Something went wrong", description: "x" });
  });
});
