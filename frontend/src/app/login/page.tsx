"use client";
import { useQueryClient } from "@tanstack/react-query";
import Link from "next/link";
import { useRouter, useSearchParams } from "next/navigation";
import * as React from "react";
import { AuthShell, GitHubIcon, safeNext } from "@/components/auth/auth-shell";
import { Button } from "@/components/ui/button";
import { Field, Input } from "@/components/ui/input";
import { api } from "@/lib/api";
import { ApiError } from "@/lib/api/problem";
import { useSetup } from "@/lib/queries";
import { toastError } from "@/lib/toast";

function LoginForm() {
  const router = useRouter();
  const params = useSearchParams();
  const next = safeNext(params.get("next"));
  const queryClient = useQueryClient();
  const setup = useSetup();
  const [email, setEmail] = React.useState("");
  const [password, setPassword] = React.useState("");
  const [error, setError] = React.useState<string>();
  const [pending, setPending] = React.useState(false);

  React.useEffect(() => {
    if (setup.data?.needs_setup) router.replace("/setup");
  }, [setup.data, router]);

  async function submit(e: React.FormEvent) {
    e.preventDefault();
    setError(undefined);
    setPending(true);
    try {
      await api.login(email.trim(), password);
      queryClient.clear();
      router.replace(next);
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) setError(err.detail ?? "Wrong email or password");
      else toastError(err);
      setPending(false);
    }
  }

  const githubError = params.get("error");
  return (
    <AuthShell
      title="Sign in to Caboose"
      footer={
        setup.data?.registration_open ? (
          <>
            New here?{" "}
            <Link href="/register" className="font-medium text-cyan-400 hover:text-cyan-300">
              Create an account
            </Link>
          </>
        ) : null
      }
    >
      <form onSubmit={submit} className="flex flex-col gap-4" noValidate>
        {githubError ? (
          <p role="alert" className="rounded-lg border border-red-500/30 bg-red-500/10 px-3 py-2 text-sm text-red-200">
            GitHub sign-in failed: {githubError}
          </p>
        ) : null}
        <Field id="email" label="Email">
          <Input type="email" autoComplete="username" required value={email} onChange={(e) => setEmail(e.target.value)} autoFocus />
        </Field>
        <Field id="password" label="Password" error={error}>
          <Input type="password" autoComplete="current-password" required value={password} onChange={(e) => setPassword(e.target.value)} />
        </Field>
        <Button type="submit" size="lg" loading={pending} className="mt-1 w-full">
          Sign in
        </Button>
        {setup.data?.github_enabled ? (
          <>
            <div className="flex items-center gap-3 text-xs text-slate-400">
              <span className="h-px flex-1 bg-white/10" /> or <span className="h-px flex-1 bg-white/10" />
            </div>
            <Button asChild variant="secondary" size="lg" className="w-full">
              <a href={`/api/v1/auth/github/login?next=${encodeURIComponent(next)}`}>
                <GitHubIcon className="h-4 w-4" /> Sign in with GitHub
              </a>
            </Button>
          </>
        ) : null}
      </form>
    </AuthShell>
  );
}

export default function LoginPage() {
  return (
    <React.Suspense>
      <LoginForm />
    </React.Suspense>
  );
}
