// Drives the unmodified piston-client package against a Piston-compatible
// server: node run.mjs MODULES_DIR SERVER_URL < cases.json, where each case
// is {"language", "code", "stdin"?, "args"?, "files"?}. Prints one JSON
// object: {"runtimes": [...], "results": [...]} (each result as
// piston-client returned it), so that the Go test judges it.
import { pathToFileURL } from "node:url";
import { readFileSync } from "node:fs";
import path from "node:path";

const [modules, server] = process.argv.slice(2);
const { piston } = await import(pathToFileURL(path.join(modules, "node_modules", "piston-client", "index.js")).href);
const client = piston({ server });
const cases = JSON.parse(readFileSync(0, "utf8"));
const runtimes = await client.runtimes();
const results = [];
for (const c of cases) {
  const options = {};
  if (c.stdin !== undefined) options.stdin = c.stdin;
  if (c.args !== undefined) options.args = c.args;
  if (c.files !== undefined) options.files = c.files;
  results.push(await client.execute(c.language, c.code, options));
}
process.stdout.write(JSON.stringify({ runtimes, results }));
