"use client";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { ExternalLink, Globe, Plus, Trash2, Webhook as WebhookIcon } from "lucide-react";
import * as React from "react";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { Card, CardHeader } from "@/components/ui/card";
import { ConfirmDialog } from "@/components/ui/confirm";
import { CopyButton } from "@/components/ui/copy-button";
import { Dialog, DialogContent } from "@/components/ui/dialog";
import { Field, Input, Textarea } from "@/components/ui/input";
import { Skeleton } from "@/components/ui/misc";
import { Select } from "@/components/ui/select";
import { api, ApiError, type ProjectDetail, type Role, type ServicePublic, type WebhookCreated } from "@/lib/api";
import { can } from "@/lib/permissions";
import { keys } from "@/lib/queries";
import { toast } from "@/lib/toast";
import { timeAgo } from "@/lib/utils";
import {
  serviceSettingsPatch,
  serviceToForm,
  validateServiceSettings,
  type FormErrors,
  type ServiceSettingsForm,
} from "@/lib/validation";

type Key = keyof ServiceSettingsForm;

function Section({ title, description, children }: { title: string; description?: string; children: React.ReactNode }) {
  return (
    <fieldset className="flex flex-col gap-4 border-b border-white/5 px-4 py-5 last:border-0 sm:px-5">
      <legend className="sr-only">{title}</legend>
      <div>
        <h3 className="text-sm font-semibold text-white">{title}</h3>
        {description ? <p className="text-xs text-slate-400">{description}</p> : null}
      </div>
      {children}
    </fieldset>
  );
}

