/** The raw `.env` editor: parse what a user pastes, and write variables back out. */
export const VARIABLE_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;
export const MAX_VALUE_LENGTH = 32_768;

export interface DotenvProblem {
  line: number;
  message: string;
}

export function validateVariableKey(key: string): string | undefined {
  if (!key) return "A name is required";
  if (!VARIABLE_KEY.test(key)) return "Letters, digits and _ only, not starting with a digit";
  if (key.length > 255) return "At most 255 characters";
  return undefined;
}

function unescapeDouble(value: string): string {
  return value.replace(/\\([nrt"\\$])/g, (_, c: string) => ({ n: "\n", r: "\r", t: "\t" })[c] ?? c);
}

export function parseDotenv(text: string): { variables: Record<string, string>; problems: DotenvProblem[] } {
  const variables: Record<string, string> = {};
  const problems: DotenvProblem[] = [];
  const lines = text.replace(/\r\n?/g, "\n").split("\n");
  for (let i = 0; i < lines.length; i++) {
    const number = i + 1;
    const raw = lines[i] ?? "";
    const trimmed = raw.trim();
    if (!trimmed || trimmed.startsWith("#")) continue;
    const body = trimmed.replace(/^export\s+/, "");
    const eq = body.indexOf("=");
    if (eq <= 0) {
      problems.push({ line: number, message: `Expected KEY=value` });
      continue;
    }
    const key = body.slice(0, eq).trim();
    const keyProblem = validateVariableKey(key);
    if (keyProblem) {
      problems.push({ line: number, message: `${key}: ${keyProblem}` });
      continue;
    }
    let rest = body.slice(eq + 1).trimStart();
    let value: string;
    const quote = rest[0];
    if (quote === '"' || quote === "'" || quote === "`") {
      // A quoted value may span lines until its closing quote.
      let j = i;
      let content = rest.slice(1);
      let close = findClosingQuote(content, quote);
      while (close < 0 && j + 1 < lines.length) {
        j++;
        content += `\n${lines[j] ?? ""}`;
        close = findClosingQuote(content, quote);
      }
      if (close < 0) {
        problems.push({ line: number, message: `${key}: unterminated ${quote} quote` });
        i = j;
        continue;
      }
      value = content.slice(0, close);
      if (quote === '"') value = unescapeDouble(value);
      i = j;
    } else {
      const comment = rest.search(/\s#/);
      if (comment >= 0) rest = rest.slice(0, comment);
      value = rest.trim();
    }
    if (value.length > MAX_VALUE_LENGTH) {
      problems.push({ line: number, message: `${key}: longer than ${MAX_VALUE_LENGTH} characters` });
      continue;
    }
    variables[key] = value;
  }
  return { variables, problems };
}

function findClosingQuote(text: string, quote: string): number {
  for (let k = 0; k < text.length; k++) {
    if (text[k] === "\\" && quote === '"') {
      k++;
      continue;
    }
    if (text[k] === quote) return k;
  }
  return -1;
}

/** KEY=value lines, sorted; values quoted when they would not survive unquoted. */
export function serializeDotenv(variables: Record<string, string>): string {
  return Object.keys(variables)
    .sort()
    .map((key) => `${key}=${quoteValue(variables[key] ?? "")}`)
    .join("\n");
}

function quoteValue(value: string): string {
  if (value === "") return "";
  if (/^[A-Za-z0-9_./:@%+,=-]+$/.test(value) && !value.includes("#")) return value;
  if (!value.includes("'") && !value.includes("\n")) return `'${value}'`;
  return `"${value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`;
}
