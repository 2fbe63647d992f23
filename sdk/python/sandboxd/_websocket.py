"""A minimal RFC 6455 WebSocket client over a connected socket: the opening
handshake, masked frames out, fragmented messages in, ping/pong and the
closing handshake. Enough for the daemon's interactive endpoints; no
extensions, no subprotocols."""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import struct
import threading
from typing import IO, Dict, Optional, Tuple

from . import errors

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA

# The daemon's result event carries both outputs and collected files,
# each within its caps; refuse anything beyond this, as the Go client does.
MAX_MESSAGE = 256 << 20


class Closed(Exception):
    """The connection closed; code is the close frame's status (1005 when
    it had none, 1006 when the connection dropped without one)."""

    def __init__(self, code: int, reason: str = "") -> None:
        super().__init__(f"websocket closed ({code}) {reason}".strip())
        self.code = code
        self.reason = reason


class WebSocket:
    """One client connection. ``send`` may be called from any thread;
    ``recv`` from one reader only."""

    def __init__(self, sock: socket.socket, reader: IO[bytes]) -> None:
        self._sock = sock
        self._reader = reader
        self._send_lock = threading.Lock()
        self._closing = False

    @classmethod
    def connect(cls, sock: socket.socket, host: str, path: str, headers: Dict[str, str]) -> "WebSocket":
        """Performs the opening handshake on sock. A refused upgrade raises
        the API's error from the answer's body."""
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [f"GET {path} HTTP/1.1", f"Host: {host}", "Upgrade: websocket", "Connection: Upgrade",
                 f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        reader = sock.makefile("rb")
        try:
            sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
            status, head = _read_head(reader)
            if status != 101:
                n = int(head.get("content-length", "0") or 0)
                body = reader.read(min(n, 1 << 20)) if n else b""
                raise errors.from_response(status, body, head.get("retry-after"))
            want = base64.b64encode(hashlib.sha1(key.encode() + _GUID).digest()).decode()
            if head.get("upgrade", "").lower() != "websocket" or head.get("sec-websocket-accept") != want:
                raise errors.ConnectionError("the daemon's WebSocket handshake is not valid")
        except OSError as e:
            reader.close()
            sock.close()
            raise errors.ConnectionError(f"WebSocket handshake: {e}") from e
        except errors.SandboxdError:
            reader.close()
            sock.close()
            raise
        sock.settimeout(None)  # the daemon pings every 10 s: reads never hang on a dead peer for long
        return cls(sock, reader)

    def send(self, opcode: int, payload: bytes) -> None:
        """Sends one unfragmented, masked frame."""
        n = len(payload)
        head = bytes([0x80 | opcode])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 1 << 16:
            head += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack("!Q", n)
        mask = os.urandom(4)
        masked = _mask(payload, mask)
        with self._send_lock:
            try:
                self._sock.sendall(head + mask + masked)
            except OSError as e:
                raise errors.ConnectionError(f"WebSocket send: {e}") from e

    def recv(self) -> Tuple[int, bytes]:
        """Returns the next data message (opcode, payload), answering pings
        on the way. Raises Closed when the peer closes."""
        opcode, parts, size = 0, [], 0
        while True:
            fin, op, payload = self._frame()
            if op == OP_PING:
                self._control(OP_PONG, payload)
                continue
            if op == OP_PONG:
                continue
            if op == OP_CLOSE:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                self._control(OP_CLOSE, payload[:2])
                raise Closed(code, payload[2:].decode("utf-8", "replace"))
            if op not in (OP_CONT, OP_TEXT, OP_BINARY):
                raise errors.ConnectionError(f"WebSocket protocol error: opcode {op}")
            if (op == OP_CONT) == (opcode == 0):  # a continuation of nothing, or a new message inside one
                raise errors.ConnectionError("WebSocket protocol error: bad fragmentation")
            if op != OP_CONT:
                opcode = op
            size += len(payload)
            if size > MAX_MESSAGE:
                raise errors.ConnectionError("WebSocket message too large")
            parts.append(payload)
            if fin:
                return opcode, b"".join(parts)

    def _control(self, op: int, payload: bytes) -> None:
        # A pong or close answer to a peer already gone is no error of ours.
        try:
            self.send(op, payload)
        except errors.ConnectionError:
            pass

    def _frame(self) -> Tuple[bool, int, bytes]:
        b = self._read(2)
        fin, op, masked, n = bool(b[0] & 0x80), b[0] & 0x0F, bool(b[1] & 0x80), b[1] & 0x7F
        if b[0] & 0x70:
            raise errors.ConnectionError("WebSocket protocol error: reserved bits set")
        if n == 126:
            n = struct.unpack("!H", self._read(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._read(8))[0]
        if op >= 0x8 and (n > 125 or not fin):
            raise errors.ConnectionError("WebSocket protocol error: bad control frame")
        if n > MAX_MESSAGE:
            raise errors.ConnectionError("WebSocket message too large")
        mask = self._read(4) if masked else b""  # servers never mask; accept it anyway
        payload = self._read(n)
        return fin, op, _mask(payload, mask) if mask else payload

    def _read(self, n: int) -> bytes:
        try:
            data = self._reader.read(n) if n else b""
        except OSError as e:
            raise Closed(1006, str(e)) from e
        if len(data) < n:
            raise Closed(1006, "connection dropped")
        return data

    def close(self, code: int = 1000) -> None:
        """Sends a close frame (once) and closes the socket."""
        if not self._closing:
            self._closing = True
            self._control(OP_CLOSE, struct.pack("!H", code))
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._reader.close()
        self._sock.close()


def _mask(payload: bytes, mask: bytes) -> bytes:
    """XORs payload with the 4-byte mask, a word at a time."""
    n = len(payload)
    key = int.from_bytes((mask * (n // 4 + 1))[:n], "big")
    return (int.from_bytes(payload, "big") ^ key).to_bytes(n, "big")


def _read_head(reader: IO[bytes]) -> Tuple[int, Dict[str, str]]:
    """Reads an HTTP response head: its status and headers (lower-cased)."""
    status_line = reader.readline(8192)
    parts = status_line.decode("latin-1").split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise errors.ConnectionError(f"not an HTTP answer: {status_line[:80]!r}")
    head: Dict[str, str] = {}
    for _ in range(100):
        line = reader.readline(8192).decode("latin-1").rstrip("\r\n")
        if not line:
            return int(parts[1]), head
        name, _, value = line.partition(":")
        head[name.strip().lower()] = value.strip()
    raise errors.ConnectionError("the answer's head is too long")
