"use client";
import { useMutation } from "@tanstack/react-query";
import { Check, ChevronsUpDown, KeyRound, LogOut, Plus, Settings, Users } from "lucide-react";
import dynamic from "next/dynamic";
import { usePathname, useRouter } from "next/navigation";
import * as React from "react";
import { Logo } from "@/components/logo";
import { Button } from "@/components/ui/button";
import {
  Dropdown,
  DropdownContent,
  DropdownItem,
  DropdownLabel,
  DropdownSeparator,
  DropdownTrigger,
} from "@/components/ui/dropdown";
import { Skeleton } from "@/components/ui/misc";
import { SettledLink } from "@/components/ui/settled-link";
import { api } from "@/lib/api";
import { signOut } from "@/lib/api/fetch";
import { ROLE_LABELS } from "@/lib/permissions";
import { useMe } from "@/lib/queries";
import { cn } from "@/lib/utils";
import { useCurrentWorkspaceId, WorkspaceProvider } from "./workspace-context";

// Loaded when first opened, and mounted only while open: the shell stays light on every page.
const NewWorkspaceDialog = dynamic(() => import("./new-workspace-dialog").then((m) => m.NewWorkspaceDialog), { ssr: false });

function initials(name: string, email: string): string {
  const source = name.trim() || email;
  const parts = source.split(/[\s@.]+/).filter(Boolean);
  return ((parts[0]?.[0] ?? "?") + (parts[1]?.[0] ?? "")).toUpperCase();
}

function WorkspaceSwitcher() {
  const me = useMe();
  const router = useRouter();
  const current = useCurrentWorkspaceId();
  const [creating, setCreating] = React.useState(false);
  const workspaces = me.data?.workspaces ?? [];
  const active = workspaces.find((w) => w.id === current) ?? workspaces[0];
  if (me.isPending) return <Skeleton className="h-8 w-40" />;
  return (
    <>
      <Dropdown>
        <DropdownTrigger asChild>
          <button
            type="button"
            className="flex h-8 max-w-[14rem] items-center gap-2 rounded-lg border border-white/10 bg-white/5 px-2.5 text-sm text-slate-100 hover:bg-white/10"
          >
            {/* The accessible name starts with the visible name (WCAG 2.5.3), so "click Acme" works for voice control. */}
            <span
              className="flex h-5 w-5 shrink-0 items-center justify-center rounded bg-gradient-to-br from-indigo-600 to-violet-600 text-[10px] font-semibold"
              aria-hidden
            >
              {active?.name.slice(0, 1).toUpperCase() ?? "?"}
            </span>
            <span className="truncate">{active?.name ?? "No workspace"}</span>
            <span className="sr-only">: switch workspace</span>
            <ChevronsUpDown className="h-3.5 w-3.5 shrink-0 text-slate-500" aria-hidden />
          </button>
        </DropdownTrigger>
        <DropdownContent align="start" className="w-64">
          <DropdownLabel>Workspaces</DropdownLabel>
          {workspaces.map((w) => (
            <DropdownItem key={w.id} onSelect={() => router.push(`/w/${w.id}`)}>
              <span className="flex-1 truncate">{w.name}</span>
              <span className="text-[11px] text-slate-400">{ROLE_LABELS[w.role]}</span>
              {w.id === active?.id ? <Check className="h-3.5 w-3.5 text-cyan-400" aria-label="current" /> : null}
            </DropdownItem>
          ))}
          <DropdownSeparator />
          <DropdownItem onSelect={() => setCreating(true)}>
            <Plus className="h-4 w-4" /> New workspace
          </DropdownItem>
        </DropdownContent>
      </Dropdown>
      {creating ? <NewWorkspaceDialog open onOpenChange={setCreating} /> : null}
    </>
  );
}

function UserMenu() {
  const me = useMe();
  const router = useRouter();
  const logout = useMutation({ mutationFn: () => signOut(api.logout), meta: { silent: true } });
  if (!me.data) return <Skeleton className="h-8 w-8 rounded-full" />;
  return (
    <Dropdown>
      <DropdownTrigger asChild>
        <button
          type="button"
          className="flex h-8 w-8 items-center justify-center rounded-full bg-gradient-to-br from-cyan-400/80 to-purple-500/80 text-xs font-semibold text-white ring-1 ring-white/20"
        >
          {/* The initials are decoration; the button's name is what it opens. */}
          <span aria-hidden>{initials(me.data.name, me.data.email)}</span>
          <span className="sr-only">Account menu</span>
        </button>
      </DropdownTrigger>
      <DropdownContent className="w-60">
        <div className="px-2 py-1.5">
          <p className="truncate text-sm font-medium text-white">{me.data.name || me.data.email}</p>
          <p className="truncate text-xs text-slate-400">{me.data.email}</p>
        </div>
        <DropdownSeparator />
        <DropdownItem onSelect={() => router.push("/account")}>
          <KeyRound className="h-4 w-4" /> Account & API tokens
        </DropdownItem>
        <DropdownItem onSelect={() => logout.mutate()} disabled={logout.isPending}>
          <LogOut className="h-4 w-4" /> Sign out
        </DropdownItem>
      </DropdownContent>
    </Dropdown>
  );
}

function NavLinks() {
  const pathname = usePathname();
  const workspaceId = useCurrentWorkspaceId();
  if (!workspaceId) return null;
  const links = [
    { href: `/w/${workspaceId}`, label: "Projects", icon: null, exact: true },
    { href: `/w/${workspaceId}/settings`, label: "Members & settings", icon: Users, exact: false },
  ];
  return (
    <nav aria-label="Workspace" className="hidden items-center gap-1 md:flex">
      {links.map((l) => {
        const active = l.exact ? pathname === l.href : pathname.startsWith(l.href);
        return (
          <SettledLink
            key={l.href}
            href={l.href}
            aria-current={active ? "page" : undefined}
            className={cn(
              "rounded-md px-2.5 py-1.5 text-sm text-slate-400 hover:bg-white/5 hover:text-white",
              active && "bg-white/5 text-white",
            )}
          >
            {l.label}
          </SettledLink>
        );
      })}
    </nav>
  );
}

export function AppShell({ children }: { children: React.ReactNode }) {
  return (
    <WorkspaceProvider>
      <div className="flex min-h-dvh flex-col">
        <header className="sticky top-0 z-30 border-b border-white/10 bg-slate-950/80 backdrop-blur-xl">
          <div className="mx-auto flex h-14 max-w-[1600px] items-center gap-3 px-4 sm:px-6">
            <Logo />
            <span className="text-slate-700" aria-hidden>
              /
            </span>
            <WorkspaceSwitcher />
            <NavLinks />
            <div className="ml-auto flex items-center gap-2">
              <MobileSettingsLink />
              <UserMenu />
            </div>
          </div>
        </header>
        <main id="main" className="flex flex-1 flex-col">
          {children}
        </main>
      </div>
    </WorkspaceProvider>
  );
}

function MobileSettingsLink() {
  const workspaceId = useCurrentWorkspaceId();
  if (!workspaceId) return null;
  return (
    <Button asChild variant="ghost" size="icon" className="md:hidden">
      <SettledLink href={`/w/${workspaceId}/settings`} aria-label="Workspace settings">
        <Settings className="h-4 w-4" />
      </SettledLink>
    </Button>
  );
}
