"use client";
import { Dialog as D } from "radix-ui";
import { X } from "lucide-react";
import * as React from "react";
import { cn } from "@/lib/utils";

export const Dialog = D.Root;
export const DialogTrigger = D.Trigger;
export const DialogClose = D.Close;

/**
 * Our dialogs and the sheet open from state (the URL, a menu item, a button's handler), never from
 * a Radix trigger, so Radix has nothing to give the focus back to when they close and it fell to
 * the page's body. Remember what had the focus when one opened and return it there.
 */
function useReturnFocus() {
  const openedFrom = React.useRef<HTMLElement | null>(null);
  const remember = React.useCallback(() => {
    openedFrom.current = document.activeElement instanceof HTMLElement ? document.activeElement : null;
  }, []);
  const onCloseAutoFocus = React.useCallback((event: Event) => {
    const target = openedFrom.current;
    const active = document.activeElement;
    // Only when the focus would be lost (on the body, or in what is closing): a click outside a
    // non-modal sheet that focused something else keeps it there.
    const lost = !active || active === document.body || (event.currentTarget as Node | null)?.contains(active);
    if (target?.isConnected && lost) {
      event.preventDefault();
      target.focus();
    }
  }, []);
  return { remember, onCloseAutoFocus };
}

export function DialogContent({
  title,
  description,
  children,
  className,
  ...props
}: React.ComponentProps<typeof D.Content> & { title: React.ReactNode; description?: React.ReactNode }) {
  const focus = useReturnFocus();
  return (
    <D.Portal>
      <D.Overlay className="fixed inset-0 z-50 bg-slate-950/70 backdrop-blur-sm" />
      <D.Content
        onOpenAutoFocus={focus.remember}
        onCloseAutoFocus={focus.onCloseAutoFocus}
        className={cn(
          "card fixed top-1/2 left-1/2 z-50 max-h-[90vh] w-[calc(100vw-2rem)] max-w-lg -translate-x-1/2 -translate-y-1/2 overflow-y-auto p-6 shadow-2xl shadow-black/50",
          className,
        )}
        {...(description ? {} : { "aria-describedby": undefined })}
        {...props}
      >
        <div className="mb-4 flex items-start justify-between gap-4">
          <div>
            <D.Title className="text-base font-semibold text-white">{title}</D.Title>
            {description ? <D.Description className="mt-1 text-sm text-slate-400">{description}</D.Description> : null}
          </div>
          <D.Close className="rounded-md p-1 text-slate-400 hover:bg-white/5 hover:text-white" aria-label="Close">
            <X className="h-4 w-4" />
          </D.Close>
        </div>
        {children}
      </D.Content>
    </D.Portal>
  );
}

/** A right-hand side sheet (Railway's service panel); full screen on a phone. */
export function SheetContent({
  title,
  children,
  className,
  ...props
}: React.ComponentProps<typeof D.Content> & { title: string }) {
  const focus = useReturnFocus();
  return (
    <D.Portal>
      {/* No backdrop blur here: the panel stays open while logs stream and statuses pulse behind
          it, and re-blurring the whole page on every frame is what made software-rendered
          browsers stutter (bench/dashboard.py). */}
      <D.Overlay className="fixed inset-0 z-40 bg-slate-950/70" />
      <D.Content
        aria-describedby={undefined}
        tabIndex={-1}
        // Focus the panel itself, not its first button (a Deploy button lit up on open).
        onOpenAutoFocus={(e) => {
          e.preventDefault();
          focus.remember();
          (e.currentTarget as HTMLElement | null)?.focus();
        }}
        onCloseAutoFocus={focus.onCloseAutoFocus}
        className={cn(
          "fixed inset-y-0 right-0 z-40 flex w-full flex-col border-l border-white/10 bg-gray-900 shadow-2xl shadow-black/60 outline-none sm:w-[min(920px,92vw)]",
          className,
        )}
        {...props}
      >
        <D.Title className="sr-only">{title}</D.Title>
        {children}
      </D.Content>
    </D.Portal>
  );
}
