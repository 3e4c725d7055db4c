"use client";
import { useQueryClient } from "@tanstack/react-query";
import Link from "next/link";
import { useRouter, useSearchParams } from "next/navigation";
import * as React from "react";
import { AccountForm } from "@/components/auth/account-form";
import { AuthShell, safeNext } from "@/components/auth/auth-shell";
import { api } from "@/lib/api";
import { toastError } from "@/lib/toast";

function Register() {
  const router = useRouter();
  const params = useSearchParams();
  const invitation = params.get("invitation") ?? undefined;
  const queryClient = useQueryClient();
  return (
    <AuthShell
      title={invitation ? "Join your team on Caboose" : "Create your account"}
      subtitle={invitation ? "Create an account with the invited email address to accept the invitation." : undefined}
      footer={
        <>
          Already have an account?{" "}
          <Link
            href={invitation ? `/login?next=${encodeURIComponent(`/join?token=${invitation}`)}` : "/login"}
            className="font-medium text-cyan-400 hover:text-cyan-300"
          >
            Sign in
          </Link>
        </>
      }
    >
      <AccountForm
        submitLabel={invitation ? "Create account and join" : "Create account"}
        initialEmail={params.get("email") ?? ""}
        onSubmit={async (values) => {
          try {
            await api.register({ ...values, ...(invitation ? { invitation_token: invitation } : {}) });
            await api.login(values.email, values.password);
          } catch (error) {
            toastError(error);
            throw error;
          }
          queryClient.clear();
          router.replace(safeNext(params.get("next")));
        }}
      />
    </AuthShell>
  );
}

export default function RegisterPage() {
  return (
    <React.Suspense>
      <Register />
    </React.Suspense>
  );
}
