"use client";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { KeyRound, Plus, Trash2 } from "lucide-react";
import * as React from "react";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { Card, CardHeader } from "@/components/ui/card";
import { CopyButton } from "@/components/ui/copy-button";
import { Dialog, DialogContent } from "@/components/ui/dialog";
import { Field, Input } from "@/components/ui/input";
import { EmptyState, ErrorState, Skeleton } from "@/components/ui/misc";
import { Select } from "@/components/ui/select";
import { api, type ApiTokenCreated } from "@/lib/api";
import { keys, useMe } from "@/lib/queries";
import { timeAgo } from "@/lib/utils";

function NewTokenDialog({ open, onOpenChange, onCreated }: { open: boolean; onOpenChange: (o: boolean) => void; onCreated: (t: ApiTokenCreated) => void }) {
  const [name, setName] = React.useState("");
  const [days, setDays] = React.useState("90");
  const queryClient = useQueryClient();
  const create = useMutation({
    mutationFn: () => api.createToken({ name: name.trim(), expires_in_days: days ? Number(days) : null }),
    onSuccess: (token) => {
      void queryClient.invalidateQueries({ queryKey: keys.tokens });
      setName("");
      onOpenChange(false);
      onCreated(token);
    },
  });
  return (
    <Dialog open={open} onOpenChange={onOpenChange}>
      <DialogContent title="New API token" description="For the CLI and CI: `caboose login --token …` or an Authorization: Bearer header.">
        <form className="flex flex-col gap-4" onSubmit={(e) => { e.preventDefault(); if (name.trim()) create.mutate(); }}>
          <Field id="token-name" label="Name" hint="What it is for, e.g. “GitHub Actions”.">
            <Input value={name} onChange={(e) => setName(e.target.value)} maxLength={100} autoFocus />
          </Field>
          <Field id="token-expiry" label="Expires">
            <Select value={days} onChange={(e) => setDays(e.target.value)}>
              <option value="7">In 7 days</option>
              <option value="30">In 30 days</option>
              <option value="90">In 90 days</option>
              <option value="365">In a year</option>
              <option value="">Never</option>
            </Select>
          </Field>
          <div className="flex justify-end gap-2">
            <Button type="button" variant="ghost" onClick={() => onOpenChange(false)}>Cancel</Button>
            <Button type="submit" loading={create.isPending} disabled={!name.trim()}>Create token</Button>
          </div>
        </form>
      </DialogContent>
    </Dialog>
  );
}

export function Account() {
  const me = useMe();
  const tokens = useQuery({ queryKey: keys.tokens, queryFn: api.tokens });
  const queryClient = useQueryClient();
  const [creating, setCreating] = React.useState(false);
  const [secret, setSecret] = React.useState<ApiTokenCreated | null>(null);
  const revoke = useMutation({ mutationFn: (id: string) => api.revokeToken(id), onSuccess: () => void queryClient.invalidateQueries({ queryKey: keys.tokens }) });
  return (
    <div className="mx-auto flex w-full max-w-4xl flex-col gap-6 px-4 py-8 sm:px-6">
      <div>
        <p className="text-xs font-medium tracking-wide text-cyan-400 uppercase">Account</p>
        <h1 className="mt-1 text-2xl font-semibold tracking-tight text-white">{me.data?.name || me.data?.email || <Skeleton className="h-7 w-48" />}</h1>
        {me.data ? (
          <p className="mt-1 flex flex-wrap items-center gap-2 text-sm text-slate-400">
            {me.data.email}
            {me.data.is_instance_owner ? <Badge tone="purple">Instance owner</Badge> : null}
            {me.data.github_login ? <Badge tone="cyan">GitHub: {me.data.github_login}</Badge> : null}
          </p>
        ) : null}
      </div>
      <Card data-testid="tokens">
        <CardHeader
          title="API tokens"
          description="Tokens act as you, in every workspace you belong to. Revoke any you no longer use."
          actions={<Button size="sm" onClick={() => setCreating(true)}><Plus className="h-3.5 w-3.5" /> New token</Button>}
        />
        {tokens.isError ? (
          <div className="p-5"><ErrorState error={tokens.error} retry={() => void tokens.refetch()} /></div>
        ) : tokens.isPending ? (
          <Skeleton className="m-5 h-16" />
        ) : tokens.data.items.length === 0 ? (
          <div className="p-5">
            <EmptyState icon={<KeyRound className="h-6 w-6" />} title="No API tokens">Create one to use the CLI from CI or a script.</EmptyState>
          </div>
        ) : (
          <ul className="divide-y divide-white/5">
            {tokens.data.items.map((t) => (
              <li key={t.id} className="flex flex-wrap items-center gap-3 px-4 py-3 text-sm sm:px-5" data-testid="token-row">
                <div className="min-w-0 flex-1">
                  <p className="truncate text-white">{t.name}</p>
                  <p className="text-xs text-slate-400">
                    <span className="font-mono">{t.prefix}…</span> · created {timeAgo(t.created_at)} · {t.last_used_at ? `used ${timeAgo(t.last_used_at)}` : "never used"}
                    {t.expires_at ? ` · expires ${timeAgo(t.expires_at)}` : ""}
                  </p>
                </div>
                {t.revoked_at ? (
                  <Badge tone="red">Revoked</Badge>
                ) : (
                  <Button variant="ghost" size="sm" onClick={() => revoke.mutate(t.id)} aria-label={`Revoke ${t.name}`}>
                    <Trash2 className="h-3.5 w-3.5" /> Revoke
                  </Button>
                )}
              </li>
            ))}
          </ul>
        )}
      </Card>
      <NewTokenDialog open={creating} onOpenChange={setCreating} onCreated={setSecret} />
      <Dialog open={!!secret} onOpenChange={(o) => !o && setSecret(null)}>
        <DialogContent title="Copy your token" description="This is the only time it is shown. Store it somewhere safe.">
          {secret ? (
            <div className="flex flex-col gap-4">
              <div className="flex items-center gap-2">
                <Input readOnly value={secret.token} aria-label="API token" className="font-mono text-xs" data-testid="token-secret" />
                <CopyButton text={secret.token} label="Copy token" />
              </div>
              <div className="flex justify-end"><Button onClick={() => setSecret(null)}>I have copied it</Button></div>
            </div>
          ) : null}
        </DialogContent>
      </Dialog>
    </div>
  );
}
