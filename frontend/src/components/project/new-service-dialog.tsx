"use client";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { GitBranch, Terminal } from "lucide-react";
import * as React from "react";
import { Button } from "@/components/ui/button";
import { Dialog, DialogContent } from "@/components/ui/dialog";
import { Field, Input } from "@/components/ui/input";
import { Tabs, TabsContent, TabsList, TabsTrigger } from "@/components/ui/tabs";
import { api, type ProjectDetail, type ServicePublic } from "@/lib/api";
import { keys } from "@/lib/queries";
import { toast } from "@/lib/toast";
import { validateBranch, validateDnsLabel, validateRepoUrl, validateRootDirectory } from "@/lib/validation";
import { CabooseUpSnippet } from "./caboose-up-snippet";

function nameFromRepo(url: string): string {
  const last = url.replace(/\.git$/, "").split(/[/:]/).filter(Boolean).at(-1) ?? "";
  return last.toLowerCase().replace(/[^a-z0-9-]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 63);
}

export function NewServiceDialog({
  project,
  environmentId,
  open,
  onOpenChange,
  onCreated,
}: {
  project: ProjectDetail;
  environmentId: string | undefined;
  open: boolean;
  onOpenChange: (o: boolean) => void;
  onCreated: (service: ServicePublic) => void;
}) {
  const queryClient = useQueryClient();
  const [tab, setTab] = React.useState("git");
  const [form, setForm] = React.useState({ repo_url: "", branch: "main", root_directory: "", name: "" });
  const [nameEdited, setNameEdited] = React.useState(false);
  const [submitted, setSubmitted] = React.useState(false);
  const [created, setCreated] = React.useState<ServicePublic | null>(null);

  React.useEffect(() => {
    if (!open) {
      setForm({ repo_url: "", branch: "main", root_directory: "", name: "" });
      setNameEdited(false);
      setSubmitted(false);
      setCreated(null);
    }
  }, [open]);

  const errors =
    tab === "git"
      ? {
          repo_url: form.repo_url ? validateRepoUrl(form.repo_url) : "A repository URL is required",
          branch: validateBranch(form.branch),
          root_directory: validateRootDirectory(form.root_directory),
          name: validateDnsLabel(form.name),
        }
      : { name: validateDnsLabel(form.name) };
  const invalid = Object.values(errors).some(Boolean);
  const show = (key: keyof typeof errors) => (submitted ? errors[key] : undefined);

  const create = useMutation({
    mutationFn: async () => {
      const service = await api.createService(
        project.id,
        tab === "git"
          ? { name: form.name, repo_url: form.repo_url, branch: form.branch, root_directory: form.root_directory }
          : { name: form.name },
      );
      if (tab === "git" && environmentId) {
        try {
          await api.deploy(service.id, environmentId);
        } catch (error) {
          toast.error("The service was created, but its first deploy did not start", {
            description: error instanceof Error ? error.message : undefined,
          });
        }
      }
      return service;
    },
    onSuccess: (service) => {
      void queryClient.invalidateQueries({ queryKey: keys.project(project.id) });
      if (tab === "git") {
        toast.success(`${service.name} created`, { description: "The first deployment is on its way." });
        onOpenChange(false);
        onCreated(service);
      } else {
        setCreated(service);
      }
    },
  });

  const set = (key: keyof typeof form) => (e: React.ChangeEvent<HTMLInputElement>) => {
    const value = e.target.value;
    setForm((f) => {
      const next = { ...f, [key]: value };
      if (key === "repo_url" && !nameEdited) next.name = nameFromRepo(value);
      return next;
    });
    if (key === "name") setNameEdited(true);
  };

  const environment = project.environments.find((e) => e.id === environmentId)?.name;

  return (
    <Dialog open={open} onOpenChange={onOpenChange}>
      <DialogContent title="New service" description="Deploy from a Git repository, or create an empty service and push code with the CLI." className="max-w-xl">
        {created ? (
          <div className="flex flex-col gap-4 text-sm">
            <p className="text-slate-300">
              <span className="font-medium text-white">{created.name}</span> is ready. From your project folder, run:
            </p>
            <CabooseUpSnippet project={project.name} service={created.name} environment={environment} />
            <p className="text-xs text-slate-400">The build logs stream in your terminal and in this dashboard.</p>
            <div className="flex justify-end">
              <Button
                onClick={() => {
                  onOpenChange(false);
                  onCreated(created);
                }}
              >
                Open {created.name}
              </Button>
            </div>
          </div>
        ) : (
          <Tabs value={tab} onValueChange={setTab}>
            <TabsList className="mb-4 px-0 sm:px-0">
              <TabsTrigger value="git">
                <GitBranch className="h-4 w-4" /> Git repository
              </TabsTrigger>
              <TabsTrigger value="empty">
                <Terminal className="h-4 w-4" /> Empty (caboose up)
              </TabsTrigger>
            </TabsList>
            <form
              className="flex flex-col gap-4"
              noValidate
              onSubmit={(e) => {
                e.preventDefault();
                setSubmitted(true);
                if (!invalid) create.mutate();
              }}
            >
              <TabsContent value="git" className="flex flex-col gap-4">
                <Field id="svc-repo" label="Repository URL" hint="https://, http:// or git@host:path. Private repositories: put a token in the https URL." error={show("repo_url")}>
                  <Input value={form.repo_url} onChange={set("repo_url")} placeholder="https://github.com/acme/api" autoFocus autoComplete="off" spellCheck={false} />
                </Field>
                <div className="grid gap-4 sm:grid-cols-2">
                  <Field id="svc-branch" label="Branch" error={show("branch")}>
                    <Input value={form.branch} onChange={set("branch")} spellCheck={false} />
                  </Field>
                  <Field id="svc-root" label="Root directory" hint="For monorepos; empty is the root." error={show("root_directory")}>
                    <Input value={form.root_directory} onChange={set("root_directory")} placeholder="apps/api" spellCheck={false} />
                  </Field>
                </div>
              </TabsContent>
              <TabsContent value="empty">
                <p className="text-sm text-slate-400">
                  An empty service deploys what you upload with <code className="rounded bg-white/5 px-1 font-mono text-cyan-300">caboose up</code>. You get the commands next.
                </p>
              </TabsContent>
              <Field id="svc-name" label="Service name" hint="Part of its hostname." error={show("name")}>
                <Input value={form.name} onChange={set("name")} placeholder="api" maxLength={63} spellCheck={false} />
              </Field>
              <div className="flex justify-end gap-2 pt-2">
                <Button type="button" variant="ghost" onClick={() => onOpenChange(false)}>
                  Cancel
                </Button>
                <Button type="submit" loading={create.isPending}>
                  {tab === "git" ? "Create and deploy" : "Create service"}
                </Button>
              </div>
            </form>
          </Tabs>
        )}
      </DialogContent>
    </Dialog>
  );
}
