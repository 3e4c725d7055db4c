"use client";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import * as React from "react";
import { Button } from "@/components/ui/button";
import { Dialog, DialogContent } from "@/components/ui/dialog";
import { Field, Input } from "@/components/ui/input";
import { api, type ProjectDetail } from "@/lib/api";
import { keys } from "@/lib/queries";
import { validateDnsLabel } from "@/lib/validation";

export function NewEnvironmentDialog({ project, open, onOpenChange, onCreated }: {
  project: ProjectDetail;
  open: boolean;
  onOpenChange: (o: boolean) => void;
  onCreated: (id: string) => void;
}) {
  const [name, setName] = React.useState("");
  const queryClient = useQueryClient();
  const error = name ? validateDnsLabel(name) : undefined;
  const create = useMutation({
    mutationFn: () => api.createEnvironment(project.id, name),
    onSuccess: async (env) => {
      await queryClient.invalidateQueries({ queryKey: keys.project(project.id) });
      onOpenChange(false);
      setName("");
      onCreated(env.id);
    },
  });
  return (
    <Dialog open={open} onOpenChange={onOpenChange}>
      <DialogContent title="New environment" description="Each environment has its own deployments, variables and domains.">
        <form className="flex flex-col gap-4" onSubmit={(e) => { e.preventDefault(); if (!validateDnsLabel(name)) create.mutate(); }}>
          <Field id="env-name" label="Name" error={error}>
            <Input value={name} onChange={(e) => setName(e.target.value.toLowerCase())} placeholder="staging" autoFocus />
          </Field>
          <div className="flex justify-end gap-2">
            <Button type="button" variant="ghost" onClick={() => onOpenChange(false)}>Cancel</Button>
            <Button type="submit" loading={create.isPending} disabled={!name || !!error}>Create environment</Button>
          </div>
        </form>
      </DialogContent>
    </Dialog>
  );
}
