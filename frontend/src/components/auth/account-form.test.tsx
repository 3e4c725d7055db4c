import { fireEvent, render, screen, waitFor } from "@testing-library/react";
import { describe, expect, it, vi } from "vitest";
import { AccountForm } from "./account-form";

describe("AccountForm", () => {
  it("validates before submitting and labels every field", async () => {
    const onSubmit = vi.fn(async () => undefined);
    render(<AccountForm submitLabel="Create" onSubmit={onSubmit} />);
    fireEvent.change(screen.getByLabelText("Email"), { target: { value: "nope" } });
    fireEvent.change(screen.getByLabelText("Password"), { target: { value: "short" } });
    fireEvent.change(screen.getByLabelText("Confirm password"), { target: { value: "different" } });
    fireEvent.click(screen.getByRole("button", { name: "Create" }));
    expect(await screen.findByText("Enter an email address")).toBeInTheDocument();
    expect(screen.getByText("At least 10 characters")).toBeInTheDocument();
    expect(screen.getByText("The passwords differ")).toBeInTheDocument();
    expect(screen.getByLabelText("Email")).toHaveAttribute("aria-invalid", "true");
    expect(onSubmit).not.toHaveBeenCalled();
  });

  it("submits trimmed values when they are valid", async () => {
    const onSubmit = vi.fn(async () => undefined);
    render(<AccountForm submitLabel="Create" onSubmit={onSubmit} />);
    fireEvent.change(screen.getByLabelText("Your name"), { target: { value: " Ada " } });
    fireEvent.change(screen.getByLabelText("Email"), { target: { value: " ada@example.com " } });
    fireEvent.change(screen.getByLabelText("Password"), { target: { value: "a-long-passphrase" } });
    fireEvent.change(screen.getByLabelText("Confirm password"), { target: { value: "a-long-passphrase" } });
    fireEvent.click(screen.getByRole("button", { name: "Create" }));
    await waitFor(() => expect(onSubmit).toHaveBeenCalledWith({ name: "Ada", email: "ada@example.com", password: "a-long-passphrase" }));
  });
});
