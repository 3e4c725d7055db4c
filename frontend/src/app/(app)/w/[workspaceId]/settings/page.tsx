import type { Metadata } from "next";
import { WorkspaceSettings } from "@/components/workspace/settings";

export const metadata: Metadata = { title: "Workspace settings" };

// The page is all client side: render its shell once per id and serve it from cache afterwards
// (no server render on every navigation).
export const dynamicParams = true;
export function generateStaticParams() {
  return [];
}

export default async function Page({ params }: { params: Promise<{ workspaceId: string }> }) {
  const { workspaceId } = await params;
  return <WorkspaceSettings workspaceId={workspaceId} />;
}