function SettingsForm({ service }: { service: ServicePublic }) {
  const queryClient = useQueryClient();
  const initial = React.useMemo(() => serviceToForm(service), [service]);
  const [form, setForm] = React.useState(initial);
  const [submitted, setSubmitted] = React.useState(false);
  const [serverErrors, setServerErrors] = React.useState<FormErrors<ServiceSettingsForm>>({});
  React.useEffect(() => setForm(initial), [initial]);
  const errors = validateServiceSettings(form);
  const patch = serviceSettingsPatch(initial, form);
  const dirty = Object.keys(patch).length > 0;
  const save = useMutation({
    mutationFn: () => api.updateService(service.id, patch),
    onSuccess: (updated) => {
      toast.success("Settings saved", { description: "They apply from the next deployment." });
      setSubmitted(false);
      setServerErrors({});
      void queryClient.invalidateQueries({ queryKey: keys.project(updated.project_id) });
    },
    onError: (error) => {
      if (error instanceof ApiError) {
        const next: FormErrors<ServiceSettingsForm> = {};
        for (const k of Object.keys(form) as Key[]) {
          const message = error.fieldError(k);
          if (message) next[k] = message;
        }
        setServerErrors(next);
      }
    },
  });
  const err = (k: Key) => (submitted ? errors[k] : undefined) ?? serverErrors[k];
  const bind = (k: Key) => ({
    value: form[k],
    onChange: (e: React.ChangeEvent<HTMLInputElement | HTMLTextAreaElement | HTMLSelectElement>) => setForm((f) => ({ ...f, [k]: e.target.value })),
  });

  return (
    <form
      noValidate
      onSubmit={(e) => {
        e.preventDefault();
        setSubmitted(true);
        if (Object.keys(errors).length === 0 && dirty) save.mutate();
      }}
    >
      <Card>
        <CardHeader
          title="Service settings"
          description="Left empty, a setting comes from railway.json / railway.toml in the repository, or is detected."
          actions={
            <>
              {dirty ? (
                <Button type="button" variant="ghost" size="sm" onClick={() => setForm(initial)}>
                  Discard
                </Button>
              ) : null}
              <Button type="submit" size="sm" disabled={!dirty} loading={save.isPending}>
                Save changes
              </Button>
            </>
          }
        />
        <Section title="General">
          <Field id="s-name" label="Name" hint="Part of the service's hostname." error={err("name")}>
            <Input {...bind("name")} spellCheck={false} />
          </Field>
        </Section>
        <Section title="Source" description="Where the code comes from. Empty repository: deployed with caboose up.">
          <Field id="s-repo" label="Repository URL" error={err("repo_url")}>
            <Input {...bind("repo_url")} placeholder="https://github.com/acme/api" spellCheck={false} />
          </Field>
          <div className="grid gap-4 sm:grid-cols-2">
            <Field id="s-branch" label="Branch" error={err("branch")}>
              <Input {...bind("branch")} spellCheck={false} />
            </Field>
            <Field id="s-root" label="Root directory" hint="For monorepos." error={err("root_directory")}>
              <Input {...bind("root_directory")} placeholder="apps/api" spellCheck={false} />
            </Field>
          </div>
          <Field id="s-watch" label="Watch patterns" hint="One glob per line; a push touching none of them does not deploy." error={err("watch_patterns")}>
            <Textarea rows={3} {...bind("watch_patterns")} className="font-mono text-xs" placeholder={"src/**\npackage.json"} />
          </Field>
        </Section>
        <Section title="Build and start">
          <Field id="s-build" label="Build command" error={err("build_command")}>
            <Input {...bind("build_command")} className="font-mono text-xs" placeholder="npm run build" />
          </Field>
          <Field id="s-start" label="Start command" error={err("start_command")}>
            <Input {...bind("start_command")} className="font-mono text-xs" placeholder="node server.js" />
          </Field>
          <Field id="s-predeploy" label="Pre-deploy command" hint="Runs once before the new replicas start, e.g. migrations." error={err("pre_deploy_command")}>
            <Input {...bind("pre_deploy_command")} className="font-mono text-xs" placeholder="npm run migrate" />
          </Field>
          <Field id="s-cron" label="Cron schedule" hint="Run as a cron job instead of a web service: 5 fields, e.g. */15 * * * *." error={err("cron_schedule")}>
            <Input {...bind("cron_schedule")} className="font-mono text-xs" placeholder="*/15 * * * *" />
          </Field>
        </Section>
        <Section title="Deploy">
          <div className="grid gap-4 sm:grid-cols-2">
            <Field id="s-hc-path" label="Healthcheck path" error={err("healthcheck_path")}>
              <Input {...bind("healthcheck_path")} placeholder="/health" />
            </Field>
            <Field id="s-hc-timeout" label="Healthcheck timeout (s)" error={err("healthcheck_timeout")}>
              <Input {...bind("healthcheck_timeout")} inputMode="numeric" placeholder="300" />
            </Field>
            <Field id="s-replicas" label="Replicas" error={err("num_replicas")}>
              <Input {...bind("num_replicas")} inputMode="numeric" placeholder="1" />
            </Field>
            <Field id="s-memory" label="Memory limit (MB)" error={err("memory_limit_mb")}>
              <Input {...bind("memory_limit_mb")} inputMode="numeric" placeholder="No limit" />
            </Field>
            <Field id="s-restart" label="Restart policy" error={err("restart_policy_type")}>
              <Select {...bind("restart_policy_type")}>
                <option value="">Default (on failure)</option>
                <option value="ON_FAILURE">On failure</option>
                <option value="ALWAYS">Always</option>
                <option value="NEVER">Never</option>
              </Select>
            </Field>
            <Field id="s-retries" label="Max restart retries" error={err("restart_policy_max_retries")}>
              <Input {...bind("restart_policy_max_retries")} inputMode="numeric" placeholder="10" disabled={form.restart_policy_type === "NEVER"} />
            </Field>
          </div>
        </Section>
      </Card>
    </form>
  );
}

