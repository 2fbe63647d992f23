/** Session sandboxes: a sandbox that keeps its /work and /tmp across execs (docs/api.md, "Sandboxes (sessions)"). */

import { Interactive } from "./interactive.js";
import { filesPath, query, sandboxPath } from "./paths.js";
import { extractTo, tarDirectory } from "./tar.js";
import type { Body, Transport } from "./transport.js";
import type { ArchiveResult, Event, ExecInfo, ExecOptions, ExecuteResponse, FileEntry, SandboxInfo } from "./types.js";

/** A command: argv, or a string run by the image's `/bin/sh -c`. */
export type Command = string | string[];

function argv(cmd: Command): string[] {
  return typeof cmd === "string" ? ["/bin/sh", "-c", cmd] : [...cmd];
}

/** The files API of one sandbox. Paths are relative to /work, or absolute under /work or /tmp. */
export class Files {
  constructor(private readonly t: Transport, private readonly id: string) {}

  /** PUT /v1/sandboxes/{id}/files/{path}: creates or replaces a file (parents made); mode is the permission bits (0o755). */
  write(path: string, content: string | Uint8Array, opts: { mode?: number } = {}): Promise<FileEntry> {
    const mode = opts.mode === undefined ? undefined : opts.mode.toString(8).padStart(4, "0");
    return this.t.call("PUT", filesPath(this.id, path) + query({ mode }), content, { "Content-Type": "application/octet-stream" })
      .then((b) => JSON.parse(b.toString("utf8")) as FileEntry);
  }

  /** GET /v1/sandboxes/{id}/files/{path}: a file's content; `follow` resolves symlinks within /work and /tmp. */
  read(path: string, opts: { follow?: boolean } = {}): Promise<Buffer> {
    return this.t.call("GET", filesPath(this.id, path) + query({ follow: opts.follow ? "1" : undefined }));
  }

  /** A file's content as UTF-8 text. */
  async readText(path: string, opts: { follow?: boolean } = {}): Promise<string> {
    return (await this.read(path, opts)).toString("utf8");
  }

  /** GET of a directory: its entries sorted by name (`recursive`: everything below, depth first). */
  async list(path = "", opts: { recursive?: boolean } = {}): Promise<FileEntry[]> {
    const r = await this.t.json<{ entries: FileEntry[] }>("GET", filesPath(this.id, path) + query({ recursive: opts.recursive ? "1" : undefined }));
    return r.entries;
  }

  /** DELETE /v1/sandboxes/{id}/files/{path}: a file, a symlink or an empty directory (`recursive`: a whole tree). */
  async remove(path: string, opts: { recursive?: boolean } = {}): Promise<void> {
    await this.t.json("DELETE", filesPath(this.id, path) + query({ recursive: opts.recursive ? "1" : undefined }));
  }
}

/** A session sandbox: `info` is the daemon's description of it, `files` its files API. */
export class Sandbox {
  readonly id: string;
  readonly files: Files;

  constructor(private readonly t: Transport, public info: SandboxInfo) {
    this.id = info.id;
    this.files = new Files(t, info.id);
  }

  /** POST /v1/sandboxes/{id}/exec: runs cmd; `.run` of the answer is the result. */
  exec(cmd: Command, opts: ExecOptions = {}): Promise<ExecuteResponse> {
    return this.t.json("POST", sandboxPath(this.id, "/exec"), { ...opts, cmd: argv(cmd) });
  }

  /** The exec with `"stream": true`: its events as they come, the `result` last. */
  async *execStream(cmd: Command, opts: ExecOptions = {}): AsyncGenerator<Event> {
    for await (const line of this.t.lines("POST", sandboxPath(this.id, "/exec"), { ...opts, cmd: argv(cmd), stream: true })) {
      yield JSON.parse(line) as Event;
    }
  }

  /** GET /v1/sandboxes/{id}/exec/ws: the exec over a WebSocket, to send stdin, signals and resizes while it runs. */
  execInteractive(cmd: Command, opts: Omit<ExecOptions, "stdin"> = {}): Promise<Interactive> {
    return Interactive.open(this.t, sandboxPath(this.id, "/exec/ws"), { ...opts, cmd: argv(cmd) });
  }

