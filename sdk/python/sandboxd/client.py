"""The client: one-shot runs, session sandboxes, images and the daemon's
state, over the HTTP API (docs/api.md)."""

from __future__ import annotations

import json
import os
import ssl
from typing import IO, Any, Callable, Dict, Iterator, List, Optional, Sequence, Union
from urllib.parse import quote, urlencode

from . import errors
from ._transport import Transport
from ._websocket import OP_TEXT, WebSocket
from .interactive import Interactive
from .sandbox import Command, Sandbox, _argv
from ._util import Network, events_of, merge, network_field, sandbox_path
from .types import Event, ExecuteResponse, LanguageResponse, SandboxInfo

DEFAULT_SOCKET = "/run/sandboxd/sandboxd.sock"

# The main file's name per language (and alias) of the catalog: the run
# command uses it, and Java needs the class's own name. Others get "main".
_MAIN_FILES = {
    "python": "main.py", "py": "main.py", "python3": "main.py", "python-sci": "main.py", "scipy": "main.py",
    "javascript": "main.js", "js": "main.js", "node": "main.js", "nodejs": "main.js",
    "c": "main.c", "cpp": "main.cpp", "c++": "main.cpp", "go": "main.go", "golang": "main.go",
    "java": "Main.java", "rust": "main.rs", "rs": "main.rs", "ruby": "main.rb", "rb": "main.rb",
    "php": "main.php", "lua": "main.lua", "bash": "main.sh", "sh": "main.sh",
    "csharp": "main.cs", "cs": "main.cs", "c#": "main.cs", "mono": "main.cs", "dotnet": "main.cs",
    "perl": "main.pl", "pl": "main.pl", "perl5": "main.pl", "tcl": "main.tcl", "tclsh": "main.tcl",
    "awk": "main.awk", "gawk": "main.awk",
    "sql": "main.sql", "sqlite": "main.sql", "sqlite3": "main.sql", "zsh": "main.zsh",
    "ksh": "main.ksh", "ksh93": "main.ksh", "forth": "main.fs", "gforth": "main.fs",
    "luajit": "main.lua", "scheme": "main.scm", "guile": "main.scm", "scm": "main.scm",
    "prolog": "main.pl", "swipl": "main.pl", "swi-prolog": "main.pl",
    "lisp": "main.lisp", "common-lisp": "main.lisp", "commonlisp": "main.lisp", "sbcl": "main.lisp", "cl": "main.lisp",
    "raku": "main.raku", "perl6": "main.raku", "rakudo": "main.raku",
    "pypy": "main.py", "pypy3": "main.py", "r": "main.R", "rscript": "main.R",
    "fortran": "main.f90", "gfortran": "main.f90", "f90": "main.f90", "f95": "main.f90",
    "objective-c": "main.m", "objc": "main.m", "gobjc": "main.m",
    "d": "main.d", "dlang": "main.d", "gdc": "main.d", "ada": "main.adb", "gnat": "main.adb",
    "cobol": "main.cob", "cob": "main.cob", "gnucobol": "main.cob",
    "pascal": "main.pas", "fpc": "main.pas", "freepascal": "main.pas", "pas": "main.pas",
    "assembly": "main.asm", "asm": "main.asm", "nasm": "main.asm", "nim": "main.nim",
    "kotlin": "main.kt", "kt": "main.kt", "kotlinc": "main.kt", "scala": "main.scala",
    "groovy": "main.groovy", "clojure": "main.clj", "clj": "main.clj",
    "erlang": "main.erl", "erl": "main.erl", "elixir": "main.exs", "ex": "main.exs", "exs": "main.exs",
    "ocaml": "main.ml", "ml": "main.ml", "haskell": "main.hs", "hs": "main.hs", "ghc": "main.hs",
    "typescript": "main.ts", "ts": "main.ts", "tsc": "main.ts",
    "coffeescript": "main.coffee", "coffee": "main.coffee",
}


def main_file(language: str) -> str:
    """The file name :meth:`Client.run_code` gives code in language."""
    return _MAIN_FILES.get(language.lower(), "main")


