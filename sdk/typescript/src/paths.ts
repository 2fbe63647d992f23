/** URL paths of the API. */

/** /v1/sandboxes/{id} and what follows. */
export function sandboxPath(id: string, rest = ""): string {
  return `/v1/sandboxes/${encodeURIComponent(id)}${rest}`;
}

/**
 * The URL of a sandbox path (docs/api.md, "Paths"): each segment escaped,
 * an absolute path's leading slash as %2F (a // would be cleaned into a
 * relative path), and "." or ".." as %2E so that no HTTP layer cleans the
 * URL into another resource; the daemon refuses them.
 */
export function filesPath(id: string, p: string): string {
  if (p === "") return sandboxPath(id, "/files");
  let out = sandboxPath(id, "/files/");
  if (p.startsWith("/")) {
    out += "%2F";
    p = p.slice(1);
  }
  return out + p.split("/").map((s) => (s === "." || s === ".." ? "%2E".repeat(s.length) : encodeURIComponent(s))).join("/");
}

/** A query string of the defined values ("" when none). */
export function query(q: Record<string, string | undefined>): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) if (v !== undefined) p.set(k, v);
  const s = p.toString();
  return s ? `?${s}` : "";
}
