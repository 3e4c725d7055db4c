"use client";
import * as React from "react";
import { inputClasses } from "@/components/ui/input";
import { applySuggestion, referenceContext, suggestReferences, type ReferenceSources, type Suggestion } from "@/lib/variables/references";
import { cn } from "@/lib/utils";

/**
 * A value input that completes `${{` references: type `${{` and pick `shared.KEY`,
 * `<service>.KEY` or `<service>.CABOOSE_PUBLIC_DOMAIN` with the arrows and Enter (or Tab).
 */
export function ReferenceInput({
  id,
  value,
  onChange,
  sources,
  placeholder,
  className,
  autoFocus,
  ...aria
}: {
  id: string;
  value: string;
  onChange: (value: string) => void;
  sources: ReferenceSources;
  placeholder?: string;
  className?: string;
  autoFocus?: boolean;
  "aria-label"?: string;
  "aria-describedby"?: string;
  "aria-invalid"?: boolean;
}) {
  const ref = React.useRef<HTMLInputElement>(null);
  const [caret, setCaret] = React.useState(0);
  const [open, setOpen] = React.useState(false);
  const [active, setActive] = React.useState(0);
  const context = open ? referenceContext(value, caret) : null;
  const suggestions: Suggestion[] = context ? suggestReferences(context.query, sources) : [];
  const listId = `${id}-references`;
  const showList = !!context && suggestions.length > 0;

  React.useEffect(() => setActive(0), [context?.query]);

  const pick = (s: Suggestion) => {
    if (!context) return;
    const next = applySuggestion(value, caret, context, s.value);
    onChange(next.text);
    setOpen(false);
    requestAnimationFrame(() => {
      ref.current?.setSelectionRange(next.caret, next.caret);
      setCaret(next.caret);
    });
  };

  return (
    <div className="relative flex-1">
      <input
        ref={ref}
        id={id}
        value={value}
        autoFocus={autoFocus}
        placeholder={placeholder}
        spellCheck={false}
        autoComplete="off"
        role="combobox"
        aria-expanded={showList}
        aria-controls={listId}
        aria-autocomplete="list"
        aria-activedescendant={showList ? `${listId}-${active}` : undefined}
        className={cn(inputClasses, "h-9 font-mono text-xs", className)}
        onChange={(e) => {
          onChange(e.target.value);
          setCaret(e.target.selectionStart ?? e.target.value.length);
          setOpen(true);
        }}
        onSelect={(e) => setCaret(e.currentTarget.selectionStart ?? 0)}
        onBlur={() => setTimeout(() => setOpen(false), 120)}
        onKeyDown={(e) => {
          if (!showList) return;
          if (e.key === "ArrowDown") {
            e.preventDefault();
            setActive((a) => (a + 1) % suggestions.length);
          } else if (e.key === "ArrowUp") {
            e.preventDefault();
            setActive((a) => (a - 1 + suggestions.length) % suggestions.length);
          } else if (e.key === "Enter" || e.key === "Tab") {
            const s = suggestions[active];
            if (s) {
              e.preventDefault();
              pick(s);
            }
          } else if (e.key === "Escape") {
            e.preventDefault();
            e.stopPropagation();
            setOpen(false);
          }
        }}
        {...aria}
      />
      {showList ? (
        <ul id={listId} role="listbox" className="card absolute top-full left-0 z-50 mt-1 max-h-64 w-full min-w-64 overflow-y-auto p-1 shadow-xl shadow-black/50">
          {suggestions.map((s, i) => (
            <li
              key={s.value}
              id={`${listId}-${i}`}
              role="option"
              aria-selected={i === active}
              onMouseDown={(e) => {
                e.preventDefault();
                pick(s);
              }}
              onMouseEnter={() => setActive(i)}
              className={cn("flex cursor-pointer items-center justify-between gap-3 rounded-md px-2 py-1.5 font-mono text-xs", i === active ? "bg-violet-600/30 text-white" : "text-slate-300")}
            >
              <span className="truncate">{`\${{${s.value}}}`}</span>
              <span className="shrink-0 font-sans text-[10px] text-slate-400">{s.group}</span>
            </li>
          ))}
        </ul>
      ) : null}
    </div>
  );
}
