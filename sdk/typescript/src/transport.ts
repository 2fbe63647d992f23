/** HTTP/1.1 to the daemon over a Unix socket or TCP (optionally TLS), with a bearer token, using node:http only. */

import * as http from "node:http";
import * as https from "node:https";
import type { Readable } from "node:stream";

import { connectionError, errorFromResponse } from "./errors.js";

/** Where the daemon is and how to reach it. */
export interface ClientOptions {
  /** The daemon's Unix socket; default `$SANDBOXD_SOCKET`, else /run/sandboxd/sandboxd.sock. Ignored with `url`. */
  socketPath?: string;
  /** `http://HOST:PORT` or `https://HOST:PORT` of a TCP listener. */
  url?: string;
  /** A bearer JWT (always needed on TCP); default `$SANDBOXD_TOKEN`. */
  token?: string;
  /** TLS options for `https://` (`ca`, `cert`, `key`, `rejectUnauthorized`). */
  tls?: https.RequestOptions;
  /** Aborts each call after this many milliseconds (default: none; runs are bounded by their own limits). */
  timeoutMs?: number;
}

export const DEFAULT_SOCKET = "/run/sandboxd/sandboxd.sock";

export type Body = string | Uint8Array | Readable | undefined;

export class Transport {
  readonly socketPath?: string;
  readonly token?: string;
  private readonly base?: URL;
  private readonly tls?: https.RequestOptions;
  private readonly timeoutMs?: number;

  constructor(opts: ClientOptions = {}) {
    if (opts.url) {
      this.base = new URL(opts.url);
      if (this.base.protocol !== "http:" && this.base.protocol !== "https:") {
        throw new TypeError(`url must be http://HOST:PORT or https://HOST:PORT, not ${opts.url}`);
      }
    } else {
      this.socketPath = opts.socketPath ?? (process.env.SANDBOXD_SOCKET || DEFAULT_SOCKET);
    }
    this.token = opts.token ?? (process.env.SANDBOXD_TOKEN || undefined);
    this.tls = opts.tls;
    this.timeoutMs = opts.timeoutMs;
  }

  /** The request options of a call: where, and the token. */
  options(method: string, path: string, headers: Record<string, string> = {}): http.RequestOptions {
    const h: Record<string, string> = { ...headers };
    if (this.token) h.Authorization = `Bearer ${this.token}`;
    // agent: false, one connection per call: no idle keep-alive sockets hold a program open.
    const o: http.RequestOptions = { method, path, headers: h, agent: false };
    if (this.socketPath !== undefined) return { ...o, socketPath: this.socketPath, host: "localhost" };
    return { ...this.tls, ...o, hostname: this.base!.hostname, port: this.base!.port || undefined };
  }

  /** http.request or https.request, by the URL's scheme. */
  request(opts: http.RequestOptions): http.ClientRequest {
    return this.base?.protocol === "https:" ? https.request(opts) : http.request(opts);
  }

  /** Sends a request; resolves with a successful answer whose body is still to be read, rejects with the typed error of an error answer. */
  async open(method: string, path: string, body?: Body, headers?: Record<string, string>, signal?: AbortSignal): Promise<http.IncomingMessage> {
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = this.request({ ...this.options(method, path, headers), signal: signal ?? this.timeoutSignal() });
      req.once("response", resolve);
      req.once("error", (e) => reject(connectionError("sandboxd is not reachable", e)));
      if (body === undefined || typeof body === "string" || body instanceof Uint8Array) {
        req.end(body);
      } else {
        body.once("error", (e) => req.destroy(e));
        body.pipe(req);
      }
    });
    if (res.statusCode! >= 300) {
      const text = (await readAll(res)).toString("utf8");
      throw errorFromResponse(res.statusCode!, text, header(res, "retry-after"));
    }
    return res;
  }

  /** A request and its whole successful answer. */
  async call(method: string, path: string, body?: Body, headers?: Record<string, string>): Promise<Buffer> {
    return readAll(await this.open(method, path, body, headers));
  }

  /** A JSON request (payload undefined: no body) and its decoded answer (undefined when empty, as for 204). */
  async json<T>(method: string, path: string, payload?: unknown): Promise<T> {
    const body = payload === undefined ? undefined : JSON.stringify(payload);
    const headers: Record<string, string> = body === undefined ? {} : { "Content-Type": "application/json" };
    const data = await this.call(method, path, body, headers);
    return (data.length ? JSON.parse(data.toString("utf8")) : undefined) as T;
  }

  /** Sends a JSON request and yields the answer's NDJSON lines as they arrive; breaking out of the loop disconnects. */
  async *lines(method: string, path: string, payload: unknown): AsyncGenerator<string> {
    const res = await this.open(method, path, JSON.stringify(payload), { "Content-Type": "application/json" });
    let rest = "";
    try {
      res.setEncoding("utf8");
      for await (const chunk of res as AsyncIterable<string>) {
        rest += chunk;
        let i: number;
        while ((i = rest.indexOf("\n")) >= 0) {
          const line = rest.slice(0, i).trim();
          rest = rest.slice(i + 1);
          if (line) yield line;
        }
      }
      if (rest.trim()) yield rest.trim();
    } catch (e) {
      throw connectionError("the stream broke", e);
    } finally {
      res.destroy();
    }
  }

  private timeoutSignal(): AbortSignal | undefined {
    return this.timeoutMs ? AbortSignal.timeout(this.timeoutMs) : undefined;
  }
}

/** Reads a whole message body. */
export async function readAll(res: http.IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  try {
    for await (const c of res) chunks.push(c as Buffer);
  } catch (e) {
    throw connectionError("reading sandboxd's answer", e);
  }
  return Buffer.concat(chunks);
}

function header(res: http.IncomingMessage, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
}
