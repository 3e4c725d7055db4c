"use client";
import { useMutation, useQueries, useQuery, useQueryClient } from "@tanstack/react-query";
import { Eye, EyeOff, FileCode2, Lock, Pencil, Plus, Trash2, KeyRound, Check, X } from "lucide-react";
import * as React from "react";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { Card, CardHeader } from "@/components/ui/card";
import { CopyButton } from "@/components/ui/copy-button";
import { Field, Input, Textarea } from "@/components/ui/input";
import { EmptyState, ErrorState, Skeleton } from "@/components/ui/misc";
import { Switch } from "@/components/ui/switch";
import { api, type ProjectDetail, type Role, type ServicePublic, type Variables } from "@/lib/api";
import { can } from "@/lib/permissions";
import { keys } from "@/lib/queries";
import { toast } from "@/lib/toast";
import { parseDotenv, serializeDotenv, validateVariableKey } from "@/lib/variables/dotenv";
import { unknownReferences, type ReferenceSources } from "@/lib/variables/references";
import { ReferenceInput } from "./reference-input";

const MASK = "••••••••••";
const MAX_REFERENCE_SERVICES = 25;

function sealedSet(data: Variables | undefined): Set<string> {
  return new Set([...(data?.sealed ?? []), ...(data?.undecryptable ?? [])]);
}

/** Where `${{` completions come from: shared variables and the project's other services. */
function useReferenceSources(project: ProjectDetail, service: ServicePublic, environmentId: string, shared: Variables | undefined): ReferenceSources {
  const others = project.services.filter((s) => s.id !== service.id).slice(0, MAX_REFERENCE_SERVICES);
  const results = useQueries({
    queries: others.map((s) => ({
      queryKey: keys.variables(s.id, environmentId),
      queryFn: () => api.variables(s.id, environmentId),
      staleTime: 60_000,
      retry: false,
    })),
  });
  return React.useMemo(
    () => ({
      shared: Object.keys(shared?.variables ?? {}),
      services: others.map((s, i) => ({ name: s.name, keys: Object.keys(results[i]?.data?.variables ?? {}) })),
    }),
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [shared, others.map((s) => s.id).join(), results.map((r) => r.dataUpdatedAt).join()],
  );
}

function VariableRow({
  name,
  value,
  sealed,
  mayRead,
  mayWrite,
  sources,
  onSave,
  onDelete,
}: {
  name: string;
  value: string;
  sealed: boolean;
  mayRead: boolean;
  mayWrite: boolean;
  sources: ReferenceSources;
  onSave: (value: string) => Promise<unknown>;
  onDelete: () => void;
}) {
  const [revealed, setRevealed] = React.useState(false);
  const [editing, setEditing] = React.useState(false);
  const [draft, setDraft] = React.useState(value);
  const [saving, setSaving] = React.useState(false);
  const unknown = editing ? unknownReferences(draft, sources) : [];
  const id = `var-${name}-${mayWrite ? "w" : "r"}-${React.useId()}`;
  return (
    <li className="flex flex-wrap items-center gap-x-3 gap-y-2 px-4 py-2.5 sm:px-5" data-testid="variable-row" data-key={name}>
      <span className="flex w-full min-w-0 items-center gap-2 font-mono text-xs text-slate-100 sm:w-56">
        <span className="truncate" title={name}>{name}</span>
        {sealed ? (
          <Badge tone="purple" title="Sealed: used at deploy time, never readable again">
            <Lock className="h-3 w-3" aria-hidden /> sealed
          </Badge>
        ) : null}
      </span>
      {editing ? (
        <form
          className="flex min-w-0 flex-1 flex-col gap-1"
          onSubmit={async (e) => {
            e.preventDefault();
            setSaving(true);
            try {
              await onSave(draft);
              setEditing(false);
            } finally {
              setSaving(false);
            }
          }}
        >
          <div className="flex items-center gap-2">
            <ReferenceInput id={id} aria-label={`Value of ${name}`} value={draft} onChange={setDraft} sources={sources} autoFocus />
            <Button type="submit" size="icon" aria-label="Save" loading={saving}>
              {saving ? null : <Check className="h-4 w-4" />}
            </Button>
            <Button type="button" size="icon" variant="ghost" aria-label="Cancel editing" onClick={() => { setEditing(false); setDraft(value); }}>
              <X className="h-4 w-4" />
            </Button>
          </div>
          {unknown.length ? <p className="text-xs text-amber-300">Unknown reference: {unknown.join(", ")}</p> : null}
        </form>
      ) : (
        <span className="min-w-0 flex-1 truncate font-mono text-xs text-slate-400" data-testid="variable-value">
          {mayRead && !sealed && revealed ? value || <em className="text-slate-400">empty</em> : MASK}
        </span>
      )}
      {!editing ? (
        <span className="ml-auto flex items-center gap-0.5">
          {mayRead && !sealed ? (
            <>
              <Button variant="ghost" size="icon" aria-label={revealed ? `Hide ${name}` : `Reveal ${name}`} aria-pressed={revealed} onClick={() => setRevealed(!revealed)}>
                {revealed ? <EyeOff className="h-3.5 w-3.5" /> : <Eye className="h-3.5 w-3.5" />}
              </Button>
              <CopyButton text={value} label={`Copy ${name}`} />
            </>
          ) : null}
          {mayWrite && !sealed ? (
            <Button variant="ghost" size="icon" aria-label={`Edit ${name}`} onClick={() => { setDraft(value); setEditing(true); }}>
              <Pencil className="h-3.5 w-3.5" />
            </Button>
          ) : null}
          {mayWrite ? (
            <Button variant="ghost" size="icon" aria-label={`Delete ${name}`} onClick={onDelete}>
              <Trash2 className="h-3.5 w-3.5" />
            </Button>
          ) : null}
        </span>
      ) : null}
    </li>
  );
}

