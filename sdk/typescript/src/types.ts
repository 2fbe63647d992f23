/** The JSON shapes of the API (docs/api.md and docs/result.md describe every field). */

export interface Limits {
  wall_time_ms?: number;
  cpu_time_ms?: number;
  memory_bytes?: number;
  pids?: number;
  cpus?: number;
  output_bytes?: number;
  tmp_bytes?: number;
  work_bytes?: number;
  file_size_bytes?: number;
  open_files?: number;
}

export interface File {
  name: string;
  content: string;
  encoding?: "utf8" | "base64";
}

/** The fields of POST /v1/execute, raw mode (image, cmd) or language mode (language, files). */
export interface ExecuteRequest {
  image?: string;
  cmd?: string[];
  language?: string;
  version?: string;
  files?: File[];
  args?: string[];
  stdin?: string;
  env?: Record<string, string>;
  limits?: Limits;
  compile_limits?: Limits;
  tests?: Test[];
  compare?: Compare;
  checker?: Program;
  checker_limits?: Limits;
  groups?: { name: string; stop_on_failure?: boolean; depends_on?: string[] }[];
  /** An interactive problem's interactor (docs/judge.md#interactors); `record` returns each test's transcript. */
  interactor?: Program;
  interactor_limits?: Limits;
  record?: boolean;
  /** A stored test set's id (POST /v1/testsets): its tests run instead of `tests`. */
  testset?: string;
  collect?: string[];
  collect_bytes?: number;
  tty?: boolean;
  rows?: number;
  cols?: number;
  network?: { allow: string[] };
  [field: string]: unknown;
}

/** A comparison (docs/judge.md): a mode's name or an object. */
export type Compare =
  | "lines" | "exact" | "tokens" | "float" | "unordered_lines"
  | { mode: string; case_insensitive?: boolean; abs_tol?: number; rel_tol?: number };

/** One test of a language-mode request (docs/judge.md). */
export interface Test {
  stdin?: string;
  expected_stdout?: string;
  name?: string;
  compare?: Compare;
  group?: string;
  points?: number;
}

/** A checker's sources: a language of the catalog, the main file first. */
export interface Program {
  language: string;
  version?: string;
  files: File[];
}

/** One test's outcome in a language-mode response. */
export interface TestResult {
  status: string;
  run: RunResult | null;
  output_dropped?: boolean;
  name?: string;
  group?: string;
  points?: number;
  max_points?: number;
  message?: string;
  checker?: RunResult;
  /** With an interactor: its run (the program's is `run`), and with `record`, the exchange. */
  interactor?: RunResult;
  transcript?: Transcript;
}

/** What went each way between a program and its interactor, the first `output_bytes` of each. */
export interface Transcript {
  to_program: string;
  from_program: string;
  to_program_encoding?: "base64";
  from_program_encoding?: "base64";
  truncated?: boolean;
}

/** One program run (docs/result.md). */
export interface RunResult {
  status: string;
  exit_code: number;
  signal: string | null;
  stdout: string;
  stderr: string;
  stdout_encoding?: "base64";
  stderr_encoding?: "base64";
  stdout_truncated: boolean;
  stderr_truncated: boolean;
  cpu_time_ms: number;
  wall_time_ms: number;
  memory_peak_bytes: number;
  oom_killed: boolean;
  error?: string;
  files?: Record<string, unknown>[];
  network?: Record<string, number>;
}

/** POST /v1/execute in raw mode, and a session exec. */
export interface ExecuteResponse {
  id: string;
  image: string;
  status: string;
  run: RunResult;
}

/** POST /v1/execute in language mode. */
export interface LanguageResponse {
  id: string;
  language: string;
  version: string;
  status: string;
  compile: (RunResult & { cached: boolean }) | null;
  run: RunResult | null;
  tests: TestResult[] | null;
  summary?: Record<string, number>;
  checker_compile?: RunResult & { cached: boolean };
  groups?: { name: string; status: string; score: number; max_score: number; tests: number[]; skipped: number[] }[];
  score?: number;
  max_score?: number;
}

export interface SandboxInfo {
  id: string;
  image: string;
  language?: string;
  version?: string;
  created_at: string;
  expires_at: string;
  idle_timeout_ms: number;
  limits: Limits;
  labels: Record<string, string>;
  state: string;
  usage?: Record<string, number | string | null>;
  /** A sandbox with a network (from its creation or a PATCH): its allow-list now and what its proxy did so far. */
  network?: SandboxNetwork;
}

