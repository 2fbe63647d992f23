/**
 * The API's errors as one typed class (docs/api.md, "Error codes"): every
 * error answer is `{"error": {"code", "message"}}` with an HTTP status.
 */

/** The error codes the daemon answers with. */
export type ErrorCode =
  | "invalid_request"
  | "not_found"
  | "unknown_image"
  | "unknown_language"
  | "unknown_sandbox"
  | "unknown_exec"
  | "unknown_testset"
  | "unauthorized"
  | "forbidden"
  | "conflict"
  | "request_too_large"
  | "rate_limited"
  | "insufficient_storage"
  | "unavailable"
  | "busy"
  | "internal_error";

/**
 * An error answered by the daemon, or met talking to it. `code` is the
 * API's code, `http_<status>` for an answer that is not an API error, or
 * `connection_error` when the daemon could not be reached.
 */
export class SandboxdError extends Error {
  readonly code: ErrorCode | `http_${number}` | "connection_error";
  /** The HTTP status; 0 when there was no answer. */
  readonly status: number;
  /** The Retry-After header in seconds, when sent (rate_limited, busy). */
  readonly retryAfter?: number;

  constructor(code: SandboxdError["code"], message: string, status = 0, retryAfter?: number, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "SandboxdError";
    this.code = code;
    this.status = status;
    if (retryAfter !== undefined && !Number.isNaN(retryAfter)) this.retryAfter = retryAfter;
  }

  /** True for the 404 codes: not_found and unknown_*. */
  get isNotFound(): boolean {
    return this.status === 404;
  }
}

/** The error of an answer's status, body and Retry-After header. */
export function errorFromResponse(status: number, body: string, retryAfter?: string): SandboxdError {
  const after = retryAfter ? Number(retryAfter) : undefined;
  try {
    const e = JSON.parse(body)?.error;
    if (e && typeof e.code === "string") return new SandboxdError(e.code, String(e.message ?? ""), status, after);
  } catch {
    // not JSON: below
  }
  return new SandboxdError(`http_${status}`, body.trim(), status, after);
}

/** The error of a connection that failed. */
export function connectionError(what: string, cause: unknown): SandboxdError {
  const msg = cause instanceof Error ? cause.message : String(cause);
  return new SandboxdError("connection_error", `${what}: ${msg}`, 0, undefined, { cause });
}