function AddVariableForm({ idPrefix, labelPrefix, existing, sources, allowSealed, onAdd }: {
  idPrefix: string;
  labelPrefix: string;
  existing: ReadonlySet<string>;
  sources: ReferenceSources;
  allowSealed: boolean;
  onAdd: (key: string, value: string, sealed: boolean) => Promise<unknown>;
}) {
  const [key, setKey] = React.useState("");
  const [value, setValue] = React.useState("");
  const [sealed, setSealed] = React.useState(false);
  const [touched, setTouched] = React.useState(false);
  const [pending, setPending] = React.useState(false);
  const keyError = touched ? validateVariableKey(key) ?? (existing.has(key) ? `${key} exists: edit it instead` : undefined) : undefined;
  const unknown = unknownReferences(value, sources);
  return (
    <form
      className="flex flex-col gap-3 border-b border-white/5 px-4 py-4 sm:px-5"
      noValidate
      onSubmit={async (e) => {
        e.preventDefault();
        setTouched(true);
        if (validateVariableKey(key) || existing.has(key)) return;
        setPending(true);
        try {
          await onAdd(key, value, sealed);
          setKey("");
          setValue("");
          setSealed(false);
          setTouched(false);
        } finally {
          setPending(false);
        }
      }}
    >
      <div className="flex flex-col gap-3 sm:flex-row sm:items-start">
        <Field id={`${idPrefix}-key`} label={`${labelPrefix}Name`} error={keyError} className="sm:w-56">
          <Input value={key} onChange={(e) => setKey(e.target.value.toUpperCase().replace(/[^A-Z0-9_]/g, "_"))} placeholder="DATABASE_URL" className="font-mono text-xs" spellCheck={false} autoComplete="off" />
        </Field>
        <Field id={`${idPrefix}-value`} label={`${labelPrefix}Value`} hint={unknown.length || labelPrefix ? undefined : "Type ${{ to reference a shared variable or another service."} error={unknown.length ? `Unknown reference: ${unknown.join(", ")}` : undefined} className="flex-1">
          <ReferenceInput id={`${idPrefix}-value`} value={value} onChange={setValue} sources={sources} placeholder="value or ${{shared.KEY}}" />
        </Field>
      </div>
      <div className="flex flex-wrap items-center justify-between gap-3">
        {allowSealed ? (
          <label className="flex items-center gap-2 text-xs text-slate-400">
            <Switch checked={sealed} onCheckedChange={setSealed} aria-label="Sealed" />
            Sealed — used at deploy time, never shown again
          </label>
        ) : <span />}
        <Button type="submit" size="sm" loading={pending}>
          <Plus className="h-3.5 w-3.5" /> {labelPrefix ? `Add ${labelPrefix.trim().toLowerCase()} variable` : "Add variable"}
        </Button>
      </div>
    </form>
  );
}

