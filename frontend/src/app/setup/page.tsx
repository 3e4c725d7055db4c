"use client";
import { useQueryClient } from "@tanstack/react-query";
import { useRouter } from "next/navigation";
import * as React from "react";
import { AccountForm } from "@/components/auth/account-form";
import { AuthShell } from "@/components/auth/auth-shell";
import { api } from "@/lib/api";
import { useSetup } from "@/lib/queries";
import { toastError } from "@/lib/toast";

export default function SetupPage() {
  const router = useRouter();
  const queryClient = useQueryClient();
  const setup = useSetup();

  // Once this page has created the owner, the instance no longer "needs setup": that is no
  // reason to send the new owner to sign-in (they are signed in, on their way to "/").
  const created = React.useRef(false);
  React.useEffect(() => {
    if (setup.data && !setup.data.needs_setup && !created.current) router.replace("/login");
  }, [setup.data, router]);

  return (
    <AuthShell
      title="Welcome to Caboose"
      subtitle="Create the owner account of this instance. You can invite your team next."
    >
      {setup.data?.needs_setup && !setup.data.registration_open ? (
        <p role="status" className="rounded-lg border border-amber-500/30 bg-amber-500/10 px-3 py-2 text-sm text-amber-100">
          Sign-up is closed on this instance. Create the owner account on the server with{" "}
          <code className="font-mono text-amber-50">caboosed create-user</code>, then sign in.
        </p>
      ) : (
        <AccountForm
          submitLabel="Create owner account"
          onSubmit={async (values) => {
            created.current = true;
            try {
              await api.register(values);
              await api.login(values.email, values.password);
            } catch (error) {
              created.current = false;
              toastError(error);
              throw error;
            }
            await queryClient.invalidateQueries();
            router.replace("/");
          }}
        />
      )}
    </AuthShell>
  );
}
