"use client";
import { useMutation } from "@tanstack/react-query";
import Link from "next/link";
import { useRouter, useSearchParams } from "next/navigation";
import * as React from "react";
import { AuthShell } from "@/components/auth/auth-shell";
import { Button } from "@/components/ui/button";
import { api } from "@/lib/api";
import { useMe } from "@/lib/queries";

function Join() {
  const router = useRouter();
  const params = useSearchParams();
  const token = params.get("token") ?? "";
  const email = params.get("email") ?? "";
  const me = useMe({ retry: false });
  const accept = useMutation({
    mutationFn: () => api.acceptInvitation(token),
    onSuccess: (workspace) => router.replace(`/w/${workspace.id}`),
  });
  const here = `/join?token=${encodeURIComponent(token)}`;

  if (!token) {
    return <AuthShell title="Invitation">This link has no invitation in it. Ask for a new one.</AuthShell>;
  }
  return (
    <AuthShell title="You have been invited" subtitle="Accept the invitation to join the workspace.">
      {me.isPending ? (
        <p className="text-sm text-slate-400">Checking your session…</p>
      ) : me.data ? (
        <div className="flex flex-col gap-4 text-sm">
          <p className="text-slate-300">
            Signed in as <span className="font-medium text-white">{me.data.email}</span>. The invitation must be for this address.
          </p>
          <Button size="lg" loading={accept.isPending} onClick={() => accept.mutate()}>
            Accept invitation
          </Button>
        </div>
      ) : (
        <div className="flex flex-col gap-3">
          <Button asChild size="lg">
            <Link href={`/register?invitation=${encodeURIComponent(token)}&email=${encodeURIComponent(email)}&next=/`}>Create an account</Link>
          </Button>
          <Button asChild variant="secondary" size="lg">
            <Link href={`/login?next=${encodeURIComponent(here)}`}>I already have an account</Link>
          </Button>
        </div>
      )}
    </AuthShell>
  );
}

export default function JoinPage() {
  return (
    <React.Suspense>
      <Join />
    </React.Suspense>
  );
}
