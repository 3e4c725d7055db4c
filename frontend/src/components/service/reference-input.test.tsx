import { fireEvent, render, screen } from "@testing-library/react";
import * as React from "react";
import { describe, expect, it } from "vitest";
import { ReferenceInput } from "./reference-input";

const sources = { shared: ["DATABASE_URL"], services: [{ name: "api", keys: ["PORT"] }] };

function Harness() {
  const [value, setValue] = React.useState("");
  return <ReferenceInput id="v" aria-label="Value" value={value} onChange={setValue} sources={sources} />;
}

describe("ReferenceInput", () => {
  it("offers references after ${{ and completes with the keyboard", () => {
    render(<Harness />);
    const input = screen.getByRole("combobox", { name: "Value" }) as HTMLInputElement;
    fireEvent.change(input, { target: { value: "${{sh", selectionStart: 5 } });
    const options = screen.getAllByRole("option");
    expect(options[0]).toHaveTextContent("${{shared.DATABASE_URL}}");
    expect(input).toHaveAttribute("aria-expanded", "true");
    fireEvent.keyDown(input, { key: "Enter" });
    expect(input.value).toBe("${{shared.DATABASE_URL}}");
    expect(screen.queryByRole("listbox")).toBeNull();
  });

  it("moves through suggestions with the arrows and closes on Escape", () => {
    render(<Harness />);
    const input = screen.getByRole("combobox") as HTMLInputElement;
    fireEvent.change(input, { target: { value: "${{api", selectionStart: 6 } });
    fireEvent.keyDown(input, { key: "ArrowDown" });
    const selected = screen.getAllByRole("option").find((o) => o.getAttribute("aria-selected") === "true");
    expect(selected).toHaveTextContent("api.CABOOSE_PUBLIC_DOMAIN");
    fireEvent.keyDown(input, { key: "Escape" });
    expect(screen.queryByRole("listbox")).toBeNull();
  });

  it("shows nothing outside a reference", () => {
    render(<Harness />);
    const input = screen.getByRole("combobox");
    fireEvent.change(input, { target: { value: "plain", selectionStart: 5 } });
    expect(screen.queryByRole("listbox")).toBeNull();
  });
});
