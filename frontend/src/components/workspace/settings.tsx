"use client";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { LogOut, MailPlus, Trash2, UserMinus, Users } from "lucide-react";
import { useRouter } from "next/navigation";
import * as React from "react";
import { useSetCurrentWorkspace } from "@/components/shell/workspace-context";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { Card, CardHeader } from "@/components/ui/card";
import { ConfirmDialog } from "@/components/ui/confirm";
import { CopyButton } from "@/components/ui/copy-button";
import { Dialog, DialogContent } from "@/components/ui/dialog";
import { Field, Input } from "@/components/ui/input";
import { ErrorState, Skeleton } from "@/components/ui/misc";
import { Select } from "@/components/ui/select";
import { api, type InvitationCreated, type MemberPublic, type Role } from "@/lib/api";
import { can, ROLE_DESCRIPTIONS, ROLE_LABELS } from "@/lib/permissions";
import { keys, useMe, useMembers, useRole } from "@/lib/queries";
import { toast } from "@/lib/toast";
import { timeAgo } from "@/lib/utils";
import { validateEmail } from "@/lib/validation";

const ROLES: Role[] = ["member", "admin", "owner"];

function General({ workspaceId, name, mayRename }: { workspaceId: string; name: string; mayRename: boolean }) {
  const [value, setValue] = React.useState(name);
  React.useEffect(() => setValue(name), [name]);
  const queryClient = useQueryClient();
  const rename = useMutation({
    mutationFn: () => api.renameWorkspace(workspaceId, value.trim()),
    onSuccess: () => {
      toast.success("Workspace renamed");
      void queryClient.invalidateQueries({ queryKey: keys.me });
    },
  });
  return (
    <Card>
      <CardHeader title="General" />
      <form
        className="flex flex-col gap-3 p-5 sm:flex-row sm:items-end"
        onSubmit={(e) => {
          e.preventDefault();
          if (value.trim() && value.trim() !== name) rename.mutate();
        }}
      >
        <Field id="ws-name" label="Workspace name" className="flex-1">
          <Input value={value} onChange={(e) => setValue(e.target.value)} disabled={!mayRename} maxLength={100} />
        </Field>
        {mayRename ? (
          <Button type="submit" loading={rename.isPending} disabled={!value.trim() || value.trim() === name}>
            Save
          </Button>
        ) : null}
      </form>
    </Card>
  );
}

function Members({ workspaceId, role, myId }: { workspaceId: string; role: Role | null; myId: string }) {
  const members = useMembers(workspaceId);
  const queryClient = useQueryClient();
  const router = useRouter();
  const [removing, setRemoving] = React.useState<MemberPublic | null>(null);
  const refresh = () => void queryClient.invalidateQueries({ queryKey: keys.members(workspaceId) });
  const update = useMutation({
    mutationFn: ({ userId, role }: { userId: string; role: Role }) => api.updateMember(workspaceId, userId, role),
    onSuccess: (m) => {
      toast.success(`${m.name || m.email} is now ${ROLE_LABELS[m.role].toLowerCase()}`);
      refresh();
      if (m.user_id === myId) void queryClient.invalidateQueries({ queryKey: keys.me });
    },
  });
  const remove = useMutation({
    mutationFn: (userId: string) => api.removeMember(workspaceId, userId),
    onSuccess: async (_r, userId) => {
      setRemoving(null);
      if (userId === myId) {
        await queryClient.invalidateQueries({ queryKey: keys.me });
        router.replace("/");
        return;
      }
      toast.success("Member removed");
      refresh();
    },
  });
  const mayManage = can(role, "members:manage");
  const mayOwn = can(role, "ownership:manage");
  return (
    <Card data-testid="members">
      <CardHeader title="Members" description="Who can work in this workspace, and what they may do." />
      {members.isError ? (
        <div className="p-5"><ErrorState error={members.error} retry={() => void members.refetch()} /></div>
      ) : members.isPending ? (
        <div className="p-5"><Skeleton className="h-20" /></div>
      ) : (
        <ul className="divide-y divide-white/5">
          {members.data.items.map((m) => {
            const isMe = m.user_id === myId;
            // Only owners touch owners; admins manage members and admins.
            const editable = mayManage && !isMe && (mayOwn || m.role !== "owner");
            return (
              <li key={m.user_id} className="flex flex-wrap items-center gap-3 px-4 py-3 sm:px-5" data-testid="member-row" data-email={m.email}>
                <div className="min-w-0 flex-1">
                  <p className="truncate text-sm text-white">
                    {m.name || m.email} {isMe ? <span className="text-xs text-slate-400">(you)</span> : null}
                  </p>
                  <p className="truncate text-xs text-slate-400">{m.email} · joined {timeAgo(m.joined_at)}</p>
                </div>
                {editable ? (
                  <>
                    <label htmlFor={`role-${m.user_id}`} className="sr-only">Role of {m.email}</label>
                    <Select
                      id={`role-${m.user_id}`}
                      value={m.role}
                      className="h-8 w-28 text-xs"
                      onChange={(e) => update.mutate({ userId: m.user_id, role: e.target.value as Role })}
                    >
                      {ROLES.filter((r) => mayOwn || r !== "owner").map((r) => (
                        <option key={r} value={r}>{ROLE_LABELS[r]}</option>
                      ))}
                    </Select>
                    <Button variant="ghost" size="icon" aria-label={`Remove ${m.email}`} onClick={() => setRemoving(m)}>
                      <UserMinus className="h-4 w-4" />
                    </Button>
                  </>
                ) : (
                  <>
                    <Badge tone={m.role === "owner" ? "purple" : m.role === "admin" ? "cyan" : "neutral"}>{ROLE_LABELS[m.role]}</Badge>
                    {isMe ? (
                      <Button variant="ghost" size="sm" onClick={() => setRemoving(m)}>
                        <LogOut className="h-3.5 w-3.5" /> Leave
                      </Button>
                    ) : null}
                  </>
                )}
              </li>
            );
          })}
        </ul>
      )}
      <ConfirmDialog
        open={!!removing}
        onOpenChange={(o) => !o && setRemoving(null)}
        title={removing?.user_id === myId ? "Leave this workspace?" : `Remove ${removing?.email}?`}
        description={removing?.user_id === myId ? "You lose access to its projects until someone invites you again." : "They lose access at once, and so do their API tokens."}
        confirmLabel={removing?.user_id === myId ? "Leave" : "Remove"}
        pending={remove.isPending}
        onConfirm={() => removing && remove.mutate(removing.user_id)}
      />
    </Card>
  );
}

