import { WorkspaceHome } from "@/components/workspace/home";

// The page is all client side: render its shell once per id and serve it from cache afterwards
// (no server render on every navigation).
export const dynamicParams = true;
export function generateStaticParams() {
  return [];
}

export default async function Page({ params }: { params: Promise<{ workspaceId: string }> }) {
  const { workspaceId } = await params;
  return <WorkspaceHome workspaceId={workspaceId} />;
}
