"use client";
import * as React from "react";
import { CopyButton } from "@/components/ui/copy-button";

export function CabooseUpSnippet({ project, service, environment }: { project: string; service: string; environment?: string }) {
  const [origin, setOrigin] = React.useState("http://localhost:8080");
  React.useEffect(() => setOrigin(window.location.origin), []);
  const text = [
    `caboose login --host ${origin}`,
    `caboose link --project ${project} --service ${service}${environment && environment !== "production" ? ` --environment ${environment}` : ""}`,
    `caboose up`,
  ].join("\n");
  return (
    <div className="relative rounded-lg border border-white/10 bg-slate-950/80">
      <pre className="overflow-x-auto p-3 pr-10 font-mono text-xs leading-relaxed text-slate-200">
        {text.split("\n").map((line) => (
          <div key={line}>
            <span className="text-purple-400 select-none">$ </span>
            {line}
          </div>
        ))}
      </pre>
      <CopyButton text={text} label="Copy commands" className="absolute top-2 right-2" />
    </div>
  );
}
