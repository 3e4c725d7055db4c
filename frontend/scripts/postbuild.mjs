// `output: "standalone"` leaves static assets out of .next/standalone: copy them in, so that
// `node .next/standalone/server.js` (what `npm start` and `caboosed up` run) serves everything.
import { cpSync, existsSync, rmSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const standalone = path.join(root, ".next", "standalone");
if (!existsSync(path.join(standalone, "server.js"))) {
  console.error("postbuild: .next/standalone/server.js is missing (did `next build` run with output: standalone?)");
  process.exit(1);
}
for (const [from, to] of [
  [path.join(root, ".next", "static"), path.join(standalone, ".next", "static")],
  [path.join(root, "public"), path.join(standalone, "public")],
]) {
  rmSync(to, { recursive: true, force: true });
  if (existsSync(from)) cpSync(from, to, { recursive: true });
}
console.log("postbuild: static assets copied into .next/standalone");
