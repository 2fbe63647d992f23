/** The client: one-shot runs, session sandboxes, images and the daemon's state, over the HTTP API (docs/api.md). */

import { SandboxdError } from "./errors.js";
import { Interactive } from "./interactive.js";
import { query, sandboxPath } from "./paths.js";
import { Sandbox } from "./sandbox.js";
import { type Body, type ClientOptions, Transport } from "./transport.js";
import type {
  BuildEvent, BuildRequest, CreateSandboxRequest, Event, ExecuteRequest, ExecuteResponse, File, Image, LanguageInfo, LanguageResponse, Limits, Network, SandboxInfo,
  Testset,
} from "./types.js";

/** The main file's name per language and alias of the catalog: the run command uses it, and Java needs the class's own name. Others get "main". */
const MAIN_FILES: Record<string, string> = {
  python: "main.py", py: "main.py", python3: "main.py", "python-sci": "main.py", scipy: "main.py",
  javascript: "main.js", js: "main.js", node: "main.js", nodejs: "main.js",
  c: "main.c", cpp: "main.cpp", "c++": "main.cpp", go: "main.go", golang: "main.go",
  java: "Main.java", rust: "main.rs", rs: "main.rs", ruby: "main.rb", rb: "main.rb",
  php: "main.php", lua: "main.lua", bash: "main.sh", sh: "main.sh",
  csharp: "main.cs", cs: "main.cs", "c#": "main.cs", mono: "main.cs", dotnet: "main.cs",
  perl: "main.pl", pl: "main.pl", perl5: "main.pl", tcl: "main.tcl", tclsh: "main.tcl",
  awk: "main.awk", gawk: "main.awk",
  sql: "main.sql", sqlite: "main.sql", sqlite3: "main.sql", zsh: "main.zsh",
  ksh: "main.ksh", ksh93: "main.ksh", forth: "main.fs", gforth: "main.fs",
  luajit: "main.lua", scheme: "main.scm", guile: "main.scm", scm: "main.scm",
  prolog: "main.pl", swipl: "main.pl", "swi-prolog": "main.pl",
  lisp: "main.lisp", "common-lisp": "main.lisp", commonlisp: "main.lisp", sbcl: "main.lisp", cl: "main.lisp",
  raku: "main.raku", perl6: "main.raku", rakudo: "main.raku",
  pypy: "main.py", pypy3: "main.py", r: "main.R", rscript: "main.R",
  fortran: "main.f90", gfortran: "main.f90", f90: "main.f90", f95: "main.f90",
  "objective-c": "main.m", objc: "main.m", gobjc: "main.m",
  d: "main.d", dlang: "main.d", gdc: "main.d", ada: "main.adb", gnat: "main.adb",
  cobol: "main.cob", cob: "main.cob", gnucobol: "main.cob",
  pascal: "main.pas", fpc: "main.pas", freepascal: "main.pas", pas: "main.pas",
  assembly: "main.asm", asm: "main.asm", nasm: "main.asm", nim: "main.nim",
  kotlin: "main.kt", kt: "main.kt", kotlinc: "main.kt", scala: "main.scala",
  groovy: "main.groovy", clojure: "main.clj", clj: "main.clj",
  erlang: "main.erl", erl: "main.erl", elixir: "main.exs", ex: "main.exs", exs: "main.exs",
  ocaml: "main.ml", ml: "main.ml", haskell: "main.hs", hs: "main.hs", ghc: "main.hs",
  typescript: "main.ts", ts: "main.ts", tsc: "main.ts",
  coffeescript: "main.coffee", coffee: "main.coffee",
};

/** The file name runCode gives code in language. */
export function mainFile(language: string): string {
  return MAIN_FILES[language.toLowerCase()] ?? "main";
}

/** The options of runCode besides the language and the code. */
export interface RunCodeOptions extends Omit<ExecuteRequest, "language" | "files" | "image" | "cmd"> {
  /** More files, name to UTF-8 content, beside the main one. */
  files?: Record<string, string>;
  /** The main file's name; default per language (main.py, Main.java, ...). */
  filename?: string;
  limits?: Limits;
}

/** The language-mode request runCode sends. */
export function requestForCode(language: string, code: string, opts: RunCodeOptions = {}): ExecuteRequest {
  const { files, filename, ...rest } = opts;
  const all: File[] = [{ name: filename ?? mainFile(language), content: code }];
  for (const [name, content] of Object.entries(files ?? {})) all.push({ name, content });
  return { ...rest, language, files: all };
}

