"""Interactive runs over the daemon's WebSocket endpoints (docs/api.md,
"Interactive runs"): stdin, signals and resizes go in while the program
runs, its output comes out as events."""

from __future__ import annotations

import json
import queue
import threading
from typing import Any, Dict, Iterator, Optional, Union

from . import errors
from ._websocket import OP_BINARY, OP_TEXT, Closed, WebSocket
from .types import Event

_END = object()


class Interactive:
    """One interactive run. Iterate over it for its events, the ``result``
    (or an ``error`` event) last; :meth:`result` waits for that. The send
    methods may be called from any thread, also while another iterates.

    A background thread reads the connection, so the daemon's pings are
    answered even while the caller is busy; events wait in memory until
    taken (the daemon bounds them by the run's ``output_bytes``).

    Use it as a context manager, or call :meth:`close`.
    """

    def __init__(self, ws: WebSocket) -> None:
        self._ws = ws
        self._events: "queue.Queue[Any]" = queue.Queue()
        self._final: Optional[Event] = None
        self._failure: Optional[BaseException] = None
        self._reader = threading.Thread(target=self._read, name="sandboxd-ws", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        try:
            while True:
                op, payload = self._ws.recv()
                if op != OP_TEXT:
                    continue
                raw = json.loads(payload)
                self._events.put(Event(str(raw.get("type", "")), raw))
        except Closed:
            pass
        except (errors.SandboxdError, ValueError) as e:
            self._failure = e
        finally:
            self._events.put(_END)

    def __iter__(self) -> Iterator[Event]:
        return self.events()

    def events(self, timeout: Optional[float] = None) -> Iterator[Event]:
        """Yields events until the last (``result`` or ``error``); timeout
        bounds the wait for each one (``queue.Empty`` beyond it)."""
        while self._final is None:
            item = self._events.get(timeout=timeout)
            if item is _END:
                self._events.put(_END)  # later callers see the end too
                if self._failure is not None:
                    raise self._failure
                raise errors.ConnectionError("the connection closed before the result")
            if item.type in ("result", "error"):
                self._final = item
            yield item

    def result(self, timeout: Optional[float] = None) -> Dict[str, Any]:
        """Waits for the run's end, dropping output events not yet taken,
        and returns the result event's fields (the plain answer of the
        POST). An ``error`` event raises its typed exception."""
        for _ in self.events(timeout):
            pass
        assert self._final is not None
        if self._final.type == "error":
            e = self._final.error or {}
            raise errors.error_for(str(e.get("code", "")), str(e.get("message", "")))
        out = dict(self._final.raw)
        out.pop("type", None)
        return out

    def send_stdin(self, data: Union[str, bytes]) -> None:
        """Sends data to the program's standard input: text as a ``stdin``
        message, bytes as a binary message."""
        if isinstance(data, str):
            self._send({"type": "stdin", "data": data})
        else:
            self._ws.send(OP_BINARY, bytes(data))

    def close_stdin(self) -> None:
        """Ends the program's standard input (on a terminal: Ctrl-D)."""
        self._send({"type": "close_stdin"})

    def signal(self, name: str) -> None:
        """Sends a signal by name (``SIGINT``, ``SIGTERM``, ...)."""
        self._send({"type": "signal", "signal": name})

    def resize(self, rows: int, cols: int) -> None:
        """Sets a terminal run's size."""
        self._send({"type": "resize", "rows": rows, "cols": cols})

    def _send(self, msg: Dict[str, Any]) -> None:
        self._ws.send(OP_TEXT, json.dumps(msg).encode())

    def close(self) -> None:
        """Closes the connection; a run still going is ended by the daemon."""
        self._ws.close()
        self._reader.join(timeout=5)

    def __enter__(self) -> "Interactive":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