function Domains({ service, environmentId, mayManage }: { service: ServicePublic; environmentId: string; mayManage: boolean }) {
  const queryClient = useQueryClient();
  const domains = useQuery({ queryKey: keys.domains(service.id), queryFn: () => api.domains(service.id) });
  const [hostname, setHostname] = React.useState("");
  const refresh = () => void queryClient.invalidateQueries({ queryKey: keys.domains(service.id) });
  const add = useMutation({
    mutationFn: (body: { hostname?: string }) => api.addDomain(service.id, { environment_id: environmentId, ...body }),
    onSuccess: () => {
      setHostname("");
      refresh();
    },
  });
  const remove = useMutation({ mutationFn: (id: string) => api.removeDomain(id), onSuccess: refresh });
  const list = (domains.data ?? []).filter((d) => d.environment_id === environmentId);
  return (
    <Card>
      <CardHeader
        title="Domains"
        description="A generated hostname, or your own (point its DNS at this machine)."
        actions={mayManage ? (
          <Button size="sm" variant="secondary" loading={add.isPending && !hostname} onClick={() => add.mutate({})}>
            <Globe className="h-3.5 w-3.5" /> Generate domain
          </Button>
        ) : null}
      />
      {domains.isPending ? (
        <Skeleton className="m-5 h-10" />
      ) : list.length ? (
        <ul className="divide-y divide-white/5">
          {list.map((d) => (
            <li key={d.id} className="flex items-center gap-3 px-4 py-2.5 text-sm sm:px-5">
              <a href={`http://${d.hostname}`} target="_blank" rel="noreferrer" className="flex min-w-0 items-center gap-1.5 truncate text-cyan-400 hover:underline">
                {d.hostname} <ExternalLink className="h-3 w-3 shrink-0" aria-hidden />
              </a>
              <Badge tone={d.kind === "custom" ? "purple" : "neutral"}>{d.kind}</Badge>
              {d.status ? <Badge tone={d.status === "active" ? "green" : "amber"}>{d.status}</Badge> : null}
              {mayManage ? (
                <Button variant="ghost" size="icon" className="ml-auto" aria-label={`Remove ${d.hostname}`} onClick={() => remove.mutate(d.id)}>
                  <Trash2 className="h-3.5 w-3.5" />
                </Button>
              ) : null}
            </li>
          ))}
        </ul>
      ) : (
        <p className="px-5 py-4 text-sm text-slate-400">No domain in this environment yet{mayManage ? ": generate one or add your own." : "."}</p>
      )}
      {mayManage ? (
        <form
          className="flex gap-2 border-t border-white/5 px-4 py-3 sm:px-5"
          onSubmit={(e) => {
            e.preventDefault();
            if (hostname.trim()) add.mutate({ hostname: hostname.trim().toLowerCase() });
          }}
        >
          <label htmlFor="custom-domain" className="sr-only">Custom domain</label>
          <Input id="custom-domain" value={hostname} onChange={(e) => setHostname(e.target.value)} placeholder="app.example.com" className="flex-1" />
          <Button type="submit" size="md" variant="secondary" disabled={!hostname.trim()} loading={add.isPending && !!hostname}>
            <Plus className="h-4 w-4" /> Add
          </Button>
        </form>
      ) : null}
    </Card>
  );
}

