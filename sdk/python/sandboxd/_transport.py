"""HTTP/1.1 to the daemon over a Unix socket or TCP (optionally TLS), with
a bearer token, using http.client only."""

from __future__ import annotations

import http.client
import json
import socket
import ssl
from typing import IO, Any, Dict, Iterator, Optional, Tuple, Union
from urllib.parse import urlsplit

from . import errors

Body = Union[None, bytes, IO[bytes]]


class _UnixConnection(http.client.HTTPConnection):
    """An HTTPConnection whose socket is a Unix socket's."""

    def __init__(self, path: str, timeout: Optional[float]) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class Transport:
    """Where the daemon is and how to authenticate: a Unix socket path, or
    an ``http://`` / ``https://`` URL, and an optional token."""

    def __init__(self, socket_path: Optional[str], url: Optional[str], token: Optional[str],
                 timeout: Optional[float], ssl_context: Optional[ssl.SSLContext]) -> None:
        self.socket_path = socket_path
        self.token = token
        self.timeout = timeout
        self.ssl_context = ssl_context
        self.host, self.port, self.tls = "localhost", 0, False
        if url is not None:
            u = urlsplit(url)
            if u.scheme not in ("http", "https") or not u.hostname:
                raise ValueError(f"url must be http://HOST:PORT or https://HOST:PORT, not {url!r}")
            self.tls = u.scheme == "https"
            self.host, self.port = u.hostname, u.port or (443 if self.tls else 80)
            if self.tls and self.ssl_context is None:
                self.ssl_context = ssl.create_default_context()

    def _connection(self, timeout: Optional[float]) -> http.client.HTTPConnection:
        if self.socket_path is not None:
            return _UnixConnection(self.socket_path, timeout)
        if self.tls:
            return http.client.HTTPSConnection(self.host, self.port, timeout=timeout, context=self.ssl_context)
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def headers(self, extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
        """The headers every request carries (the token), plus extra."""
        h: Dict[str, str] = {}
        if self.token:
            h["Authorization"] = "Bearer " + self.token
        if extra:
            h.update(extra)
        return h

    def host_header(self) -> str:
        """The Host header's value."""
        if self.socket_path is not None:
            return "localhost"
        return f"{self.host}:{self.port}"

    def dial(self, timeout: Optional[float]) -> socket.socket:
        """A raw connected socket (TLS-wrapped for https), for the WebSocket."""
        try:
            if self.socket_path is not None:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.settimeout(timeout)
                sock.connect(self.socket_path)
                return sock
            raw = socket.create_connection((self.host, self.port), timeout=timeout)
            if self.tls:
                assert self.ssl_context is not None
                return self.ssl_context.wrap_socket(raw, server_hostname=self.host)
            return raw
        except OSError as e:
            raise errors.ConnectionError(f"sandboxd is not reachable: {e}") from e

    def open(self, method: str, path: str, body: Body = None, headers: Optional[Dict[str, str]] = None,
             timeout: Optional[float] = -1.0) -> Tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        """Sends a request and returns the connection and a successful
        answer, whose body is still to be read; an error answer raises its
        typed exception. The caller closes the connection."""
        conn = self._connection(self.timeout if timeout == -1.0 else timeout)
        try:
            conn.request(method, path, body=body, headers=self.headers(headers))
            resp = conn.getresponse()
        except OSError as e:
            conn.close()
            raise errors.ConnectionError(f"sandboxd is not reachable: {e}") from e
        except http.client.HTTPException as e:
            conn.close()
            raise errors.ConnectionError(f"bad answer from sandboxd: {e}") from e
        if resp.status >= 300:
            try:
                data = resp.read()
            finally:
                conn.close()
            raise errors.from_response(resp.status, data, resp.getheader("Retry-After"))
        return conn, resp

    def call(self, method: str, path: str, body: Body = None, headers: Optional[Dict[str, str]] = None,
             timeout: Optional[float] = -1.0) -> Tuple[http.client.HTTPResponse, bytes]:
        """Sends a request and reads the whole successful answer."""
        conn, resp = self.open(method, path, body, headers, timeout)
        try:
            return resp, resp.read()
        except (OSError, http.client.HTTPException) as e:
            raise errors.ConnectionError(f"reading sandboxd's answer: {e}") from e
        finally:
            conn.close()

    def json(self, method: str, path: str, payload: Any = None) -> Any:
        """A JSON request (payload None: no body) and its decoded JSON answer
        (None for an empty one, such as 204)."""
        body = None if payload is None else json.dumps(payload).encode()
        headers = {"Content-Type": "application/json"} if body is not None else None
        _, data = self.call(method, path, body, headers)
        return json.loads(data) if data else None

    def lines(self, method: str, path: str, payload: Any, headers: Optional[Dict[str, str]] = None) -> Iterator[bytes]:
        """Sends a JSON request and yields the answer's lines (NDJSON) as
        they arrive; the connection closes when the iterator is closed or
        exhausted."""
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        conn, resp = self.open(method, path, json.dumps(payload).encode(), h)
        try:
            while True:
                line = resp.readline()
                if not line:
                    return
                if line.strip():
                    yield line
        except (OSError, http.client.HTTPException) as e:
            raise errors.ConnectionError(f"the stream broke: {e}") from e
        finally:
            conn.close()
