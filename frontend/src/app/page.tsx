"use client";
import { useRouter } from "next/navigation";
import * as React from "react";
import { LogoMark } from "@/components/logo";
import { useMe } from "@/lib/queries";
import { lastWorkspace } from "@/lib/storage";



/** `/`: open the workspace used last (or the first one). */
export default function Home() {
  const router = useRouter();
  const me = useMe();
  React.useEffect(() => {
    if (!me.data) return;
    const last = lastWorkspace();
    const target = me.data.workspaces.find((w) => w.id === last) ?? me.data.workspaces[0];
    router.replace(target ? `/w/${target.id}` : "/account");
  }, [me.data, router]);
  return (
    <main id="main" className="flex min-h-dvh items-center justify-center">
      <LogoMark className="h-10 w-10 animate-pulse" />
    </main>
  );
}