class Client:
    """A connection to a sandboxd daemon.

    Args:
        socket: the daemon's Unix socket; default ``$SANDBOXD_SOCKET``, else
            ``/run/sandboxd/sandboxd.sock``. Ignored when ``url`` is given.
        url: ``http://HOST:PORT`` or ``https://HOST:PORT`` of a TCP listener.
        token: a bearer JWT (needed on TCP); default ``$SANDBOXD_TOKEN``.
        timeout: socket timeout in seconds for each call (None: none; runs
            are bounded by their own limits).
        ssl_context: for ``https://``; default: the system's CAs.

    >>> Client().run_code("python", "print(6 * 7)")["run"]["stdout"]
    '42\\n'
    """

    def __init__(self, socket: Optional[str] = None, *, url: Optional[str] = None, token: Optional[str] = None,
                 timeout: Optional[float] = None, ssl_context: Optional[ssl.SSLContext] = None) -> None:
        if url is None and socket is None:
            socket = os.environ.get("SANDBOXD_SOCKET") or DEFAULT_SOCKET
        if token is None:
            token = os.environ.get("SANDBOXD_TOKEN") or None
        self._t = Transport(None if url is not None else socket, url, token, timeout, ssl_context)

    # One-shot runs.

    def execute(self, request: Optional[Dict[str, Any]] = None, **fields: Any) -> Union[ExecuteResponse, LanguageResponse]:
        """POST /v1/execute: runs ``cmd`` in ``image`` (raw mode) or
        ``files`` in ``language`` (language mode) in fresh sandboxes and
        returns the answer. Fields are those of docs/api.md, as a dict,
        keyword arguments, or both (keywords win).

        >>> client.execute(image="busybox", cmd=["echo", "hi"])["run"]["stdout"]
        """
        return self._t.json("POST", "/v1/execute", merge(request, fields))

    def run_code(self, language: str, code: str, *, stdin: Optional[str] = None, version: Optional[str] = None,
                 args: Optional[Sequence[str]] = None, files: Optional[Dict[str, str]] = None,
                 limits: Optional[Dict[str, Any]] = None, filename: Optional[str] = None,
                 **fields: Any) -> LanguageResponse:
        """Runs code in a language of ``GET /v1/languages`` (language mode).

        Args:
            language: a name or alias (``python``, ``js``, ``c``, ...).
            code: the main file's content.
            stdin: the program's standard input.
            version: a version prefix (``"3"``).
            args: appended to the run command.
            files: more files, name to UTF-8 content, beside the main one.
            limits: run limits (``{"wall_time_ms": 2000}``).
            filename: the main file's name; default per language
                (``main.py``, ``Main.java``, ...).
            fields: any other field of language mode (``tests``, ``collect``, ...).

        Returns the language answer: ``status``, ``compile``, ``run``, ...
        """
        req = request_for_code(language, code, stdin=stdin, version=version, args=args, files=files,
                               limits=limits, filename=filename, **fields)
        return self._t.json("POST", "/v1/execute", req)  # type: ignore[no-any-return]

    def stream(self, request: Optional[Dict[str, Any]] = None, **fields: Any) -> Iterator[Event]:
        """POST /v1/execute with ``"stream": true``: yields the events as the
        program writes (``stdout``, ``stderr``, ``stage``), then the
        ``result`` (or an ``error`` event). Closing the iterator early
        disconnects, which ends the run."""
        req = merge(request, fields)
        req["stream"] = True
        return events_of(self._t.lines("POST", "/v1/execute", req))

    def interactive(self, request: Optional[Dict[str, Any]] = None, **fields: Any) -> Interactive:
        """GET /v1/execute/ws: starts the request (either mode) over a
        WebSocket and returns the run, to send stdin, signals and resizes
        while it runs."""
        return self._websocket("/v1/execute/ws", merge(request, fields))

    # Session sandboxes.

    def sandbox(self, image: Optional[str] = None, *, language: Optional[str] = None,
                network: Optional[Network] = None, **fields: Any) -> Sandbox:
        """POST /v1/sandboxes: creates a session sandbox from an image or a
        language (and ``version``, ``limits``, ``env``, ``files``,
        ``ttl_ms``, ``idle_timeout_ms``, ``labels``). ``network`` is the
        hosts its execs may reach through the egress proxy (a list, or
        ``{"allow": [...]}``); absent: loopback only. Use it as a context
        manager to delete it at the end::

            with client.sandbox(language="python") as sb:
                sb.files.write("a.py", "print(1)")
                print(sb.exec("python3 a.py")["run"]["stdout"])
        """
        req: Dict[str, Any] = dict(fields)
        if image is not None:
            req["image"] = image
        if language is not None:
            req["language"] = language
        if network is not None:
            req["network"] = network_field(network)
        info = self._t.json("POST", "/v1/sandboxes", req)
        return Sandbox(self, info)

    def get_sandbox(self, sandbox_id: str) -> Sandbox:
        """GET /v1/sandboxes/{id}: an existing sandbox of the caller's, with
        its usage (``sb.info["usage"]``)."""
        return Sandbox(self, self._t.json("GET", sandbox_path(sandbox_id)))

    def sandboxes(self) -> List[SandboxInfo]:
        """GET /v1/sandboxes: the caller's sandboxes, oldest first."""
        return self._t.json("GET", "/v1/sandboxes")["sandboxes"]  # type: ignore[no-any-return]

    def update_sandbox(self, sandbox_id: str, *, network: Network) -> Sandbox:
        """PATCH /v1/sandboxes/{id}: replaces the sandbox's network
        allow-list (a list of hosts, or ``{"allow": [...]}``); ``[]`` locks
        it, package indexes included. Returns the sandbox, with ``usage``
        and ``network`` in its ``info``."""
        info = self._t.json("PATCH", sandbox_path(sandbox_id), {"network": network_field(network)})
        return Sandbox(self, info)

    def delete_sandbox(self, sandbox_id: str) -> None:
        """DELETE /v1/sandboxes/{id}: ends the sandbox."""
        self._t.json("DELETE", sandbox_path(sandbox_id))

    # Test sets.

    def create_testset(self, archive: Union[bytes, IO[bytes]]) -> Dict[str, Any]:
        """POST /v1/testsets: a tar, gzipped tar or zip of ``NAME.in`` with
        ``NAME.ans`` (or ``NAME.out``) per test and an optional
        ``testset.toml``, bytes or a file. Returns the set's summary; run
        it with ``execute(language=..., files=..., testset=summary["id"])``."""
        _, data = self._t.call("POST", "/v1/testsets", archive, {"Content-Type": "application/octet-stream"})
        return json.loads(data)  # type: ignore[no-any-return]

    def testsets(self) -> List[Dict[str, Any]]:
        """GET /v1/testsets: the caller's sets, oldest first, without their tests."""
        return self._t.json("GET", "/v1/testsets")["testsets"]  # type: ignore[no-any-return]

    def testset(self, testset_id: str) -> Dict[str, Any]:
        """GET /v1/testsets/{id}: one of the caller's sets, with its tests."""
        return self._t.json("GET", "/v1/testsets/" + quote(testset_id, safe=""))  # type: ignore[no-any-return]

    def delete_testset(self, testset_id: str) -> None:
        """DELETE /v1/testsets/{id}."""
        self._t.json("DELETE", "/v1/testsets/" + quote(testset_id, safe=""))

    # Languages, images and the daemon.

    def languages(self) -> List[Dict[str, Any]]:
        """GET /v1/languages."""
        return self._t.json("GET", "/v1/languages")  # type: ignore[no-any-return]

    def images(self) -> List[Dict[str, Any]]:
        """GET /v1/images."""
        return self._t.json("GET", "/v1/images")  # type: ignore[no-any-return]

    def image(self, name: str) -> Dict[str, Any]:
        """GET /v1/images/{name}."""
        return self._t.json("GET", "/v1/images/" + quote(name, safe="/:"))  # type: ignore[no-any-return]

    def remove_image(self, name: str) -> None:
        """DELETE /v1/images/{name}."""
        self._t.json("DELETE", "/v1/images/" + quote(name, safe="/:"))

    def pull(self, ref: str, name: Optional[str] = None) -> Dict[str, Any]:
        """POST /v1/images/pull: pulls ref from a registry the daemon allows."""
        req = {"ref": ref}
        if name:
            req["name"] = name
        return self._t.json("POST", "/v1/images/pull", req)  # type: ignore[no-any-return]

    def import_image(self, name: str, tar: Union[bytes, IO[bytes]]) -> Dict[str, Any]:
        """POST /v1/images/import: a docker-save archive, an OCI layout or a
        root filesystem as a tar (optionally gzipped), bytes or a file."""
        _, data = self._t.call("POST", "/v1/images/import?" + urlencode({"name": name}), tar,
                               {"Content-Type": "application/x-tar"})
        return json.loads(data)  # type: ignore[no-any-return]

    def build_image(self, name: str, from_: str, run: Sequence[Command], *, env: Optional[Dict[str, str]] = None,
                    network: Optional[Network] = None, limits: Optional[Dict[str, Any]] = None,
                    on_event: Optional[Callable[[Event], None]] = None) -> Dict[str, Any]:
        """POST /v1/images/build: makes the image ``name`` from the image
        ``from_`` by running each step of ``run`` (argv, or a string for
        ``/bin/sh -c``) over it, and returns the new image. Each event of
        the build stream (``step``, ``stdout``, ``stderr``, ``step_end``,
        ``result``, ``error``) goes to ``on_event`` as it comes. A failed
        step raises the typed error of its code (``InvalidRequest``).

        >>> client.build_image("tools:1", "busybox", ["echo hi > /greeting"])["name"]
        'tools:1'
        """
        events = self.build_image_events(name, from_, run, env=env, network=network, limits=limits,
                                         on_event=on_event)
        try:
            for ev in events:
                if ev.type == "result":
                    return {k: v for k, v in ev.raw.items() if k != "type"}
        finally:
            events.close()  # type: ignore[attr-defined]
        raise errors.ConnectionError("the build stream ended without a result")

    def build_image_events(self, name: str, from_: str, run: Sequence[Command], *,
                           env: Optional[Dict[str, str]] = None, network: Optional[Network] = None,
                           limits: Optional[Dict[str, Any]] = None,
                           on_event: Optional[Callable[[Event], None]] = None) -> Iterator[Event]:
        """:meth:`build_image` as an iterator of its events, the
        ``result`` (the image's fields in ``raw``) last; an ``error`` event
        raises its typed error instead. A request refused before the first
        step raises as any call does. Closing the iterator early
        disconnects, which cancels the build."""
        req: Dict[str, Any] = {"name": name, "from": from_, "run": [_argv(c) for c in run]}
        for key, value in (("env", env), ("limits", limits)):
            if value is not None:
                req[key] = value
        if network is not None:
            req["network"] = network_field(network)
        return _build_events(events_of(self._t.lines("POST", "/v1/images/build", req)), on_event)

    def health(self) -> Dict[str, Any]:
        """GET /v1/healthz."""
        return self._t.json("GET", "/v1/healthz")  # type: ignore[no-any-return]

    def ready(self) -> bool:
        """GET /v1/readyz: True once the daemon can take work, False while
        it cannot (``503``: images of ``[images] preload`` still missing,
        or shutting down)."""
        try:
            self._t.call("GET", "/v1/readyz")
        except errors.SandboxdError as e:
            if e.status == 503 and e.code == "http_503":
                return False
            raise
        return True

    def version(self) -> Dict[str, Any]:
        """GET /v1/version."""
        return self._t.json("GET", "/v1/version")  # type: ignore[no-any-return]

    def metrics(self) -> str:
        """GET /metrics: the Prometheus text."""
        _, data = self._t.call("GET", "/metrics")
        return data.decode()

    # For Sandbox.

    def _websocket(self, path: str, first: Optional[Dict[str, Any]]) -> Interactive:
        ws = WebSocket.connect(self._t.dial(self._t.timeout), self._t.host_header(), path, self._t.headers())
        if first is not None:
            try:
                ws.send(OP_TEXT, json.dumps(first).encode())
            except Exception:
                ws.close()
                raise
        return Interactive(ws)


