import { Suspense } from "react";
import { ProjectCanvas } from "@/components/project/canvas";

// The page is all client side: render its shell once per id and serve it from cache afterwards
// (no server render on every navigation).
export const dynamicParams = true;
export function generateStaticParams() {
  return [];
}

export default async function Page({ params }: { params: Promise<{ projectId: string }> }) {
  const { projectId } = await params;
  return (
    <Suspense>
      <ProjectCanvas projectId={projectId} />
    </Suspense>
  );
}
