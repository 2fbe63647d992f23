/**
 * A minimal RFC 6455 WebSocket client over node:http's upgrade: the
 * opening handshake, masked frames out, fragmented messages in, ping/pong
 * and the closing handshake. Enough for the daemon's interactive
 * endpoints (Node 18 and 20 have no WebSocket client of their own); no
 * extensions, no subprotocols.
 */

import { createHash, randomBytes } from "node:crypto";
import type * as http from "node:http";
import type { Duplex } from "node:stream";

import { connectionError, errorFromResponse, SandboxdError } from "./errors.js";
import { readAll, type Transport } from "./transport.js";

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
const OP_CONT = 0x0, OP_TEXT = 0x1, OP_BINARY = 0x2, OP_CLOSE = 0x8, OP_PING = 0x9, OP_PONG = 0xa;
/** The largest message taken, as the Go client: a result holds both outputs and the collected files. */
const MAX_MESSAGE = 256 << 20;

export interface WebSocketHandlers {
  /** A whole text message. */
  onText(text: string): void;
  /** The connection ended: code 1006 when it dropped without a close frame; err when it broke. */
  onClose(code: number, err?: SandboxdError): void;
}

export class WebSocketConnection {
  private buf: Buffer = Buffer.alloc(0);
  private parts: Buffer[] = [];
  private size = 0;
  private opcode = 0;
  private closed = false;
  private closeSent = false;

  private constructor(private readonly socket: Duplex, private readonly h: WebSocketHandlers) {}

  /** Performs the opening handshake; a refused upgrade rejects with the API's error. */
  static connect(t: Transport, path: string, h: WebSocketHandlers): Promise<WebSocketConnection> {
    const key = randomBytes(16).toString("base64");
    const want = createHash("sha1").update(key + GUID).digest("base64");
    const opts = t.options("GET", path, {
      Connection: "Upgrade", Upgrade: "websocket", "Sec-WebSocket-Key": key, "Sec-WebSocket-Version": "13",
    });
    return new Promise((resolve, reject) => {
      const req = t.request(opts);
      req.once("error", (e) => reject(connectionError("sandboxd is not reachable", e)));
      req.once("response", (res: http.IncomingMessage) => {
        readAll(res).then(
          (body) => reject(errorFromResponse(res.statusCode ?? 0, body.toString("utf8"), res.headers["retry-after"] as string | undefined)),
          reject,
        );
      });
      req.once("upgrade", (res: http.IncomingMessage, socket: Duplex, head: Buffer) => {
        if (String(res.headers.upgrade).toLowerCase() !== "websocket" || res.headers["sec-websocket-accept"] !== want) {
          socket.destroy();
          reject(new SandboxdError("connection_error", "the daemon's WebSocket handshake is not valid"));
          return;
        }
        const ws = new WebSocketConnection(socket, h);
        socket.on("data", (d: Buffer) => ws.feed(d));
        socket.on("error", (e) => ws.end(1006, connectionError("WebSocket", e)));
        socket.on("close", () => ws.end(1006));
        resolve(ws);
        if (head.length) ws.feed(head);
      });
      req.end();
    });
  }

  /** Sends a text message. */
  sendText(text: string): void {
    this.send(OP_TEXT, Buffer.from(text, "utf8"));
  }

  /** Sends a binary message. */
  sendBinary(data: Uint8Array): void {
    this.send(OP_BINARY, Buffer.from(data));
  }

  /** Sends a close frame (once) and ends the connection. */
  close(code = 1000): void {
    if (!this.closeSent && !this.closed) {
      this.closeSent = true;
      const p = Buffer.alloc(2);
      p.writeUInt16BE(code);
      this.send(OP_CLOSE, p);
    }
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }

  private send(op: number, payload: Buffer): void {
    if (this.closed) throw new SandboxdError("connection_error", "the WebSocket is closed");
    const n = payload.length;
    const head = n < 126 ? Buffer.from([0x80 | op, 0x80 | n])
      : n < 65536 ? Buffer.from([0x80 | op, 0x80 | 126, n >> 8, n & 0xff])
      : Buffer.concat([Buffer.from([0x80 | op, 0x80 | 127]), u64(n)]);
    const mask = randomBytes(4);
    const masked = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) masked[i] = payload[i] ^ mask[i & 3];
    this.socket.write(Buffer.concat([head, mask, masked]));
  }

  /** Parses every whole frame in what has arrived. */
  private feed(data: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, data]) : data;
    try {
      while (!this.closed) {
        const f = parseFrame(this.buf);
        if (!f) return;
        this.buf = this.buf.subarray(f.length);
        this.frame(f.fin, f.op, f.payload);
      }
    } catch (e) {
      this.socket.destroy();
      this.end(1002, e instanceof SandboxdError ? e : connectionError("WebSocket", e));
    }
  }

  private frame(fin: boolean, op: number, payload: Buffer): void {
    switch (op) {
      case OP_PING:
        this.send(OP_PONG, payload);
        return;
      case OP_PONG:
        return;
      case OP_CLOSE: {
        const code = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
        this.close(code === 1005 ? 1000 : code);
        this.end(code);
        return;
      }
      case OP_CONT: case OP_TEXT: case OP_BINARY:
        break;
      default:
        throw new SandboxdError("connection_error", `WebSocket protocol error: opcode ${op}`);
    }
    if ((op === OP_CONT) === (this.opcode === 0)) {
      throw new SandboxdError("connection_error", "WebSocket protocol error: bad fragmentation");
    }
    if (op !== OP_CONT) this.opcode = op;
    this.size += payload.length;
    if (this.size > MAX_MESSAGE) throw new SandboxdError("connection_error", "WebSocket message too large");
    this.parts.push(payload);
    if (!fin) return;
    const msg = Buffer.concat(this.parts);
    const text = this.opcode === OP_TEXT;
    this.parts = [];
    this.size = 0;
    this.opcode = 0;
    if (text) this.h.onText(msg.toString("utf8"));
  }

  private end(code: number, err?: SandboxdError): void {
    if (this.closed) return;
    this.closed = true;
    this.h.onClose(code, err);
  }
}

/** One frame at the start of buf, or null when it has not all arrived. */
function parseFrame(buf: Buffer): { fin: boolean; op: number; payload: Buffer; length: number } | null {
  if (buf.length < 2) return null;
  const fin = (buf[0] & 0x80) !== 0, op = buf[0] & 0x0f, masked = (buf[1] & 0x80) !== 0;
  if (buf[0] & 0x70) throw new SandboxdError("connection_error", "WebSocket protocol error: reserved bits set");
  let n = buf[1] & 0x7f, off = 2;
  if (n === 126) {
    if (buf.length < 4) return null;
    n = buf.readUInt16BE(2);
    off = 4;
  } else if (n === 127) {
    if (buf.length < 10) return null;
    const big = buf.readBigUInt64BE(2);
    if (big > BigInt(MAX_MESSAGE)) throw new SandboxdError("connection_error", "WebSocket message too large");
    n = Number(big);
    off = 10;
  }
  if (op >= 0x8 && (n > 125 || !fin)) throw new SandboxdError("connection_error", "WebSocket protocol error: bad control frame");
  const maskLen = masked ? 4 : 0; // servers never mask; accept it anyway
  if (buf.length < off + maskLen + n) return null;
  let payload = buf.subarray(off + maskLen, off + maskLen + n);
  if (masked) {
    const mask = buf.subarray(off, off + 4);
    payload = Buffer.from(payload.map((b, i) => b ^ mask[i & 3]));
  }
  return { fin, op, payload, length: off + maskLen + n };
}

function u64(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
}
