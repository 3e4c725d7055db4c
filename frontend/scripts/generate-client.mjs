#!/usr/bin/env node
// Regenerate the typed API client in src/client/ from the API's OpenAPI document.
//
//   npm run generate:client                 # reads ../openapi.json (what `make openapi` writes)
//   npm run generate:client -- --input URL  # or a file path, or http://127.0.0.1:<port>/openapi.json
//   npm run check:client                    # exit 1 if src/client/ differs from what the document gives
//
// Input order: --input, $CABOOSE_OPENAPI, ../openapi.json, http://127.0.0.1:$CABOOSE_API_PORT/openapi.json.
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createClient } from "@hey-api/openapi-ts";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "..");
const target = path.join(root, "src", "client");

const args = process.argv.slice(2);
const check = args.includes("--check");
const inputIndex = args.indexOf("--input");
const repoDocument = path.resolve(root, "..", "openapi.json");

function chooseInput() {
  if (inputIndex >= 0 && args[inputIndex + 1]) return args[inputIndex + 1];
  if (process.env.CABOOSE_OPENAPI) return process.env.CABOOSE_OPENAPI;
  if (existsSync(repoDocument)) return repoDocument;
  return `http://127.0.0.1:${process.env.CABOOSE_API_PORT ?? "8000"}/openapi.json`;
}

function listFiles(dir, prefix = "") {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .flatMap((name) => {
      const full = path.join(dir, name);
      const rel = path.join(prefix, name);
      return statSync(full).isDirectory() ? listFiles(full, rel) : [rel];
    })
    .sort();
}

const input = chooseInput();
const output = check ? mkdtempSync(path.join(tmpdir(), "caboose-client-")) : target;

await createClient({
  input,
  output: { path: output, clean: true },
  logs: { level: "silent" },
  plugins: [
    "@hey-api/typescript",
    "@hey-api/sdk",
    { name: "@hey-api/client-fetch", throwOnError: false },
  ],
});

if (!check) {
  console.log(`src/client/ regenerated from ${input}`);
  process.exit(0);
}

const expected = listFiles(output);
const actual = listFiles(target);
const differing = [...new Set([...expected, ...actual])].filter((file) => {
  const a = path.join(output, file);
  const b = path.join(target, file);
  return !existsSync(a) || !existsSync(b) || readFileSync(a, "utf8") !== readFileSync(b, "utf8");
});
rmSync(output, { recursive: true, force: true });
if (differing.length) {
  console.error(
    `src/client/ is out of date with ${input}: ${differing.join(", ")}\n` +
      "Run `make client` (make openapi, then npm run generate:client) and commit the result.",
  );
  process.exit(1);
}
console.log(`src/client/ is up to date with ${input}`);
