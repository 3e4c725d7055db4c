import type { ExternalToast } from "sonner";
import { problemMessage } from "@/lib/api/problem";

/**
 * Toasts, with sonner loaded on first use (or once the page has settled: components/ui/toaster.tsx)
 * rather than in every page's first bundle. Same calls as sonner's `toast`; each is made once the
 * library is there, in order (a loading toast, then its dismissal), and sonner shows toasts made
 * before its <Toaster> subscribed.
 */
type Sonner = typeof import("sonner");
type Message = Parameters<Sonner["toast"]["success"]>[0];
type Id = string | number;

let sonner: Promise<Sonner> | undefined;
const mountListeners = new Set<() => void>();
let mountRequested = false;

/** Loads sonner (once) and asks the lazy <Toaster> to mount. */
export function loadToaster(): Promise<Sonner> {
  sonner ??= import("sonner");
  if (!mountRequested) {
    mountRequested = true;
    for (const listener of mountListeners) listener();
  }
  return sonner;
}

/** For the lazy <Toaster>: whether it should mount, and a subscription for when it should. */
export function toasterRequested(): boolean {
  return mountRequested;
}
export function onToasterRequested(listener: () => void): () => void {
  mountListeners.add(listener);
  return () => mountListeners.delete(listener);
}

let nextId = 0;
const kind =
  (type: "success" | "error" | "info" | "warning" | "loading" | "message") =>
  (message: Message, data?: ExternalToast): Id => {
    // sonner's own ids are numbers counted from 1: ours cannot collide with them.
    const id = data?.id ?? `toast-${++nextId}`;
    void loadToaster().then(({ toast: t }) => t[type](message, { ...data, id }));
    return id;
  };

export const toast = Object.assign((message: Message, data?: ExternalToast) => kind("message")(message, data), {
  success: kind("success"),
  error: kind("error"),
  info: kind("info"),
  warning: kind("warning"),
  loading: kind("loading"),
  message: kind("message"),
  dismiss: (id?: Id): void => {
    void loadToaster().then(({ toast: t }) => t.dismiss(id));
  },
});

export function toastError(error: unknown, fallbackTitle?: string): void {
  const { title, description } = problemMessage(error);
  toast.error(fallbackTitle && title === "Something went wrong" ? fallbackTitle : title, { description });
}