function RawEditor({ data, onSave, onCancel }: { data: Variables; onSave: (upserts: Record<string, string>, deletions: string[]) => Promise<unknown>; onCancel: () => void }) {
  const sealed = sealedSet(data);
  const editable = Object.fromEntries(Object.entries(data.variables).filter(([k]) => !sealed.has(k)));
  const [text, setText] = React.useState(() => serializeDotenv(editable));
  const [pending, setPending] = React.useState(false);
  const parsed = parseDotenv(text);
  return (
    <form
      className="flex flex-col gap-3 p-4 sm:p-5"
      onSubmit={async (e) => {
        e.preventDefault();
        if (parsed.problems.length) return;
        const upserts = Object.fromEntries(Object.entries(parsed.variables).filter(([k, v]) => editable[k] !== v));
        const deletions = Object.keys(editable).filter((k) => !(k in parsed.variables));
        setPending(true);
        try {
          await onSave(upserts, deletions);
        } finally {
          setPending(false);
        }
      }}
    >
      <Field id="raw-env" label="Raw .env" hint={sealed.size ? `Sealed variables (${[...sealed].join(", ")}) are not shown and stay as they are.` : "One KEY=value per line; # comments and quotes are fine."}>
        <Textarea rows={14} value={text} onChange={(e) => setText(e.target.value)} className="font-mono text-xs" spellCheck={false} />
      </Field>
      {parsed.problems.length ? (
        <ul role="alert" className="text-xs text-red-300">
          {parsed.problems.map((p) => (
            <li key={p.line}>Line {p.line}: {p.message}</li>
          ))}
        </ul>
      ) : null}
      <div className="flex justify-end gap-2">
        <Button type="button" variant="ghost" onClick={onCancel}>Cancel</Button>
        <Button type="submit" loading={pending} disabled={parsed.problems.length > 0}>Save variables</Button>
      </div>
    </form>
  );
}

function VariableList({
  title,
  description,
  data,
  mayRead,
  mayWrite,
  allowSealed,
  sources,
  onUpsert,
  onDelete,
  emptyText,
  testId,
  idPrefix,
  labelPrefix = "",
}: {
  idPrefix: string;
  labelPrefix?: string;
  title: string;
  description: React.ReactNode;
  data: Variables;
  mayRead: boolean;
  mayWrite: boolean;
  allowSealed: boolean;
  sources: ReferenceSources;
  onUpsert: (vars: Record<string, string>, sealed?: string[]) => Promise<unknown>;
  onDelete: (key: string) => Promise<unknown>;
  emptyText: string;
  testId: string;
}) {
  const [raw, setRaw] = React.useState(false);
  const names = Object.keys(data.variables).sort();
  const sealed = sealedSet(data);
  return (
    <Card data-testid={testId}>
      <CardHeader
        title={title}
        description={description}
        actions={
          mayWrite && mayRead ? (
            <Button variant="secondary" size="sm" onClick={() => setRaw(!raw)} aria-pressed={raw}>
              <FileCode2 className="h-3.5 w-3.5" /> {raw ? "Table" : "Raw editor"}
            </Button>
          ) : null
        }
      />
      {raw ? (
        <RawEditor
          data={data}
          onCancel={() => setRaw(false)}
          onSave={async (upserts, deletions) => {
            if (Object.keys(upserts).length) await onUpsert(upserts);
            for (const key of deletions) await onDelete(key);
            setRaw(false);
          }}
        />
      ) : (
        <>
          {mayWrite ? <AddVariableForm idPrefix={idPrefix} labelPrefix={labelPrefix} existing={new Set(names)} sources={sources} allowSealed={allowSealed} onAdd={(k, v, s) => onUpsert({ [k]: v }, s ? [k] : undefined)} /> : null}
          {names.length ? (
            <ul className="divide-y divide-white/5">
              {names.map((name) => (
                <VariableRow
                  key={name}
                  name={name}
                  value={data.variables[name] ?? ""}
                  sealed={sealed.has(name)}
                  mayRead={mayRead}
                  mayWrite={mayWrite}
                  sources={sources}
                  onSave={(value) => onUpsert({ [name]: value })}
                  onDelete={() => void onDelete(name)}
                />
              ))}
            </ul>
          ) : (
            <p className="px-5 py-6 text-sm text-slate-400">{emptyText}</p>
          )}
        </>
      )}
    </Card>
  );
}

