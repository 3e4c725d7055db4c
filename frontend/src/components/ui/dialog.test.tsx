import { render, screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import * as React from "react";
import { describe, expect, it } from "vitest";
import { Dialog, DialogContent, SheetContent } from "./dialog";

// The canvas opens a service's panel from URL state, as here from component state: no Radix trigger.
function Canvas() {
  const [open, setOpen] = React.useState(false);
  return (
    <>
      <button type="button" onClick={() => setOpen(true)}>
        web
      </button>
      <button type="button">api</button>
      {open ? (
        <Dialog open modal={false} onOpenChange={(next) => !next && setOpen(false)}>
          <SheetContent title="Service web" data-testid="sheet">
            <button type="button">Deploy</button>
          </SheetContent>
        </Dialog>
      ) : null}
    </>
  );
}

describe("SheetContent", () => {
  it("takes the focus when it opens and gives it back to what opened it when Escape closes it", async () => {
    const user = userEvent.setup();
    render(<Canvas />);
    await user.tab();
    expect(screen.getByRole("button", { name: "web" })).toHaveFocus();
    await user.keyboard("{Enter}");
    const sheet = await screen.findByTestId("sheet");
    await waitFor(() => expect(sheet).toHaveFocus());
    await user.keyboard("{Escape}");
    await waitFor(() => expect(screen.queryByTestId("sheet")).toBeNull());
    await waitFor(() => expect(screen.getByRole("button", { name: "web" })).toHaveFocus());
  });

  it("leaves the focus where a click outside put it", async () => {
    const user = userEvent.setup();
    render(<Canvas />);
    await user.click(screen.getByRole("button", { name: "web" }));
    await screen.findByTestId("sheet");
    await user.click(screen.getByRole("button", { name: "api" }));
    await waitFor(() => expect(screen.queryByTestId("sheet")).toBeNull());
    expect(screen.getByRole("button", { name: "api" })).toHaveFocus();
  });
});

function Workspace() {
  const [open, setOpen] = React.useState(false);
  return (
    <>
      <button type="button" onClick={() => setOpen(true)}>
        New project
      </button>
      <Dialog open={open} onOpenChange={setOpen}>
        {open ? (
          <DialogContent title="New project">
            <input aria-label="Name" />
          </DialogContent>
        ) : null}
      </Dialog>
    </>
  );
}

describe("DialogContent", () => {
  it("gives the focus back to the button that opened it", async () => {
    const user = userEvent.setup();
    render(<Workspace />);
    await user.tab();
    await user.keyboard("{Enter}");
    await waitFor(() => expect(screen.getByRole("dialog")).toContainElement(document.activeElement as HTMLElement));
    await user.keyboard("{Escape}");
    await waitFor(() => expect(screen.queryByRole("dialog")).toBeNull());
    await waitFor(() => expect(screen.getByRole("button", { name: "New project" })).toHaveFocus());
  });
});
