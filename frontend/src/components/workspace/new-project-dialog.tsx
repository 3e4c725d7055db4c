"use client";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useRouter } from "next/navigation";
import * as React from "react";
import { Button } from "@/components/ui/button";
import { Dialog, DialogContent } from "@/components/ui/dialog";
import { Field, Input, Textarea } from "@/components/ui/input";
import { api } from "@/lib/api";
import { keys } from "@/lib/queries";
import { toDnsLabel, validateDnsLabel } from "@/lib/validation";

export function NewProjectDialog({ workspaceId, open, onOpenChange }: { workspaceId: string; open: boolean; onOpenChange: (o: boolean) => void }) {
  const [name, setName] = React.useState("");
  const [description, setDescription] = React.useState("");
  const [touched, setTouched] = React.useState(false);
  const router = useRouter();
  const queryClient = useQueryClient();
  const error = touched ? validateDnsLabel(name) : undefined;
  const create = useMutation({
    mutationFn: () => api.createProject(workspaceId, name, description.trim()),
    onSuccess: (project) => {
      queryClient.setQueryData(keys.project(project.id), project);
      void queryClient.invalidateQueries({ queryKey: keys.projects(workspaceId) });
      onOpenChange(false);
      router.push(`/p/${project.id}`);
    },
  });
  return (
    <Dialog open={open} onOpenChange={onOpenChange}>
      <DialogContent title="New project" description="A project groups services that ship together. It starts with a production environment.">
        <form
          className="flex flex-col gap-4"
          onSubmit={(e) => {
            e.preventDefault();
            setTouched(true);
            if (!validateDnsLabel(name)) create.mutate();
          }}
        >
          <Field id="project-name" label="Name" hint="Used in hostnames: lowercase letters, digits and hyphens." error={error}>
            <Input
              value={name}
              onChange={(e) => setName(toDnsLabel(e.target.value.endsWith(" ") ? `${e.target.value.trimEnd()}-` : e.target.value) || e.target.value.toLowerCase())}
              onBlur={() => setTouched(true)}
              placeholder="my-app"
              autoFocus
              maxLength={63}
            />
          </Field>
          <Field id="project-description" label="Description (optional)">
            <Textarea rows={2} value={description} onChange={(e) => setDescription(e.target.value)} maxLength={2000} />
          </Field>
          <div className="flex justify-end gap-2">
            <Button type="button" variant="ghost" onClick={() => onOpenChange(false)}>
              Cancel
            </Button>
            <Button type="submit" loading={create.isPending}>
              Create project
            </Button>
          </div>
        </form>
      </DialogContent>
    </Dialog>
  );
}