export function VariablesTab({ project, service, environmentId, role }: { project: ProjectDetail; service: ServicePublic; environmentId: string; role: Role | null }) {
  const queryClient = useQueryClient();
  const variables = useQuery({ queryKey: keys.variables(service.id, environmentId), queryFn: () => api.variables(service.id, environmentId) });
  const shared = useQuery({ queryKey: keys.shared(environmentId), queryFn: () => api.sharedVariables(environmentId) });
  const sources = useReferenceSources(project, service, environmentId, shared.data);
  // The server says whether values came back in clear; the role matrix decides what is offered.
  const mayRead = can(role, "variables:read-values") && variables.data?.values_visible !== false;
  const mayWrite = can(role, "variables:write");
  const environment = project.environments.find((e) => e.id === environmentId)?.name ?? "this environment";

  const redeploy = useMutation({
    mutationFn: async () => {
      const list = await api.deployments(service.id, environmentId, 1);
      const latest = list.items[0];
      if (!latest) throw new Error("Nothing deployed yet: deploy the service to use the new values");
      return api.deploymentAction(latest.id, "redeploy");
    },
    onSuccess: () => {
      toast.success("Redeploying with the new variables");
      void queryClient.invalidateQueries({ queryKey: keys.deployments(service.id, environmentId) });
    },
  });
  const announce = () =>
    toast.success("Variables saved", {
      description: "They apply from the next deployment.",
      action: can(role, "deploy") ? { label: "Redeploy now", onClick: () => redeploy.mutate() } : undefined,
    });

  const upsert = useMutation({
    mutationFn: ({ vars, sealed }: { vars: Record<string, string>; sealed?: string[] }) =>
      api.putVariables(service.id, environmentId, { variables: vars, ...(sealed?.length ? { sealed } : {}) }),
    onSuccess: () => {
      announce();
      void queryClient.invalidateQueries({ queryKey: keys.variables(service.id, environmentId) });
    },
  });
  const remove = useMutation({
    mutationFn: (key: string) => api.deleteVariable(service.id, environmentId, key),
    onSuccess: () => void queryClient.invalidateQueries({ queryKey: keys.variables(service.id, environmentId) }),
  });
  const upsertShared = useMutation({
    mutationFn: (vars: Record<string, string>) => api.putSharedVariables(environmentId, { variables: vars }),
    onSuccess: () => {
      toast.success("Shared variables saved");
      void queryClient.invalidateQueries({ queryKey: keys.shared(environmentId) });
    },
  });
  const removeShared = useMutation({
    mutationFn: (key: string) => api.deleteSharedVariable(environmentId, key),
    onSuccess: () => void queryClient.invalidateQueries({ queryKey: keys.shared(environmentId) }),
  });

  if (variables.isError) return <div className="p-5"><ErrorState error={variables.error} retry={() => void variables.refetch()} /></div>;
  if (variables.isPending) return <div className="flex flex-col gap-3 p-5"><Skeleton className="h-40" /><Skeleton className="h-24" /></div>;

  return (
    <div className="flex flex-col gap-5 p-4 sm:p-5">
      {!mayRead ? (
        <p className="flex items-center gap-2 rounded-lg border border-white/10 bg-white/5 px-3 py-2 text-xs text-slate-400" data-testid="values-hidden-note">
          <KeyRound className="h-3.5 w-3.5 text-cyan-400" aria-hidden /> You can see variable names. Admins can see and change values.
        </p>
      ) : null}
      {Object.keys(variables.data.variables).length === 0 && !mayWrite ? (
        <EmptyState icon={<KeyRound className="h-6 w-6" />} title="No variables">An admin can add variables for {service.name} in {environment}.</EmptyState>
      ) : (
        <VariableList
          testId="service-variables"
          idPrefix="new-var"
          title={`${service.name} variables`}
          description={<>In <span className="text-slate-300">{environment}</span>; available to the app as environment variables.</>}
          data={variables.data}
          mayRead={mayRead}
          mayWrite={mayWrite}
          allowSealed
          sources={sources}
          onUpsert={(vars, sealed) => upsert.mutateAsync({ vars, sealed })}
          onDelete={(key) => remove.mutateAsync(key)}
          emptyText="No variables yet. Add one above, or paste a .env file in the raw editor."
        />
      )}
      {shared.data ? (
        <VariableList
          testId="shared-variables"
          idPrefix="new-shared"
          labelPrefix="Shared "
          title="Shared variables"
          description={<>Every service of {environment} can reference these as <code className="font-mono text-cyan-300">{"${{shared.KEY}}"}</code>.</>}
          data={shared.data}
          mayRead={mayRead}
          mayWrite={mayWrite}
          allowSealed={false}
          sources={{ shared: [], services: [] }}
          onUpsert={(vars) => upsertShared.mutateAsync(vars)}
          onDelete={(key) => removeShared.mutateAsync(key)}
          emptyText="No shared variables in this environment."
        />
      ) : null}
    </div>
  );
}
