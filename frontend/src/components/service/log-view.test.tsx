import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { act, fireEvent, render, screen } from "@testing-library/react";
import * as React from "react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { LogView } from "./log-view";

class FakeSocket {
  static instances: FakeSocket[] = [];
  static OPEN = 1;
  readyState = 0;
  url: string;
  onopen: (() => void) | null = null;
  onmessage: ((e: { data: string }) => void) | null = null;
  onclose: ((e: { code: number }) => void) | null = null;
  constructor(url: string) {
    this.url = url;
    FakeSocket.instances.push(this);
  }
  open() {
    this.readyState = 1;
    this.onopen?.();
  }
  send() {}
  emit(message: object) {
    this.onmessage?.({ data: JSON.stringify(message) });
  }
  close(code = 1000) {
    this.readyState = 3;
    this.onclose?.({ code });
  }
}

const log = (n: number, extra: object = {}) => ({ type: "log", id: `${n}-0`, ts: "2026-01-01T00:00:00.000Z", stream: "stdout", replica: 0, line: `line ${n}`, ...extra });

function renderView() {
  const client = new QueryClient();
  return render(
    <QueryClientProvider client={client}>
      <LogView deploymentId="dep-1" />
    </QueryClientProvider>,
  );
}

const flushFrames = async () => {
  await act(async () => {
    await new Promise((r) => setTimeout(r, 150));
  });
};

describe("LogView", () => {
  beforeEach(() => {
    FakeSocket.instances = [];
    vi.stubGlobal("WebSocket", FakeSocket);
  });
  afterEach(() => vi.unstubAllGlobals());

  it("connects to the deployment's log socket and shows lines as they arrive", async () => {
    renderView();
    const socket = FakeSocket.instances[0]!;
    expect(socket.url).toMatch(/\/api\/v1\/deployments\/dep-1\/logs\/ws$/);
    act(() => socket.open());
    expect(screen.getByText(/Waiting for output/)).toBeInTheDocument();
    act(() => {
      for (let i = 0; i < 300; i++) socket.emit(log(i));
      socket.emit({ type: "ping" });
    });
    await flushFrames();
    const view = screen.getByTestId("log-view");
    expect(view).toHaveAttribute("data-lines", "300");
    expect(screen.getByText("Live")).toBeInTheDocument();
  });

  it("takes the API's batched frames", async () => {
    renderView();
    const socket = FakeSocket.instances[0]!;
    act(() => {
      socket.open();
      socket.emit({ type: "status", deployment_id: "dep-1", status: "BUILDING" });
      socket.emit({ type: "logs", items: Array.from({ length: 50 }, (_, i) => ({ ...log(i), type: undefined })) });
    });
    await flushFrames();
    expect(screen.getByTestId("log-view")).toHaveAttribute("data-lines", "50");
  });

  it("filters by search and stream", async () => {
    renderView();
    const socket = FakeSocket.instances[0]!;
    act(() => {
      socket.open();
      socket.emit(log(1, { line: "\u001b[32mready\u001b[0m on 3000" }));
      socket.emit(log(2, { stream: "stderr", line: "boom" }));
      socket.emit(log(3, { stream: "build", replica: null, line: "npm ci" }));
    });
    await flushFrames();
    fireEvent.change(screen.getByRole("searchbox", { name: "Search logs" }), { target: { value: "ready" } });
    await act(async () => {
      await new Promise((r) => setTimeout(r, 200));
    });
    expect(screen.getByTestId("log-view")).toHaveAttribute("data-visible", "1");
    fireEvent.change(screen.getByRole("searchbox", { name: "Search logs" }), { target: { value: "" } });
    fireEvent.click(screen.getByRole("button", { name: "stderr" }));
    await flushFrames();
    expect(screen.getByTestId("log-view")).toHaveAttribute("data-visible", "1");
    expect(screen.getByRole("button", { name: "stderr" })).toHaveAttribute("aria-pressed", "true");
  });

  it("holds new lines while paused and shows them on resume", async () => {
    renderView();
    const socket = FakeSocket.instances[0]!;
    act(() => socket.open());
    fireEvent.click(screen.getByRole("button", { name: /pause/i }));
    act(() => {
      for (let i = 0; i < 5; i++) socket.emit(log(i));
    });
    await flushFrames();
    expect(screen.getByTestId("log-view")).toHaveAttribute("data-lines", "0");
    expect(screen.getByRole("button", { name: /resume \(5 new\)/i })).toBeInTheDocument();
    fireEvent.click(screen.getByRole("button", { name: /resume/i }));
    await flushFrames();
    expect(screen.getByTestId("log-view")).toHaveAttribute("data-lines", "5");
  });

  it("resumes from the last line it saw after a drop", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout"] });
    try {
      renderView();
      const socket = FakeSocket.instances[0]!;
      act(() => {
        socket.open();
        socket.emit(log(7));
        socket.close(1006);
      });
      await act(async () => {
        vi.advanceTimersByTime(1000);
      });
      expect(FakeSocket.instances[1]?.url).toMatch(/\?since=7-0$/);
    } finally {
      vi.useRealTimers();
    }
  });
});
