// The test's MCP client: the official TypeScript SDK, unmodified. It
// connects to sandboxd's MCP server, lists its tools, makes the calls it
// is given and prints one JSON object with everything it received; the Go
// test (mcp_test.go) asserts on that.
//
//   node client.mjs stdio BIN ARGS CALLS   spawns `BIN mcp ARGS...` (ARGS: a JSON array)
//   node client.mjs http URL TOKEN CALLS   the daemon's /mcp, with a bearer token
//
// CALLS is a JSON array of {"name", "arguments"}. The string "$sandbox" in
// an argument is replaced by the sandbox_id of the last create_sandbox.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [mode, target, extra, callsJSON] = process.argv.slice(2);

function transport() {
  if (mode === "stdio") {
    return new StdioClientTransport({ command: target, args: ["mcp", ...JSON.parse(extra)], stderr: "inherit" });
  }
  return new StreamableHTTPClientTransport(new URL(target), {
    requestInit: { headers: { Authorization: `Bearer ${extra}` } },
  });
}

function substitute(value, sandbox) {
  if (value === "$sandbox") return sandbox;
  if (Array.isArray(value)) return value.map((v) => substitute(v, sandbox));
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substitute(v, sandbox)]));
  }
  return value;
}

const client = new Client({ name: "sandboxd-test", version: "1.0.0" });
await client.connect(transport());
const out = { server: client.getServerVersion(), tools: [], results: [] };
const { tools } = await client.listTools();
out.tools = tools.map((t) => ({
  name: t.name,
  description: t.description,
  input: t.inputSchema,
  output: t.outputSchema,
}));
let sandbox = "";
for (const call of JSON.parse(callsJSON)) {
  // callTool validates structuredContent against the tool's output schema.
  const r = await client.callTool({ name: call.name, arguments: substitute(call.arguments, sandbox) });
  if (call.name === "create_sandbox" && !r.isError) sandbox = r.structuredContent.sandbox_id;
  out.results.push({ name: call.name, isError: r.isError === true, content: r.content, structured: r.structuredContent });
}
await client.close();
process.stdout.write(JSON.stringify(out) + "\n");
