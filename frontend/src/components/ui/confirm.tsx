"use client";
import * as React from "react";
import { Button } from "./button";
import { Dialog, DialogContent } from "./dialog";
import { Field, Input } from "./input";

/** A destructive confirmation; with `typeToConfirm` the user must type that word first. */
export function ConfirmDialog({
  open,
  onOpenChange,
  title,
  description,
  confirmLabel = "Delete",
  typeToConfirm,
  onConfirm,
  pending,
}: {
  open: boolean;
  onOpenChange: (open: boolean) => void;
  title: string;
  description: React.ReactNode;
  confirmLabel?: string;
  typeToConfirm?: string;
  onConfirm: () => void;
  pending?: boolean;
}) {
  const [typed, setTyped] = React.useState("");
  React.useEffect(() => {
    if (!open) setTyped("");
  }, [open]);
  const ready = !typeToConfirm || typed === typeToConfirm;
  return (
    <Dialog open={open} onOpenChange={onOpenChange}>
      <DialogContent title={title} description={description}>
        <form
          onSubmit={(e) => {
            e.preventDefault();
            if (ready) onConfirm();
          }}
          className="flex flex-col gap-4"
        >
          {typeToConfirm ? (
            <Field id="confirm-text" label={<>Type <span className="font-mono text-red-300">{typeToConfirm}</span> to confirm</>}>
              <Input value={typed} onChange={(e) => setTyped(e.target.value)} autoComplete="off" autoFocus />
            </Field>
          ) : null}
          <div className="flex justify-end gap-2">
            <Button type="button" variant="ghost" onClick={() => onOpenChange(false)}>
              Cancel
            </Button>
            <Button type="submit" variant="danger" disabled={!ready} loading={pending}>
              {confirmLabel}
            </Button>
          </div>
        </form>
      </DialogContent>
    </Dialog>
  );
}
