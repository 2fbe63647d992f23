/**
 * Just enough tar (POSIX ustar with PAX extended headers) for a sandbox's
 * archive endpoints: directories, regular files and symlinks, written from
 * a local directory and read back into one.
 */

import { chmod, lstat, mkdir, readdir, readFile, readlink, rm, symlink, utimes, writeFile } from "node:fs/promises";
import * as path from "node:path";

const BLOCK = 512;

interface Entry {
  name: string;
  type: "file" | "dir" | "symlink";
  mode: number;
  mtime: number;
  data?: Buffer;
  link?: string;
}

/** A tar of the contents of dir (not dir itself), names relative to it. */
export async function tarDirectory(dir: string): Promise<Buffer> {
  const out: Buffer[] = [];
  const walk = async (rel: string): Promise<void> => {
    for (const name of (await readdir(path.join(dir, rel))).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const full = path.join(dir, r);
      const st = await lstat(full);
      const mtime = Math.floor(st.mtimeMs / 1000);
      if (st.isSymbolicLink()) {
        out.push(...header({ name: r, type: "symlink", mode: 0o777, mtime, link: await readlink(full) }));
      } else if (st.isDirectory()) {
        out.push(...header({ name: r + "/", type: "dir", mode: st.mode & 0o777, mtime }));
        await walk(r);
      } else if (st.isFile()) {
        const data = await readFile(full);
        out.push(...header({ name: r, type: "file", mode: st.mode & 0o777, mtime, data }), data, pad(data.length));
      }
      // Sockets, FIFOs and devices are left out: the daemon refuses them.
    }
  };
  await walk("");
  out.push(Buffer.alloc(2 * BLOCK));
  return Buffer.concat(out);
}

function header(e: Entry): Buffer[] {
  const size = e.data?.length ?? 0;
  const pax: string[] = [];
  // Names and links that ustar's fields can't hold go in a PAX header.
  if (Buffer.byteLength(e.name) > 100) pax.push(paxRecord("path", e.name));
  if (e.link && Buffer.byteLength(e.link) > 100) pax.push(paxRecord("linkpath", e.link));
  const blocks: Buffer[] = [];
  if (pax.length) {
    const body = Buffer.from(pax.join(""), "utf8");
    blocks.push(ustar("PaxHeader", "x", 0o644, e.mtime, body.length, ""), body, pad(body.length));
  }
  const flag = e.type === "file" ? "0" : e.type === "dir" ? "5" : "2";
  blocks.push(ustar(truncate(e.name, 100), flag, e.mode, e.mtime, size, truncate(e.link ?? "", 100)));
  return blocks;
}

function ustar(name: string, flag: string, mode: number, mtime: number, size: number, link: string): Buffer {
  const h = Buffer.alloc(BLOCK);
  h.write(name, 0, 100, "utf8");
  octal(h, 100, 8, mode);
  octal(h, 108, 8, 0);
  octal(h, 116, 8, 0);
  octal(h, 124, 12, size);
  octal(h, 136, 12, mtime);
  h.fill(" ", 148, 156);
  h.write(flag, 156, 1, "ascii");
  h.write(link, 157, 100, "utf8");
  h.write("ustar\u000000", 257, 8, "binary");
  let sum = 0;
  for (const b of h) sum += b;
  octal(h, 148, 7, sum);
  return h;
}

function octal(h: Buffer, off: number, len: number, v: number): void {
  h.write(v.toString(8).padStart(len - 1, "0") + "\0", off, len, "ascii");
}

function paxRecord(key: string, value: string): string {
  // "LEN key=value\n", LEN counting itself.
  const rest = ` ${key}=${value}\n`;
  let n = Buffer.byteLength(rest);
  n += String(n).length;
  if (String(n).length + Buffer.byteLength(rest) !== n) n++;
  return `${n}${rest}`;
}

function truncate(s: string, n: number): string {
  const b = Buffer.from(s, "utf8");
  return b.length <= n ? s : b.subarray(0, n).toString("utf8");
}

function pad(n: number): Buffer {
  return Buffer.alloc((BLOCK - (n % BLOCK)) % BLOCK);
}