/**
 * A connection to a sandboxd daemon: the Unix socket by default
 * (`$SANDBOXD_SOCKET`, else /run/sandboxd/sandboxd.sock), or `url` and
 * `token` for a TCP listener.
 *
 * ```js
 * const r = await new Client().runCode("python", "print(6 * 7)");
 * console.log(r.run?.stdout); // 42
 * ```
 */
export class Client {
  private readonly t: Transport;

  constructor(opts: ClientOptions = {}) {
    this.t = new Transport(opts);
  }

  /** POST /v1/execute: `cmd` in `image` (raw mode) or `files` in `language` (language mode), in fresh sandboxes. */
  execute(req: ExecuteRequest & { language: string }): Promise<LanguageResponse>;
  execute(req: ExecuteRequest): Promise<ExecuteResponse>;
  execute(req: ExecuteRequest): Promise<ExecuteResponse | LanguageResponse> {
    return this.t.json("POST", "/v1/execute", req);
  }

  /** Runs code in a language of GET /v1/languages (language mode): `stdin`, `version`, `args`, `limits`, `tests`, ... */
  runCode(language: string, code: string, opts: RunCodeOptions = {}): Promise<LanguageResponse> {
    return this.t.json("POST", "/v1/execute", requestForCode(language, code, opts));
  }

  /**
   * POST /v1/execute with `"stream": true`: the events as the program
   * writes (`stdout`, `stderr`, `stage`), then the `result` (or an `error`
   * event). Breaking out of the loop disconnects, which ends the run.
   */
  async *stream(req: ExecuteRequest): AsyncGenerator<Event> {
    for await (const line of this.t.lines("POST", "/v1/execute", { ...req, stream: true })) {
      yield JSON.parse(line) as Event;
    }
  }

  /** GET /v1/execute/ws: starts the request (either mode) over a WebSocket, to send stdin, signals and resizes while it runs. */
  interactive(req: ExecuteRequest): Promise<Interactive> {
    return Interactive.open(this.t, "/v1/execute/ws", req);
  }

  /** POST /v1/sandboxes: a session sandbox from an `image` or a `language`. Delete it when done (or use withSandbox). */
  async createSandbox(req: CreateSandboxRequest): Promise<Sandbox> {
    return new Sandbox(this.t, await this.t.json<SandboxInfo>("POST", "/v1/sandboxes", req));
  }

  /**
   * Creates a sandbox, passes it to fn, and deletes it when fn settles:
   *
   * ```js
   * await client.withSandbox({ language: "python" }, async (sb) => {
   *   await sb.files.write("a.py", "print(1)");
   *   console.log((await sb.exec("python3 a.py")).run.stdout);
   * });
   * ```
   */
  async withSandbox<T>(req: CreateSandboxRequest, fn: (sb: Sandbox) => Promise<T>): Promise<T> {
    const sb = await this.createSandbox(req);
    try {
      return await fn(sb);
    } finally {
      await sb.delete();
    }
  }

  /** GET /v1/sandboxes/{id}: an existing sandbox of the caller's, with its usage (`info.usage`). */
  async getSandbox(id: string): Promise<Sandbox> {
    return new Sandbox(this.t, await this.t.json<SandboxInfo>("GET", sandboxPath(id)));
  }

  /** GET /v1/sandboxes: the caller's sandboxes, oldest first. */
  async sandboxes(): Promise<SandboxInfo[]> {
    return (await this.t.json<{ sandboxes: SandboxInfo[] }>("GET", "/v1/sandboxes")).sandboxes;
  }

  /** PATCH /v1/sandboxes/{id}: replaces the sandbox's allow-list (`{ allow: [] }` locks it, package indexes included); resolves with the sandbox, with `usage` and `network`. */
  async updateSandbox(id: string, req: { network: Network }): Promise<Sandbox> {
    return new Sandbox(this.t, await this.t.json<SandboxInfo>("PATCH", sandboxPath(id), req));
  }

  /** DELETE /v1/sandboxes/{id}. */
  async deleteSandbox(id: string): Promise<void> {
    await this.t.json("DELETE", sandboxPath(id));
  }

  /** POST /v1/testsets: a tar, gzipped tar or zip of NAME.in with NAME.ans (or NAME.out) per test and an optional testset.toml; run it with `testset: set.id` in a language request. */
  async createTestset(archive: Body): Promise<Testset> {
    const b = await this.t.call("POST", "/v1/testsets", archive, { "Content-Type": "application/octet-stream" });
    return JSON.parse(b.toString("utf8")) as Testset;
  }

