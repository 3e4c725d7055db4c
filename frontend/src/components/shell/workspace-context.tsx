"use client";
import * as React from "react";
import { lastWorkspace, rememberWorkspace } from "@/lib/storage";

const Context = React.createContext<{ id: string | null; set: (id: string | null) => void }>({ id: null, set: () => {} });

export function WorkspaceProvider({ children }: { children: React.ReactNode }) {
  const [id, setId] = React.useState<string | null>(null);
  // After hydration (localStorage is not on the server): start from the workspace used last.
  React.useEffect(() => setId((current) => current ?? lastWorkspace()), []);
  const value = React.useMemo(() => ({ id, set: setId }), [id]);
  return <Context.Provider value={value}>{children}</Context.Provider>;
}

export function useCurrentWorkspaceId(): string | null {
  return React.useContext(Context).id;
}

/** Pages say which workspace they are in; the header's switcher follows. */
export function useSetCurrentWorkspace(id: string | undefined | null): void {
  const { set } = React.useContext(Context);
  React.useEffect(() => {
    if (!id) return;
    set(id);
    rememberWorkspace(id);
  }, [id, set]);
}
