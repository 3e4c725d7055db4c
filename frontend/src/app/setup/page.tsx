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

  React.useEffect(() => {
    if (setup.data && !setup.data.needs_setup) router.replace("/login");
  }, [setup.data, router]);

  return (
    <AuthShell
      title="Welcome to Caboose"
      subtitle="Create the owner account of this instance. You can invite your team next."
    >
      <AccountForm
        submitLabel="Create owner account"
        onSubmit={async (values) => {
          try {
            await api.register(values);
            await api.login(values.email, values.password);
          } catch (error) {
            toastError(error);
            throw error;
          }
          await queryClient.invalidateQueries();
          router.replace("/");
        }}
      />
    </AuthShell>
  );
}
