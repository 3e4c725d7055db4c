/**
 * ANSI SGR escape sequences → styled spans, for build and runtime logs.
 *
 * Colours (16, 256 and 24-bit), bold, dim, italic, underline and inverse are kept; every other
 * escape sequence (cursor movement, erase line, OSC titles and hyperlinks) is dropped so it never
 * shows up as garbage. The state is carried across calls, because a colour set on one line may
 * apply to the next.
 */
export interface AnsiStyle {
  fg?: string;
  bg?: string;
  bold?: boolean;
  dim?: boolean;
  italic?: boolean;
  underline?: boolean;
  inverse?: boolean;
}

export interface AnsiSpan {
  text: string;
  style: AnsiStyle;
}

// Tuned for a slate-950 background: readable, not neon.
export const PALETTE_16 = [
  "#1e293b", // black (slate-800, visible on the dark background)
  "#f87171", // red
  "#4ade80", // green
  "#facc15", // yellow
  "#60a5fa", // blue
  "#c084fc", // magenta
  "#22d3ee", // cyan
  "#e2e8f0", // white
  "#64748b", // bright black
  "#fca5a5", // bright red
  "#86efac", // bright green
  "#fde047", // bright yellow
  "#93c5fd", // bright blue
  "#d8b4fe", // bright magenta
  "#67e8f9", // bright cyan
  "#f8fafc", // bright white
] as const;

const CUBE = [0, 95, 135, 175, 215, 255];

export function color256(n: number): string | undefined {
  if (!Number.isInteger(n) || n < 0 || n > 255) return undefined;
  if (n < 16) return PALETTE_16[n];
  if (n < 232) {
    const i = n - 16;
    const r = CUBE[Math.floor(i / 36)] ?? 0;
    const g = CUBE[Math.floor(i / 6) % 6] ?? 0;
    const b = CUBE[i % 6] ?? 0;
    return `rgb(${r},${g},${b})`;
  }
  const level = 8 + (n - 232) * 10;
  return `rgb(${level},${level},${level})`;
}

// CSI (ESC [ params final), OSC (ESC ] … BEL or ESC \), and lone two-character escapes.
// eslint-disable-next-line no-control-regex
const ESCAPE = /\x1b\[([0-?]*)([ -/]*)([@-~])|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]|\x9b([0-?]*)([@-~])/g;

function applySgr(style: AnsiStyle, params: string): AnsiStyle {
  const codes = params === "" ? [0] : params.split(/[;:]/).map((p) => (p === "" ? 0 : Number(p)));
  let next: AnsiStyle = { ...style };
  for (let i = 0; i < codes.length; i++) {
    const code = codes[i] ?? 0;
    if (code === 0) next = {};
    else if (code === 1) next.bold = true;
    else if (code === 2) next.dim = true;
    else if (code === 3) next.italic = true;
    else if (code === 4) next.underline = true;
    else if (code === 7) next.inverse = true;
    else if (code === 22) {
      delete next.bold;
      delete next.dim;
    } else if (code === 23) delete next.italic;
    else if (code === 24) delete next.underline;
    else if (code === 27) delete next.inverse;
    else if (code >= 30 && code <= 37) next.fg = PALETTE_16[code - 30];
    else if (code >= 90 && code <= 97) next.fg = PALETTE_16[code - 90 + 8];
    else if (code === 39) delete next.fg;
    else if (code >= 40 && code <= 47) next.bg = PALETTE_16[code - 40];
    else if (code >= 100 && code <= 107) next.bg = PALETTE_16[code - 100 + 8];
    else if (code === 49) delete next.bg;
    else if (code === 38 || code === 48) {
      const key = code === 38 ? "fg" : "bg";
      const mode = codes[i + 1];
      if (mode === 5) {
        const c = color256(codes[i + 2] ?? -1);
        if (c) next[key] = c;
        i += 2;
      } else if (mode === 2) {
        const [r, g, b] = [codes[i + 2], codes[i + 3], codes[i + 4]];
        if ([r, g, b].every((v) => v !== undefined && v >= 0 && v <= 255)) next[key] = `rgb(${r},${g},${b})`;
        i += 4;
      }
    }
  }
  return next;
}

/** Split `text` into styled spans; returns the spans and the style in force at the end. */
export function parseAnsi(text: string, initial: AnsiStyle = {}): { spans: AnsiSpan[]; style: AnsiStyle } {
  const spans: AnsiSpan[] = [];
  let style = initial;
  let last = 0;
  const push = (chunk: string) => {
    if (!chunk) return;
    const prev = spans[spans.length - 1];
    if (prev && prev.style === style) prev.text += chunk;
    else spans.push({ text: chunk, style });
  };
  if (!text.includes("\x1b") && !text.includes("\x9b")) {
    push(text);
    return { spans, style };
  }
  ESCAPE.lastIndex = 0;
  for (let m = ESCAPE.exec(text); m; m = ESCAPE.exec(text)) {
    push(text.slice(last, m.index));
    last = ESCAPE.lastIndex;
    const final = m[3] ?? m[5];
    const params = m[1] ?? m[4] ?? "";
    if (final === "m" && !m[2]) style = applySgr(style, params);
  }
  push(text.slice(last));
  return { spans, style };
}

/** The text without any escape sequence (for search, copy and download). */
export function stripAnsi(text: string): string {
  if (!text.includes("\x1b") && !text.includes("\x9b")) return text;
  return text.replace(ESCAPE, "");
}

/** Inline CSS for a span's style. */
export function styleToCss(style: AnsiStyle): Record<string, string> | undefined {
  const css: Record<string, string> = {};
  let fg = style.fg;
  let bg = style.bg;
  if (style.inverse) [fg, bg] = [bg ?? "#0f172a", fg ?? "#e2e8f0"];
  if (fg) css.color = fg;
  if (bg) css.backgroundColor = bg;
  if (style.bold) css.fontWeight = "700";
  if (style.dim) css.opacity = "0.65";
  if (style.italic) css.fontStyle = "italic";
  if (style.underline) css.textDecoration = "underline";
  return Object.keys(css).length ? css : undefined;
}
