import { act, render, screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { beforeAll, describe, expect, it, vi } from "vitest";
import { Dropdown, DropdownContent, DropdownItem, DropdownTrigger } from "./dropdown";
import { Tooltip } from "./tooltip";

beforeAll(() => {
  // Radix' positioning measures elements.
  vi.stubGlobal(
    "ResizeObserver",
    class {
      observe() {}
      unobserve() {}
      disconnect() {}
    },
  );
});

function Menu({ onSelect }: { onSelect: () => void }) {
  return (
    <Dropdown>
      <DropdownTrigger asChild>
        <button type="button" aria-label="Account menu">
          AB
        </button>
      </DropdownTrigger>
      <DropdownContent>
        <DropdownItem onSelect={onSelect}>Sign out</DropdownItem>
      </DropdownContent>
    </Dropdown>
  );
}

// One module for the file: the first test sees Radix not loaded yet, the next ones loaded.
describe("Dropdown, with Radix loaded on first use", () => {
  it("before Radix is there: the trigger alone, announced as a menu button; a key press loads and opens the menu", async () => {
    const onSelect = vi.fn();
    render(<Menu onSelect={onSelect} />);
    const trigger = screen.getByRole("button", { name: "Account menu" });
    expect(trigger).toHaveAttribute("aria-haspopup", "menu");
    expect(trigger).toHaveAttribute("aria-expanded", "false");
    expect(screen.queryByRole("menu")).toBeNull();
    trigger.focus();
    await userEvent.keyboard("{Enter}");
    const item = await screen.findByRole("menuitem", { name: "Sign out" });
    await userEvent.click(item);
    expect(onSelect).toHaveBeenCalledOnce();
  });

  it("once loaded: Radix' menu, keyboard included", async () => {
    const onSelect = vi.fn();
    render(<Menu onSelect={onSelect} />);
    const trigger = screen.getByRole("button", { name: "Account menu" });
    trigger.focus();
    await userEvent.keyboard("{Enter}");
    await waitFor(() => expect(screen.getByRole("menuitem", { name: "Sign out" })).toHaveFocus());
    await userEvent.keyboard("{Enter}");
    expect(onSelect).toHaveBeenCalledOnce();
  });
});

describe("Tooltip, with Radix loaded on first use", () => {
  it("renders its child alone until Radix is there, then shows on focus, keeping the focus", async () => {
    render(
      <Tooltip content="Delete project">
        <button type="button">Delete</button>
      </Tooltip>,
    );
    const button = screen.getByRole("button", { name: "Delete" });
    await act(async () => button.focus());
    await waitFor(() => expect(screen.getAllByText("Delete project").length).toBeGreaterThan(0));
    expect(screen.getByRole("button", { name: "Delete" })).toHaveFocus();
  });
});
