import { SettledLink } from "@/components/ui/settled-link";
import { cn } from "@/lib/utils";

export function LogoMark({ className }: { className?: string }) {
  return (
    <svg viewBox="0 0 32 32" aria-hidden className={cn("h-7 w-7", className)}>
      <defs>
        <linearGradient id="caboose-logo" x1="0" y1="0" x2="1" y2="1">
          <stop offset="0" stopColor="#4f46e5" />
          <stop offset="1" stopColor="#7c3aed" />
        </linearGradient>
      </defs>
      <rect width="32" height="32" rx="8" fill="url(#caboose-logo)" />
      <path d="M8 19h16v3H8zM10 12h9l3 5H10z" fill="#fff" />
      <circle cx="12" cy="24" r="2" fill="#22d3ee" />
      <circle cx="20" cy="24" r="2" fill="#22d3ee" />
    </svg>
  );
}

export function Logo({ href = "/" }: { href?: string }) {
  return (
    <SettledLink href={href} className="flex items-center gap-2 rounded-md font-semibold tracking-tight text-white">
      <LogoMark />
      <span>Caboose</span>
    </SettledLink>
  );
}