function Invitations({ workspaceId, role }: { workspaceId: string; role: Role | null }) {
  const queryClient = useQueryClient();
  const invitations = useQuery({ queryKey: keys.invitations(workspaceId), queryFn: () => api.invitations(workspaceId) });
  const [email, setEmail] = React.useState("");
  const [inviteRole, setInviteRole] = React.useState<Role>("member");
  const [touched, setTouched] = React.useState(false);
  const [created, setCreated] = React.useState<InvitationCreated | null>(null);
  const [origin, setOrigin] = React.useState("");
  React.useEffect(() => setOrigin(window.location.origin), []);
  const refresh = () => void queryClient.invalidateQueries({ queryKey: keys.invitations(workspaceId) });
  const invite = useMutation({
    mutationFn: () => api.invite(workspaceId, email.trim(), inviteRole),
    onSuccess: (inv) => {
      setCreated(inv);
      setEmail("");
      setTouched(false);
      refresh();
    },
  });
  const revoke = useMutation({ mutationFn: (id: string) => api.revokeInvitation(workspaceId, id), onSuccess: refresh });
  const mayOwn = can(role, "ownership:manage");
  const emailError = touched ? validateEmail(email) : undefined;
  const link = created ? `${origin}/join?token=${encodeURIComponent(created.token)}&email=${encodeURIComponent(created.email)}` : "";
  return (
    <Card data-testid="invitations">
      <CardHeader title="Invitations" description="Invite people by email. They join with the role you pick." />
      <form
        className="flex flex-col gap-3 border-b border-white/5 p-5 sm:flex-row sm:items-start"
        noValidate
        onSubmit={(e) => {
          e.preventDefault();
          setTouched(true);
          if (!validateEmail(email)) invite.mutate();
        }}
      >
        <Field id="invite-email" label="Email" error={emailError} className="flex-1">
          <Input type="email" value={email} onChange={(e) => setEmail(e.target.value)} placeholder="teammate@example.com" autoComplete="off" />
        </Field>
        <Field id="invite-role" label="Role" hint={ROLE_DESCRIPTIONS[inviteRole]} className="sm:w-64">
          <Select value={inviteRole} onChange={(e) => setInviteRole(e.target.value as Role)}>
            {ROLES.filter((r) => mayOwn || r !== "owner").map((r) => (
              <option key={r} value={r}>{ROLE_LABELS[r]}</option>
            ))}
          </Select>
        </Field>
        <Button type="submit" className="sm:mt-[1.375rem]" loading={invite.isPending}>
          <MailPlus className="h-4 w-4" /> Invite
        </Button>
      </form>
      {invitations.isPending ? (
        <Skeleton className="m-5 h-10" />
      ) : invitations.data?.items.length ? (
        <ul className="divide-y divide-white/5">
          {invitations.data.items.map((inv) => (
            <li key={inv.id} className="flex flex-wrap items-center gap-3 px-4 py-2.5 text-sm sm:px-5" data-testid="invitation-row">
              <span className="min-w-0 flex-1 truncate text-slate-200">{inv.email}</span>
              <Badge>{ROLE_LABELS[inv.role]}</Badge>
              <span className="text-xs text-slate-400">expires {timeAgo(inv.expires_at)}</span>
              {mayOwn || inv.role !== "owner" ? (
                <Button variant="ghost" size="icon" aria-label={`Revoke invitation of ${inv.email}`} onClick={() => revoke.mutate(inv.id)}>
                  <Trash2 className="h-3.5 w-3.5" />
                </Button>
              ) : null}
            </li>
          ))}
        </ul>
      ) : (
        <p className="px-5 py-4 text-sm text-slate-400">No pending invitation.</p>
      )}
      <Dialog open={!!created} onOpenChange={(o) => !o && setCreated(null)}>
        <DialogContent title="Invitation created" description="Send this link to the invitee. It is shown this once and works for their email address only.">
          <div className="flex flex-col gap-3">
            <div className="flex items-center gap-2">
              <Input readOnly value={link} aria-label="Invitation link" className="font-mono text-xs" data-testid="invitation-link" />
              <CopyButton text={link} label="Copy invitation link" />
            </div>
            <div className="flex justify-end">
              <Button onClick={() => setCreated(null)}>Done</Button>
            </div>
          </div>
        </DialogContent>
      </Dialog>
    </Card>
  );
}

