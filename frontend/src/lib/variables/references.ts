/**
 * `${{ … }}` variable references: where the caret is inside one, what can complete it, and
 * which references a value uses (to flag unknown ones before saving).
 *
 * Forms (resolved by the API at deploy time): `${{shared.KEY}}`, `${{<service>.KEY}}`,
 * `${{<service>.CABOOSE_PUBLIC_DOMAIN}}` (and CABOOSE_PRIVATE_DOMAIN).
 */
export interface ReferenceSources {
  shared: readonly string[];
  services: readonly { name: string; keys: readonly string[] }[];
}

export interface ReferenceContext {
  /** Index of the `$` that opens the reference. */
  start: number;
  /** What was typed after `${{` up to the caret (trimmed of leading spaces). */
  query: string;
}

export interface Suggestion {
  value: string; // e.g. "shared.DATABASE_URL"
  group: string; // "Shared" or the service name
}

export const SERVICE_BUILTINS = ["CABOOSE_PUBLIC_DOMAIN", "CABOOSE_PRIVATE_DOMAIN"] as const;

/** The reference being typed at `caret`, if the caret is inside an unclosed `${{`. */
export function referenceContext(text: string, caret: number): ReferenceContext | null {
  const before = text.slice(0, caret);
  const start = before.lastIndexOf("${{");
  if (start < 0) return null;
  const inside = before.slice(start + 3);
  if (inside.includes("}}") || /[\s"'`]/.test(inside.trimStart())) return null;
  return { start, query: inside.trimStart() };
}

export function allReferences(sources: ReferenceSources): Suggestion[] {
  const out: Suggestion[] = sources.shared.map((key) => ({ value: `shared.${key}`, group: "Shared" }));
  for (const service of sources.services) {
    const keys = new Set([...service.keys, ...SERVICE_BUILTINS]);
    for (const key of keys) out.push({ value: `${service.name}.${key}`, group: service.name });
  }
  return out;
}

/** Suggestions for `query`: prefix matches first, then substring matches; at most `limit`. */
export function suggestReferences(query: string, sources: ReferenceSources, limit = 8): Suggestion[] {
  const q = query.toLowerCase();
  const all = allReferences(sources);
  const prefix = all.filter((s) => s.value.toLowerCase().startsWith(q));
  const rest = q ? all.filter((s) => !s.value.toLowerCase().startsWith(q) && s.value.toLowerCase().includes(q)) : [];
  return [...prefix, ...rest].slice(0, limit);
}

/** Replace the reference being typed with the chosen one; returns the text and the new caret. */
export function applySuggestion(text: string, caret: number, context: ReferenceContext, value: string): { text: string; caret: number } {
  const after = text.slice(caret);
  // Swallow the rest of a partially typed name and an existing closing `}}`.
  const tail = /^[A-Za-z0-9_.-]*\s*(\}\})?/.exec(after)?.[0] ?? "";
  const inserted = `\${{${value}}}`;
  const next = text.slice(0, context.start) + inserted + after.slice(tail.length);
  return { text: next, caret: context.start + inserted.length };
}

const REFERENCE = /\$\{\{\s*([^}]*?)\s*\}\}/g;

/** Every reference a value uses, as written (`shared.KEY`, `api.PORT`). */
export function referencesIn(value: string): string[] {
  return [...value.matchAll(REFERENCE)].map((m) => m[1] ?? "");
}

/** References that name nothing known; an empty list when all resolve. */
export function unknownReferences(value: string, sources: ReferenceSources): string[] {
  const known = new Set(allReferences(sources).map((s) => s.value));
  return referencesIn(value).filter((r) => !known.has(r));
}