/** A network policy: the hosts the egress proxy lets through (docs/api.md, "Network"). */
export interface Network {
  allow: string[];
}

/** A sandbox's `network`: its allow-list and its proxy's figures. */
export interface SandboxNetwork extends Network {
  connections: number;
  bytes_in: number;
  bytes_out: number;
  denied: number;
}

/** The fields of POST /v1/sandboxes. */
export interface CreateSandboxRequest {
  image?: string;
  language?: string;
  version?: string;
  limits?: Limits;
  env?: Record<string, string>;
  files?: File[];
  ttl_ms?: number;
  idle_timeout_ms?: number;
  labels?: Record<string, string>;
  /** The hosts every exec may reach through the egress proxy; absent: loopback only. PATCH changes it (Sandbox.setNetwork). */
  network?: Network;
}

/** The fields of PATCH /v1/sandboxes/{id}. */
export interface UpdateSandboxRequest {
  network: Network;
}

/** The fields of POST /v1/images/build; a step is argv, or a string run by `/bin/sh -c`. */
export interface BuildRequest {
  name: string;
  from: string;
  run: (string | string[])[];
  env?: Record<string, string>;
  network?: Network;
  limits?: Limits;
}

/**
 * An image build's event: `step` (`step`, `cmd`), `stdout`/`stderr`
 * (`data`, maybe base64), `step_end` (`step`, `result`), then `result`
 * (the Image's fields) or `error`.
 */
export interface BuildEvent {
  type: "step" | "stdout" | "stderr" | "step_end" | "result" | "error";
  step?: number;
  cmd?: string[];
  data?: string;
  encoding?: "base64";
  result?: RunResult;
  error?: { code: string; message: string };
  [field: string]: unknown;
}

/** The options of a session exec, besides its command. */
export interface ExecOptions {
  stdin?: string;
  env?: Record<string, string>;
  cwd?: string;
  limits?: Pick<Limits, "wall_time_ms" | "cpu_time_ms" | "output_bytes">;
  tty?: boolean;
  rows?: number;
  cols?: number;
}

export interface FileEntry {
  path: string;
  name: string;
  type: "file" | "dir" | "symlink" | "other";
  size: number;
  mode: string;
  mtime: string;
}

export interface ExecInfo {
  exec_id: string;
  cmd: string[];
  state: "running" | "exited" | "killed";
  started_at: string;
  ended_at: string | null;
  result: RunResult | null;
  error?: { code: string; message: string };
}

export interface ArchiveResult {
  path: string;
  entries: number;
  bytes: number;
}

export interface Image {
  name: string;
  id: string;
  size_bytes: number;
  created: string;
  source: string;
  config: Record<string, unknown>;
}

/** A stored test set's summary (POST and GET /v1/testsets; the list leaves out `tests`). */
export interface Testset {
  id: string;
  created: string;
  test_count: number;
  bytes: number;
  tests?: { name: string; input_bytes: number; answer_bytes: number; group?: string; points?: number; compare?: unknown }[];
  groups?: { name: string; stop_on_failure?: boolean; depends_on?: string[] }[];
  compare?: unknown;
  checker?: { language: string; version?: string; files: string[] };
  checker_limits?: Limits;
  interactor?: { language: string; version?: string; files: string[] };
  interactor_limits?: Limits;
}

export interface LanguageInfo {
  name: string;
  aliases: string[];
  version: string;
  image: string;
  compiled: boolean;
  available: boolean;
}

/**
 * A streaming event: `stdout`/`stderr` (`data`, maybe base64), `stage`
 * (language mode), then `result` (the plain answer's fields) or `error`.
 */
export interface Event {
  type: "stdout" | "stderr" | "stage" | "result" | "error";
  data?: string;
  encoding?: "base64";
  stage?: "compile" | "run" | "test";
  index?: number;
  error?: { code: string; message: string };
  [field: string]: unknown;
}

/** An output event's bytes, decoded from base64 when so sent. */
export function eventBytes(e: Event | BuildEvent): Buffer {
  return Buffer.from(e.data ?? "", e.encoding === "base64" ? "base64" : "utf8");
}