function DangerZone({ workspaceId, name }: { workspaceId: string; name: string }) {
  const [open, setOpen] = React.useState(false);
  const router = useRouter();
  const queryClient = useQueryClient();
  const remove = useMutation({
    mutationFn: () => api.deleteWorkspace(workspaceId),
    onSuccess: async () => {
      setOpen(false);
      await queryClient.invalidateQueries({ queryKey: keys.me });
      router.replace("/");
    },
  });
  return (
    <Card className="border-red-500/30">
      <CardHeader
        title="Delete workspace"
        description="Deletes every project, service, deployment, variable and membership in it."
        actions={<Button variant="danger" size="sm" onClick={() => setOpen(true)}><Trash2 className="h-3.5 w-3.5" /> Delete workspace</Button>}
      />
      <ConfirmDialog open={open} onOpenChange={setOpen} title={`Delete ${name}?`} description="This cannot be undone." typeToConfirm={name} confirmLabel="Delete workspace" pending={remove.isPending} onConfirm={() => remove.mutate()} />
    </Card>
  );
}

export function WorkspaceSettings({ workspaceId }: { workspaceId: string }) {
  useSetCurrentWorkspace(workspaceId);
  const me = useMe();
  const role = useRole(workspaceId);
  const workspace = me.data?.workspaces.find((w) => w.id === workspaceId);
  if (!me.data) return <div className="mx-auto w-full max-w-4xl p-6"><Skeleton className="h-64" /></div>;
  if (!workspace) return <div className="mx-auto w-full max-w-4xl p-6"><ErrorState error={new Error("You are not a member of this workspace.")} /></div>;
  return (
    <div className="mx-auto flex w-full max-w-4xl flex-col gap-6 px-4 py-8 sm:px-6">
      <div>
        <p className="flex items-center gap-1.5 text-xs font-medium tracking-wide text-cyan-400 uppercase"><Users className="h-3.5 w-3.5" aria-hidden /> Workspace settings</p>
        <h1 className="mt-1 text-2xl font-semibold tracking-tight text-white">{workspace.name}</h1>
        <p className="mt-1 text-sm text-slate-400">You are {ROLE_LABELS[workspace.role].toLowerCase()} here: {ROLE_DESCRIPTIONS[workspace.role].toLowerCase()}.</p>
      </div>
      <General workspaceId={workspaceId} name={workspace.name} mayRename={can(role, "workspace:update")} />
      <Members workspaceId={workspaceId} role={role} myId={me.data.id} />
      {can(role, "members:manage") ? <Invitations workspaceId={workspaceId} role={role} /> : null}
      {can(role, "workspace:delete") && !workspace.is_personal ? <DangerZone workspaceId={workspaceId} name={workspace.name} /> : null}
    </div>
  );
}