/** The entries of a tar (ustar, PAX and GNU long names). */
export function untar(buf: Buffer): Entry[] {
  const entries: Entry[] = [];
  let off = 0;
  let pax: Record<string, string> = {};
  let longName: string | undefined;
  while (off + BLOCK <= buf.length) {
    const h = buf.subarray(off, off + BLOCK);
    if (h.every((b) => b === 0)) break;
    const size = parseInt(cstr(h, 124, 12).trim() || "0", 8);
    const flag = String.fromCharCode(h[156] || 0x30);
    const data = buf.subarray(off + BLOCK, off + BLOCK + size);
    if (data.length < size) throw new Error("the archive is cut short");
    off += BLOCK + size + ((BLOCK - (size % BLOCK)) % BLOCK);
    if (flag === "x") {
      pax = parsePax(data);
      continue;
    }
    if (flag === "L") {
      longName = cstr(data, 0, data.length);
      continue;
    }
    const prefix = cstr(h, 345, 155);
    let name = pax.path ?? longName ?? (prefix ? `${prefix}/${cstr(h, 0, 100)}` : cstr(h, 0, 100));
    const link = pax.linkpath ?? cstr(h, 157, 100);
    const mode = parseInt(cstr(h, 100, 8).trim() || "644", 8) & 0o777;
    const mtime = parseInt(cstr(h, 136, 12).trim() || "0", 8);
    pax = {};
    longName = undefined;
    name = name.replace(/\/+$/, "");
    if (flag === "0" || flag === "\0" || flag === "7") entries.push({ name, type: "file", mode, mtime, data: Buffer.from(data) });
    else if (flag === "5") entries.push({ name, type: "dir", mode, mtime });
    else if (flag === "2") entries.push({ name, type: "symlink", mode, mtime, link });
    else throw new Error(`archive entry ${JSON.stringify(name)} is not a file, directory or symlink`);
  }
  return entries;
}

function cstr(b: Buffer, off: number, len: number): string {
  const s = b.subarray(off, off + len);
  const z = s.indexOf(0);
  return s.subarray(0, z < 0 ? s.length : z).toString("utf8");
}

function parsePax(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let off = 0;
  while (off < data.length) {
    const sp = data.indexOf(0x20, off);
    if (sp < 0) break;
    const n = parseInt(data.subarray(off, sp).toString("ascii"), 10);
    if (!(n > 0)) break;
    const rec = data.subarray(sp + 1, off + n - 1).toString("utf8");
    const eq = rec.indexOf("=");
    if (eq > 0) out[rec.slice(0, eq)] = rec.slice(eq + 1);
    off += n;
  }
  return out;
}

/**
 * Writes a tar's entries under root, made if missing, and returns their
 * names. What a sandbox made is hostile: an entry that would land outside
 * root (an absolute name, `..`, a path through a symlink) and a symlink
 * whose target is absolute or leaves root are refused.
 */
export async function extractTo(buf: Buffer, root: string): Promise<string[]> {
  const base = path.resolve(root);
  await mkdir(base, { recursive: true });
  const entries = untar(buf);
  // Every entry is checked before anything is written: a refused archive leaves nothing behind.
  for (const e of entries) {
    const target = path.resolve(base, e.name);
    if (path.isAbsolute(e.name) || e.name.split("/").includes("..") || !inside(base, target)) {
      throw new Error(`archive entry ${JSON.stringify(e.name)} is outside the directory`);
    }
    if (e.type === "symlink" && (path.isAbsolute(e.link ?? "") || !inside(base, path.resolve(path.dirname(target), e.link ?? "")))) {
      throw new Error(`archive symlink ${JSON.stringify(e.name)} points outside the directory`);
    }
  }
  const dirs: Entry[] = [];
  for (const e of entries) {
    const target = path.resolve(base, e.name);
    await noSymlinkOnTheWay(base, path.dirname(target));
    if (e.type === "dir") {
      await mkdir(target, { recursive: true });
      dirs.push(e);
    } else if (e.type === "file") {
      await mkdir(path.dirname(target), { recursive: true });
      await writeFile(target, e.data!, { mode: e.mode || 0o644 });
      await chmod(target, e.mode || 0o644);
      await utimes(target, e.mtime, e.mtime);
    } else {
      await mkdir(path.dirname(target), { recursive: true });
      await rm(target, { force: true }); // an existing file or link of the name is replaced, never a directory
      await symlink(e.link!, target);
    }
  }
  // Directories last, so that what was made inside them does not change their times.
  for (const d of dirs) {
    const target = path.resolve(base, d.name);
    await chmod(target, d.mode || 0o755);
    await utimes(target, d.mtime, d.mtime);
  }
  return entries.map((e) => e.name).filter((n) => n !== "" && n !== ".");
}

function inside(base: string, p: string): boolean {
  return p === base || p.startsWith(base + path.sep);
}

async function noSymlinkOnTheWay(base: string, dir: string): Promise<void> {
  const rel = path.relative(base, dir);
  let p = base;
  for (const seg of rel ? rel.split(path.sep) : []) {
    p = path.join(p, seg);
    try {
      if ((await lstat(p)).isSymbolicLink()) throw new Error(`archive entry goes through the symlink ${JSON.stringify(path.relative(base, p))}`);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return;
      throw e;
    }
  }
}