  /** POST /v1/sandboxes/{id}/exec with `"detach": true`: starts cmd in the background and resolves with its exec. */
  detach(cmd: Command, opts: ExecOptions = {}): Promise<ExecInfo> {
    return this.t.json("POST", sandboxPath(this.id, "/exec"), { ...opts, cmd: argv(cmd), detach: true });
  }

  /** GET /v1/sandboxes/{id}/execs: the detached execs. */
  async execs(): Promise<ExecInfo[]> {
    return (await this.t.json<{ execs: ExecInfo[] }>("GET", sandboxPath(this.id, "/execs"))).execs;
  }

  /** GET /v1/sandboxes/{id}/execs/{exec_id}; `wait` answers once it has ended. */
  getExec(execId: string, opts: { wait?: boolean } = {}): Promise<ExecInfo> {
    return this.t.json("GET", sandboxPath(this.id, `/execs/${encodeURIComponent(execId)}`) + query({ wait: opts.wait ? "1" : undefined }));
  }

  /** DELETE /v1/sandboxes/{id}/execs/{exec_id}: kills a detached exec. */
  async kill(execId: string): Promise<void> {
    await this.t.json("DELETE", sandboxPath(this.id, `/execs/${encodeURIComponent(execId)}`));
  }

  /** GET /v1/sandboxes/{id}/execs/{exec_id}/ws: attaches to a detached exec (its kept output, then what comes, then its exec object as the `result`). */
  attach(execId: string): Promise<Interactive> {
    return Interactive.open(this.t, sandboxPath(this.id, `/execs/${encodeURIComponent(execId)}/ws`));
  }

  /** PUT /v1/sandboxes/{id}/archive: unpacks a tar (gzipped or not) into dir in the sandbox. */
  async putArchive(tar: Body, dir = "/work"): Promise<ArchiveResult> {
    const b = await this.t.call("PUT", sandboxPath(this.id, "/archive") + query({ path: dir }), tar, { "Content-Type": "application/x-tar" });
    return JSON.parse(b.toString("utf8")) as ArchiveResult;
  }

  /** GET /v1/sandboxes/{id}/archive: path (a directory's contents, or one file) as an uncompressed tar. */
  getArchive(path = "/work"): Promise<Buffer> {
    return this.t.call("GET", sandboxPath(this.id, "/archive") + query({ path }));
  }

  /** Copies the local directory's contents (files, directories, symlinks) into dir in the sandbox. */
  async upload(localDir: string, dir = "/work"): Promise<ArchiveResult> {
    return this.putArchive(await tarDirectory(localDir), dir);
  }

  /**
   * Copies path in the sandbox (a directory's contents, or one file) into
   * the local directory, made if missing, and resolves with the names
   * written. Entries that would land outside it, and links leaving it, are
   * refused: what the sandbox made is hostile.
   */
  async download(localDir: string, path = "/work"): Promise<string[]> {
    return extractTo(await this.getArchive(path), localDir);
  }

  /** GET /v1/sandboxes/{id}: updates `info`, with `usage`. */
  async refresh(): Promise<SandboxInfo> {
    this.info = await this.t.json<SandboxInfo>("GET", sandboxPath(this.id));
    return this.info;
  }

  /** PATCH /v1/sandboxes/{id}: replaces the hosts the sandbox may reach (`[]` locks it: install, then lock); updates and resolves with `info`, with `usage` and `network`. */
  async setNetwork(allow: string[]): Promise<SandboxInfo> {
    this.info = await this.t.json<SandboxInfo>("PATCH", sandboxPath(this.id), { network: { allow } });
    return this.info;
  }

  /** DELETE /v1/sandboxes/{id}: ends the sandbox and everything in it. */
  async delete(): Promise<void> {
    await this.t.json("DELETE", sandboxPath(this.id));
  }
}
