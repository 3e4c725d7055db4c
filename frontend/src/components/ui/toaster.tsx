"use client";
import dynamic from "next/dynamic";
import * as React from "react";
import { whenSettled } from "@/lib/settle";
import { loadToaster, onToasterRequested, toasterRequested } from "@/lib/toast";

const SonnerToaster = dynamic(() => import("sonner").then((m) => m.Toaster), { ssr: false });

/**
 * sonner's <Toaster>, mounted on the first toast (lib/toast.ts) or once the page has settled
 * (so the first toast after that shows at once), not in the first render of every page.
 */
export function LazyToaster() {
  const requested = React.useSyncExternalStore(onToasterRequested, toasterRequested, () => false);
  React.useEffect(() => (requested ? undefined : whenSettled(() => void loadToaster())), [requested]);
  if (!requested) return null;
  return (
    <SonnerToaster
      theme="dark"
      position="bottom-right"
      closeButton
      toastOptions={{
        classNames: {
          toast: "!bg-gray-900/95 !backdrop-blur-xl !border-white/10 !text-slate-100",
          description: "!text-slate-400",
        },
      }}
    />
  );
}