function Webhooks({ service, mayManage }: { service: ServicePublic; mayManage: boolean }) {
  const queryClient = useQueryClient();
  const hooks = useQuery({ queryKey: keys.webhooks(service.id), queryFn: () => api.webhooks(service.id) });
  const [created, setCreated] = React.useState<WebhookCreated | null>(null);
  const [provider, setProvider] = React.useState<"github" | "gitlab">("github");
  const refresh = () => void queryClient.invalidateQueries({ queryKey: keys.webhooks(service.id) });
  const add = useMutation({
    mutationFn: () => api.addWebhook(service.id, provider),
    onSuccess: (hook) => {
      setCreated(hook);
      refresh();
    },
  });
  const remove = useMutation({ mutationFn: (id: string) => api.removeWebhook(id), onSuccess: refresh });
  const [origin, setOrigin] = React.useState("");
  React.useEffect(() => setOrigin(window.location.origin), []);
  const urlOf = (h: { id: string; provider: string; url?: string }) => h.url ?? `${origin}/api/v1/hooks/${h.provider}/${h.id}`;
  return (
    <Card>
      <CardHeader
        title="Webhooks"
        description="Deploy on every push to the branch. Add the URL and secret to your repository's webhook settings."
        actions={mayManage ? (
          <div className="flex items-center gap-2">
            <label htmlFor="webhook-provider" className="sr-only">Provider</label>
            <Select id="webhook-provider" value={provider} onChange={(e) => setProvider(e.target.value as "github" | "gitlab")} className="h-8 w-28 text-xs">
              <option value="github">GitHub</option>
              <option value="gitlab">GitLab</option>
            </Select>
            <Button size="sm" variant="secondary" loading={add.isPending} onClick={() => add.mutate()}>
              <WebhookIcon className="h-3.5 w-3.5" /> Create
            </Button>
          </div>
        ) : null}
      />
      {hooks.isPending ? (
        <Skeleton className="m-5 h-10" />
      ) : hooks.data?.length ? (
        <ul className="divide-y divide-white/5">
          {hooks.data.map((h) => (
            <li key={h.id} className="flex flex-wrap items-center gap-3 px-4 py-2.5 text-sm sm:px-5">
              <Badge tone="cyan">{h.provider}</Badge>
              <code className="min-w-0 flex-1 truncate font-mono text-xs text-slate-300">{urlOf(h)}</code>
              <CopyButton text={urlOf(h)} label="Copy webhook URL" />
              <span className="text-xs text-slate-400">
                {h.last_delivery_at ? `Last delivery ${timeAgo(h.last_delivery_at)} (${h.last_delivery_status ?? "?"})` : "No delivery yet"}
              </span>
              {mayManage ? (
                <Button variant="ghost" size="icon" aria-label="Delete webhook" onClick={() => remove.mutate(h.id)}>
                  <Trash2 className="h-3.5 w-3.5" />
                </Button>
              ) : null}
            </li>
          ))}
        </ul>
      ) : (
        <p className="px-5 py-4 text-sm text-slate-400">No webhook: deploys happen when someone presses Deploy or runs caboose up.</p>
      )}
      <Dialog open={!!created} onOpenChange={(o) => !o && setCreated(null)}>
        <DialogContent title="Webhook created" description="Copy the secret now: it is shown this once.">
          {created ? (
            <div className="flex flex-col gap-3 text-sm">
              <Field id="hook-url" label="Payload URL">
                <div className="flex items-center gap-2">
                  <Input readOnly value={urlOf(created)} className="font-mono text-xs" />
                  <CopyButton text={urlOf(created)} label="Copy URL" />
                </div>
              </Field>
              <Field id="hook-secret" label="Secret">
                <div className="flex items-center gap-2">
                  <Input readOnly value={created.secret} className="font-mono text-xs" data-testid="webhook-secret" />
                  <CopyButton text={created.secret} label="Copy secret" />
                </div>
              </Field>
              <p className="text-xs text-slate-400">
                {created.provider === "github" ? "GitHub: content type application/json, the push event." : "GitLab: the secret goes in “Secret token”, push events."}
              </p>
              <div className="flex justify-end">
                <Button onClick={() => setCreated(null)}>I have copied it</Button>
              </div>
            </div>
          ) : null}
        </DialogContent>
      </Dialog>
    </Card>
  );
}

function DangerZone({ service, onDeleted }: { service: ServicePublic; onDeleted: () => void }) {
  const [open, setOpen] = React.useState(false);
  const queryClient = useQueryClient();
  const remove = useMutation({
    mutationFn: () => api.deleteService(service.id),
    onSuccess: () => {
      toast.success(`${service.name} deleted`);
      setOpen(false);
      onDeleted();
      void queryClient.invalidateQueries({ queryKey: keys.project(service.project_id) });
    },
  });
  return (
    <Card className="border-red-500/30">
      <CardHeader
        title="Delete service"
        description="Stops every deployment and removes its variables, domains, webhooks and build history."
        actions={
          <Button variant="danger" size="sm" onClick={() => setOpen(true)}>
            <Trash2 className="h-3.5 w-3.5" /> Delete service
          </Button>
        }
      />
      <ConfirmDialog
        open={open}
        onOpenChange={setOpen}
        title={`Delete ${service.name}?`}
        description="This cannot be undone."
        typeToConfirm={service.name}
        confirmLabel="Delete service"
        pending={remove.isPending}
        onConfirm={() => remove.mutate()}
      />
    </Card>
  );
}

export function SettingsTab({ service, environmentId, role, onDeleted }: { project: ProjectDetail; service: ServicePublic; environmentId: string; role: Role | null; onDeleted: () => void }) {
  return (
    <div className="flex flex-col gap-5 p-4 sm:p-5">
      <SettingsForm service={service} />
      <Domains service={service} environmentId={environmentId} mayManage={can(role, "domains:manage")} />
      <Webhooks service={service} mayManage={can(role, "webhooks:manage")} />
      {can(role, "service:manage") ? <DangerZone service={service} onDeleted={onDeleted} /> : null}
    </div>
  );
}
