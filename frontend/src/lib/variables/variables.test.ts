import { describe, expect, it } from "vitest";
import { parseDotenv, serializeDotenv, validateVariableKey } from "./dotenv";
import { applySuggestion, referenceContext, suggestReferences, unknownReferences, referencesIn } from "./references";

const sources = {
  shared: ["DATABASE_URL", "SENTRY_DSN"],
  services: [
    { name: "api", keys: ["PORT", "API_KEY"] },
    { name: "web", keys: [] },
  ],
};

describe("referenceContext", () => {
  it("finds the reference being typed", () => {
    const text = "postgres://${{sha";
    expect(referenceContext(text, text.length)).toEqual({ start: 11, query: "sha" });
    expect(referenceContext("${{", 3)).toEqual({ start: 0, query: "" });
  });
  it("is null outside a reference or after it closes", () => {
    expect(referenceContext("plain", 5)).toBeNull();
    expect(referenceContext("${{shared.X}} and", 17)).toBeNull();
    expect(referenceContext("${{a b", 6)).toBeNull();
  });
});

describe("suggestReferences", () => {
  it("lists shared keys, service keys and each service's domains", () => {
    const all = suggestReferences("", sources, 100).map((s) => s.value);
    expect(all).toContain("shared.DATABASE_URL");
    expect(all).toContain("api.API_KEY");
    expect(all).toContain("web.CABOOSE_PUBLIC_DOMAIN");
    expect(all).toContain("web.CABOOSE_PRIVATE_DOMAIN");
  });
  it("ranks prefix matches before substring matches, case-insensitively", () => {
    const values = suggestReferences("api", sources, 100).map((s) => s.value);
    expect(values[0]).toMatch(/^api\./);
    expect(values.every((v) => v.startsWith("api."))).toBe(true);
    const domain = suggestReferences("domain", sources, 100).map((s) => s.value);
    expect(domain).toContain("web.CABOOSE_PUBLIC_DOMAIN");
    expect(suggestReferences("dsn", sources).map((s) => s.value)).toEqual(["shared.SENTRY_DSN"]);
  });
  it("respects the limit", () => {
    expect(suggestReferences("", sources, 3)).toHaveLength(3);
  });
});

describe("applySuggestion", () => {
  it("completes and closes the reference", () => {
    const text = "url=${{sh";
    const ctx = referenceContext(text, text.length)!;
    expect(applySuggestion(text, text.length, ctx, "shared.DATABASE_URL")).toEqual({
      text: "url=${{shared.DATABASE_URL}}",
      caret: 28,
    });
  });
  it("replaces a partly typed name and does not double the closing braces", () => {
    const text = "${{sha}}/db";
    const ctx = referenceContext(text, 5)!;
    expect(applySuggestion(text, 5, ctx, "shared.SENTRY_DSN").text).toBe("${{shared.SENTRY_DSN}}/db");
  });
});

describe("unknownReferences", () => {
  it("flags references that name nothing", () => {
    expect(referencesIn("a ${{ shared.DATABASE_URL }} b ${{api.PORT}}")).toEqual(["shared.DATABASE_URL", "api.PORT"]);
    expect(unknownReferences("${{shared.DATABASE_URL}}:${{shared.NOPE}}:${{worker.X}}", sources)).toEqual([
      "shared.NOPE",
      "worker.X",
    ]);
  });
});

describe("parseDotenv", () => {
  it("parses keys, quotes, export, comments and escapes", () => {
    const { variables, problems } = parseDotenv(
      [
        "# comment",
        "",
        "A=1",
        "export B=two words # trailing comment",
        'C="line\\nbreak \\"q\\""',
        "D='single # not a comment'",
        "E=",
        'F="multi',
        'line"',
        "G=a=b=c",
      ].join("\n"),
    );
    expect(problems).toEqual([]);
    expect(variables).toEqual({
      A: "1",
      B: "two words",
      C: 'line\nbreak "q"',
      D: "single # not a comment",
      E: "",
      F: "multi\nline",
      G: "a=b=c",
    });
  });
  it("reports bad lines with their numbers and keeps the good ones", () => {
    const { variables, problems } = parseDotenv("OK=1\n1BAD=x\nnoequals\nQ='open");
    expect(variables).toEqual({ OK: "1" });
    expect(problems.map((p) => p.line)).toEqual([2, 3, 4]);
  });
  it("round-trips through serializeDotenv", () => {
    const vars = { URL: "https://x.y/z?a=1", SPACED: "a b", QUOTE: "it's", NL: "a\nb", EMPTY: "", HASH: "a#b" };
    expect(parseDotenv(serializeDotenv(vars)).variables).toEqual(vars);
  });
});

describe("validateVariableKey", () => {
  it("accepts shell-style names only", () => {
    expect(validateVariableKey("DATABASE_URL")).toBeUndefined();
    expect(validateVariableKey("_x1")).toBeUndefined();
    expect(validateVariableKey("1X")).toBeDefined();
    expect(validateVariableKey("A-B")).toBeDefined();
    expect(validateVariableKey("")).toBeDefined();
  });
});
