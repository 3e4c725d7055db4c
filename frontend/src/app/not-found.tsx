import Link from "next/link";
import { LogoMark } from "@/components/logo";

export default function NotFound() {
  return (
    <main id="main" className="bg-grid flex min-h-dvh flex-col items-center justify-center gap-4 px-4 text-center">
      <LogoMark className="h-10 w-10" />
      <h1 className="text-xl font-semibold text-white">This page is off the rails</h1>
      <p className="text-sm text-slate-400">It does not exist, or you cannot see it.</p>
      <Link href="/" className="text-sm font-medium text-cyan-400 hover:text-cyan-300">Back to your projects</Link>
    </main>
  );
}
