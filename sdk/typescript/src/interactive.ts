/** Interactive runs over the daemon's WebSocket endpoints (docs/api.md, "Interactive runs"). */

import { SandboxdError } from "./errors.js";
import type { Transport } from "./transport.js";
import type { Event } from "./types.js";
import { WebSocketConnection } from "./websocket.js";

/**
 * One interactive run. Iterate over it (`for await`) for its events, the
 * `result` (or an `error` event) last; `result()` waits for that. Stdin,
 * signals and resizes may be sent at any time. Events wait in memory
 * until taken (the daemon bounds them by the run's `output_bytes`).
 */
export class Interactive implements AsyncIterable<Event> {
  private readonly queue: Event[] = [];
  private waiter?: () => void;
  private ended = false;
  private failure?: SandboxdError;
  private final?: Event;
  private ws!: WebSocketConnection;

  private constructor() {}

  /** Connects to path and sends first (the request), when given. */
  static async open(t: Transport, path: string, first?: unknown): Promise<Interactive> {
    const run = new Interactive();
    run.ws = await WebSocketConnection.connect(t, path, {
      onText: (text) => {
        try {
          run.queue.push(JSON.parse(text) as Event);
        } catch {
          run.failure = new SandboxdError("connection_error", "the daemon sent an event that is not JSON");
        }
        run.wake();
      },
      onClose: (_code, err) => {
        run.ended = true;
        run.failure ??= err;
        run.wake();
      },
    });
    if (first !== undefined) run.ws.sendText(JSON.stringify(first));
    return run;
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Event> {
    while (!this.final) {
      const e = this.queue.shift();
      if (e) {
        if (e.type === "result" || e.type === "error") this.final = e;
        yield e;
        continue;
      }
      if (this.ended) {
        throw this.failure ?? new SandboxdError("connection_error", "the connection closed before the result");
      }
      await new Promise<void>((resolve) => (this.waiter = resolve));
    }
  }

  /**
   * Waits for the run's end, dropping output events not yet taken, and
   * resolves with the result event's fields (the plain answer of the
   * POST; for an attach, the exec object). An `error` event rejects with
   * its SandboxdError.
   */
  async result<T = Record<string, unknown>>(): Promise<T> {
    for await (const _ of this) {
      // drain
    }
    const f = this.final!;
    if (f.type === "error") throw new SandboxdError((f.error?.code ?? "internal_error") as SandboxdError["code"], f.error?.message ?? "");
    const { type: _type, ...fields } = f;
    return fields as T;
  }

  /** Sends data to the program's stdin: a string as a `stdin` message, bytes as a binary message. */
  sendStdin(data: string | Uint8Array): void {
    if (typeof data === "string") this.ws.sendText(JSON.stringify({ type: "stdin", data }));
    else this.ws.sendBinary(data);
  }

  /** Ends the program's stdin (on a terminal: Ctrl-D). */
  closeStdin(): void {
    this.ws.sendText(JSON.stringify({ type: "close_stdin" }));
  }

  /** Sends a signal by name (`SIGINT`, `SIGTERM`, ...). */
  signal(name: string): void {
    this.ws.sendText(JSON.stringify({ type: "signal", signal: name }));
  }

  /** Sets a terminal run's size. */
  resize(rows: number, cols: number): void {
    this.ws.sendText(JSON.stringify({ type: "resize", rows, cols }));
  }

  /** Closes the connection; a run still going is ended by the daemon. */
  close(): void {
    this.ws.close();
  }
}