  /** GET /v1/testsets: the caller's sets, oldest first, without their tests. */
  async testsets(): Promise<Testset[]> {
    return (await this.t.json<{ testsets: Testset[] }>("GET", "/v1/testsets")).testsets;
  }

  /** GET /v1/testsets/{id}: one of the caller's sets, with its tests. */
  testset(id: string): Promise<Testset> {
    return this.t.json("GET", `/v1/testsets/${encodeURIComponent(id)}`);
  }

  /** DELETE /v1/testsets/{id}. */
  async deleteTestset(id: string): Promise<void> {
    await this.t.json("DELETE", `/v1/testsets/${encodeURIComponent(id)}`);
  }

  /** GET /v1/languages. */
  languages(): Promise<LanguageInfo[]> {
    return this.t.json("GET", "/v1/languages");
  }

  /** GET /v1/images. */
  images(): Promise<Image[]> {
    return this.t.json("GET", "/v1/images");
  }

  /** GET /v1/images/{name}. */
  image(name: string): Promise<Image> {
    return this.t.json("GET", `/v1/images/${imagePath(name)}`);
  }

  /** DELETE /v1/images/{name}. */
  async removeImage(name: string): Promise<void> {
    await this.t.json("DELETE", `/v1/images/${imagePath(name)}`);
  }

  /** POST /v1/images/pull: pulls ref from a registry the daemon allows. */
  pull(ref: string, name?: string): Promise<Image> {
    return this.t.json("POST", "/v1/images/pull", name ? { ref, name } : { ref });
  }

  /** POST /v1/images/import: a docker-save archive, an OCI layout or a root filesystem, as a tar (optionally gzipped). */
  async importImage(name: string, tar: Body): Promise<Image> {
    const b = await this.t.call("POST", "/v1/images/import" + query({ name }), tar, { "Content-Type": "application/x-tar" });
    return JSON.parse(b.toString("utf8")) as Image;
  }

  /**
   * POST /v1/images/build: makes the image `name` from the image `from` by
   * running each step of `run` over it, and resolves with the new image;
   * each event of the build goes to `onEvent` as it comes. A failed step
   * rejects with a SandboxdError of its code (`invalid_request`).
   *
   * ```js
   * const img = await client.buildImage({ name: "tools:1", from: "busybox", run: ["echo hi > /greeting"] });
   * ```
   */
  async buildImage(req: BuildRequest, onEvent?: (e: BuildEvent) => void): Promise<Image> {
    for await (const e of this.buildImageEvents(req, onEvent)) {
      if (e.type === "result") {
        const image: Record<string, unknown> = { ...e };
        delete image.type;
        return image as unknown as Image;
      }
    }
    throw new SandboxdError("connection_error", "the build stream ended without a result");
  }

  /**
   * buildImage as its events, the `result` (the image's fields) last; an
   * `error` event throws its SandboxdError instead (after going to
   * `onEvent`, which sees every event). A request refused before the first
   * step throws as any call does. Breaking out of the loop disconnects,
   * which cancels the build.
   */
  async *buildImageEvents(req: BuildRequest, onEvent?: (e: BuildEvent) => void): AsyncGenerator<BuildEvent> {
    const body = { ...req, run: req.run.map((c) => (typeof c === "string" ? ["/bin/sh", "-c", c] : [...c])) };
    for await (const line of this.t.lines("POST", "/v1/images/build", body)) {
      const e = JSON.parse(line) as BuildEvent;
      onEvent?.(e);
      if (e.type === "error") throw new SandboxdError((e.error?.code ?? "") as SandboxdError["code"], e.error?.message ?? "", 200);
      yield e;
    }
  }

  /** GET /v1/healthz. */
  health(): Promise<Record<string, unknown>> {
    return this.t.json("GET", "/v1/healthz");
  }

  /** GET /v1/readyz: true once the daemon can take work, false while it can't (503: `[images] preload` still missing, or shutting down). */
  async ready(): Promise<boolean> {
    try {
      await this.t.call("GET", "/v1/readyz");
      return true;
    } catch (e) {
      if (e instanceof SandboxdError && e.status === 503 && e.code === "http_503") return false;
      throw e;
    }
  }

  /** GET /v1/version. */
  version(): Promise<Record<string, string>> {
    return this.t.json("GET", "/v1/version");
  }

  /** GET /metrics: the Prometheus text. */
  async metrics(): Promise<string> {
    return (await this.t.call("GET", "/metrics")).toString("utf8");
  }
}

// Image names keep their "/" and ":" (docs/api.md: slashes unescaped).
function imagePath(name: string): string {
  return name.split("/").map(encodeURIComponent).join("/").replace(/%3A/gi, ":");
}
