"use client";
import * as React from "react";
import { Button } from "@/components/ui/button";
import { Field, Input } from "@/components/ui/input";
import { ApiError } from "@/lib/api/problem";
import { validateEmail, validateNewPassword } from "@/lib/validation";

export interface AccountValues {
  name: string;
  email: string;
  password: string;
}

/** Name, email, password (twice): the setup page and sign-up share it. */
export function AccountForm({
  submitLabel,
  initialEmail = "",
  emailLocked = false,
  onSubmit,
}: {
  submitLabel: string;
  initialEmail?: string;
  emailLocked?: boolean;
  onSubmit: (values: AccountValues) => Promise<void>;
}) {
  const [values, setValues] = React.useState({ name: "", email: initialEmail, password: "", confirm: "" });
  const [errors, setErrors] = React.useState<Partial<Record<keyof typeof values, string>>>({});
  const [pending, setPending] = React.useState(false);
  const set = (key: keyof typeof values) => (e: React.ChangeEvent<HTMLInputElement>) =>
    setValues((v) => ({ ...v, [key]: e.target.value }));

  async function submit(e: React.FormEvent) {
    e.preventDefault();
    const next = {
      email: validateEmail(values.email),
      password: validateNewPassword(values.password),
      confirm: values.confirm !== values.password ? "The passwords differ" : undefined,
    };
    setErrors(next);
    if (Object.values(next).some(Boolean)) return;
    setPending(true);
    try {
      await onSubmit({ name: values.name.trim(), email: values.email.trim(), password: values.password });
    } catch (error) {
      if (error instanceof ApiError) {
        setErrors({ email: error.fieldError("email"), password: error.fieldError("password") });
      }
      throw error;
    } finally {
      setPending(false);
    }
  }

  return (
    <form onSubmit={(e) => void submit(e).catch(() => undefined)} className="flex flex-col gap-4" noValidate>
      <Field id="name" label="Your name">
        <Input autoComplete="name" value={values.name} onChange={set("name")} placeholder="Ada Lovelace" autoFocus />
      </Field>
      <Field id="email" label="Email" error={errors.email}>
        <Input type="email" autoComplete="email" required value={values.email} onChange={set("email")} readOnly={emailLocked} />
      </Field>
      <Field id="password" label="Password" hint="At least 10 characters." error={errors.password}>
        <Input type="password" autoComplete="new-password" required value={values.password} onChange={set("password")} />
      </Field>
      <Field id="confirm" label="Confirm password" error={errors.confirm}>
        <Input type="password" autoComplete="new-password" required value={values.confirm} onChange={set("confirm")} />
      </Field>
      <Button type="submit" size="lg" loading={pending} className="mt-2 w-full">
        {submitLabel}
      </Button>
    </form>
  );
}