def _build_events(events: Iterator[Event], on_event: Optional[Callable[[Event], None]]) -> Iterator[Event]:
    """Passes a build's events to on_event and on, raising an error event."""
    try:
        for ev in events:
            if on_event is not None:
                on_event(ev)
            if ev.type == "error":
                detail = ev.error or {}
                raise errors.error_for(str(detail.get("code", "")), str(detail.get("message", "")), 200)
            yield ev
    finally:
        close = getattr(events, "close", None)
        if close is not None:
            close()


def request_for_code(language: str, code: str, *, stdin: Optional[str] = None, version: Optional[str] = None,
                     args: Optional[Sequence[str]] = None, files: Optional[Dict[str, str]] = None,
                     limits: Optional[Dict[str, Any]] = None, filename: Optional[str] = None,
                     **fields: Any) -> Dict[str, Any]:
    """The language-mode request :meth:`Client.run_code` sends."""
    req: Dict[str, Any] = dict(fields)
    req["language"] = language
    req["files"] = [{"name": filename or main_file(language), "content": code}]
    req["files"] += [{"name": n, "content": c} for n, c in (files or {}).items()]
    for key, value in (("stdin", stdin), ("version", version), ("limits", limits)):
        if value is not None:
            req[key] = value
    if args is not None:
        req["args"] = list(args)
    return req
