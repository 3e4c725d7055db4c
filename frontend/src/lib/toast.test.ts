import { describe, expect, it, vi } from "vitest";

const calls: unknown[][] = [];
vi.mock("sonner", () => {
  const record = (type: string) => (...args: unknown[]) => calls.push([type, ...args]);
  return {
    toast: Object.assign(record("message"), {
      success: record("success"),
      error: record("error"),
      info: record("info"),
      warning: record("warning"),
      loading: record("loading"),
      message: record("message"),
      dismiss: record("dismiss"),
    }),
    Toaster: () => null,
  };
});

describe("toast, with sonner loaded on first use", () => {
  it("returns ids at once and forwards every call, in order, with its options", async () => {
    const { loadToaster, toast, toasterRequested } = await import("./toast");
    expect(toasterRequested()).toBe(false);
    const id = toast.loading("Uploading source…", { id: "upload" });
    toast.dismiss("upload");
    const generated = toast.success("Saved", { description: "They apply from the next deployment." });
    expect(id).toBe("upload");
    expect(typeof generated).toBe("string");
    expect(toasterRequested()).toBe(true);
    await loadToaster();
    await Promise.resolve();
    expect(calls).toEqual([
      ["loading", "Uploading source…", { id: "upload" }],
      ["dismiss", "upload"],
      ["success", "Saved", { description: "They apply from the next deployment.", id: generated }],
    ]);
  });

  it("problem+json errors become an error toast", async () => {
    const { toastError, loadToaster } = await import("./toast");
    calls.length = 0;
    toastError(new Error("boom"), "Could not save");
    await loadToaster();
    await Promise.resolve();
    expect(calls[0]?.[0]).toBe("error");
  });
});
