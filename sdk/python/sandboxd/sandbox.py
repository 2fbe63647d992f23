"""Session sandboxes: a sandbox that keeps its /work and /tmp across execs
(docs/api.md, "Sandboxes (sessions)")."""

from __future__ import annotations

import io
import json
import os
import tarfile
import tempfile
from typing import IO, TYPE_CHECKING, Any, Dict, Iterator, List, Optional, Sequence, Union
from urllib.parse import urlencode

from ._util import Network, events_of, files_path, merge, network_field, sandbox_path
from .types import Event, ExecInfo, ExecuteResponse, FileEntry, SandboxInfo

if TYPE_CHECKING:
    from .client import Client
    from .interactive import Interactive

Command = Union[str, Sequence[str]]


def _argv(cmd: Command) -> List[str]:
    # A string is a shell command line, run by the image's /bin/sh.
    return ["/bin/sh", "-c", cmd] if isinstance(cmd, str) else list(cmd)


class Files:
    """The files API of one sandbox. Paths are relative to /work, or
    absolute under /work or /tmp."""

    def __init__(self, sandbox: "Sandbox") -> None:
        self._sb = sandbox

    def write(self, path: str, content: Union[str, bytes, IO[bytes]], mode: Optional[int] = None) -> FileEntry:
        """PUT /v1/sandboxes/{id}/files/{path}: creates or replaces a file
        (parents made); mode is the permission bits (``0o755``)."""
        body = content.encode() if isinstance(content, str) else content
        url = files_path(self._sb.id, path)
        if mode is not None:
            url += "?" + urlencode({"mode": f"{mode:04o}"})
        _, data = self._sb._t.call("PUT", url, body, {"Content-Type": "application/octet-stream"})
        return json.loads(data)  # type: ignore[no-any-return]

    def read(self, path: str, *, follow: bool = False) -> bytes:
        """GET /v1/sandboxes/{id}/files/{path}: a file's content;
        ``follow`` resolves symlinks within /work and /tmp."""
        url = files_path(self._sb.id, path) + ("?follow=1" if follow else "")
        _, data = self._sb._t.call("GET", url)
        return data

    def read_text(self, path: str, *, follow: bool = False) -> str:
        """A file's content as UTF-8 text."""
        return self.read(path, follow=follow).decode()

    def list(self, path: str = "", *, recursive: bool = False) -> List[FileEntry]:
        """GET /v1/sandboxes/{id}/files/{path} of a directory: its entries
        sorted by name (``recursive``: everything below, depth first)."""
        url = files_path(self._sb.id, path) + ("?recursive=1" if recursive else "")
        return self._sb._t.json("GET", url)["entries"]  # type: ignore[no-any-return]

    def remove(self, path: str, *, recursive: bool = False) -> None:
        """DELETE /v1/sandboxes/{id}/files/{path}: a file, a symlink or an
        empty directory (``recursive``: a whole tree)."""
        self._sb._t.json("DELETE", files_path(self._sb.id, path) + ("?recursive=1" if recursive else ""))


class Sandbox:
    """A session sandbox. ``info`` is the daemon's description of it;
    ``files`` its files API. As a context manager it is deleted on exit."""

    def __init__(self, client: "Client", info: SandboxInfo) -> None:
        self._client = client
        self._t = client._t
        self.info = info
        self.id: str = info["id"]
        self.files = Files(self)

    def __repr__(self) -> str:
        return f"<Sandbox {self.id} {self.info.get('image', '')}>"

    def exec(self, cmd: Command, *, stdin: Optional[str] = None, env: Optional[Dict[str, str]] = None,
             cwd: Optional[str] = None, limits: Optional[Dict[str, Any]] = None, **fields: Any) -> ExecuteResponse:
        """POST /v1/sandboxes/{id}/exec: runs cmd (argv, or a string for
        ``/bin/sh -c``) and returns its answer; ``["run"]`` is the result."""
        return self._t.json("POST", sandbox_path(self.id, "/exec"), _exec_request(cmd, stdin, env, cwd, limits, fields))

    def exec_stream(self, cmd: Command, *, stdin: Optional[str] = None, env: Optional[Dict[str, str]] = None,
                    cwd: Optional[str] = None, limits: Optional[Dict[str, Any]] = None, **fields: Any) -> Iterator[Event]:
        """The exec with ``"stream": true``: its events as they come, the
        ``result`` last."""
        req = _exec_request(cmd, stdin, env, cwd, limits, fields)
        req["stream"] = True
        return events_of(self._t.lines("POST", sandbox_path(self.id, "/exec"), req))

    def exec_interactive(self, cmd: Command, *, env: Optional[Dict[str, str]] = None, cwd: Optional[str] = None,
                         limits: Optional[Dict[str, Any]] = None, **fields: Any) -> "Interactive":
        """GET /v1/sandboxes/{id}/exec/ws: the exec over a WebSocket, to
        send stdin, signals and resizes while it runs."""
        req = _exec_request(cmd, None, env, cwd, limits, fields)
        return self._client._websocket(sandbox_path(self.id, "/exec/ws"), req)

    def detach(self, cmd: Command, *, stdin: Optional[str] = None, env: Optional[Dict[str, str]] = None,
               cwd: Optional[str] = None, limits: Optional[Dict[str, Any]] = None, **fields: Any) -> ExecInfo:
        """POST /v1/sandboxes/{id}/exec with ``"detach": true``: starts cmd
        in the background (a server, say) and returns its exec."""
        req = _exec_request(cmd, stdin, env, cwd, limits, fields)
        req["detach"] = True
        return self._t.json("POST", sandbox_path(self.id, "/exec"), req)  # type: ignore[no-any-return]

    def execs(self) -> List[ExecInfo]:
        """GET /v1/sandboxes/{id}/execs: the detached execs."""
        return self._t.json("GET", sandbox_path(self.id, "/execs"))["execs"]  # type: ignore[no-any-return]

    def get_exec(self, exec_id: str, *, wait: bool = False) -> ExecInfo:
        """GET /v1/sandboxes/{id}/execs/{exec_id}; ``wait`` answers once it
        has ended."""
        path = sandbox_path(self.id, "/execs/" + exec_id) + ("?wait=1" if wait else "")
        return self._t.json("GET", path)  # type: ignore[no-any-return]

    def kill(self, exec_id: str) -> None:
        """DELETE /v1/sandboxes/{id}/execs/{exec_id}: kills a detached exec."""
        self._t.json("DELETE", sandbox_path(self.id, "/execs/" + exec_id))

    def attach(self, exec_id: str) -> "Interactive":
        """GET /v1/sandboxes/{id}/execs/{exec_id}/ws: attaches to a detached
        exec: its kept output, then what it writes, then its exec object as
        the ``result`` event; stdin may be sent."""
        return self._client._websocket(sandbox_path(self.id, "/execs/" + exec_id + "/ws"), None)

    def upload(self, local_dir: str, path: str = "/work") -> Dict[str, Any]:
        """PUT /v1/sandboxes/{id}/archive: copies the local directory's
        contents (files, directories, symlinks) into path in the sandbox."""
        with tempfile.TemporaryFile() as f:
            with tarfile.open(fileobj=f, mode="w", format=tarfile.PAX_FORMAT) as tar:
                for name in sorted(os.listdir(local_dir)):
                    tar.add(os.path.join(local_dir, name), arcname=name)
            size = f.tell()
            f.seek(0)
            # With its length, http.client sends the file as is rather than chunked.
            _, data = self._t.call("PUT", sandbox_path(self.id, "/archive?" + urlencode({"path": path})), f,
                                   {"Content-Type": "application/x-tar", "Content-Length": str(size)})
        return json.loads(data)  # type: ignore[no-any-return]

    def download(self, local_dir: str, path: str = "/work") -> List[str]:
        """GET /v1/sandboxes/{id}/archive: copies path (a directory's
        contents, or one file) into the local directory, made if missing,
        and returns the names written. What the sandbox made is hostile:
        entries that would land outside local_dir, absolute or escaping
        links, and special files are refused."""
        os.makedirs(local_dir, exist_ok=True)
        conn, resp = self._t.open("GET", sandbox_path(self.id, "/archive?" + urlencode({"path": path})))
        try:
            with tempfile.TemporaryFile() as f:
                while True:
                    chunk = resp.read(1 << 16)
                    if not chunk:
                        break
                    f.write(chunk)
                f.seek(0)
                with tarfile.open(fileobj=f, mode="r:") as tar:
                    members = [_checked(m, local_dir) for m in tar.getmembers()]
                    _extract(tar, members, local_dir)
                    return [m.name.rstrip("/") for m in members]
        finally:
            conn.close()

    def refresh(self) -> SandboxInfo:
        """GET /v1/sandboxes/{id}: updates ``info``, with ``usage``."""
        self.info = self._t.json("GET", sandbox_path(self.id))
        return self.info

    def set_network(self, allow: Network) -> SandboxInfo:
        """PATCH /v1/sandboxes/{id}: replaces the hosts the sandbox may
        reach (``[]`` locks it: install, then lock); updates and returns
        ``info``, with ``usage`` and ``network``."""
        self.info = self._t.json("PATCH", sandbox_path(self.id), {"network": network_field(allow)})
        return self.info

    def delete(self) -> None:
        """DELETE /v1/sandboxes/{id}: ends the sandbox and everything in it."""
        self._t.json("DELETE", sandbox_path(self.id))

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.delete()


def _exec_request(cmd: Command, stdin: Optional[str], env: Optional[Dict[str, str]], cwd: Optional[str],
                  limits: Optional[Dict[str, Any]], fields: Dict[str, Any]) -> Dict[str, Any]:
    req = merge({"cmd": _argv(cmd)}, fields)
    for key, value in (("stdin", stdin), ("env", env), ("cwd", cwd), ("limits", limits)):
        if value is not None:
            req[key] = value
    return req


def _checked(m: tarfile.TarInfo, root: str) -> tarfile.TarInfo:
    """Refuses an entry that would write outside root."""
    base = os.path.realpath(root)
    target = os.path.realpath(os.path.join(base, m.name))
    if os.path.isabs(m.name) or not (target == base or target.startswith(base + os.sep)):
        raise ValueError(f"archive entry {m.name!r} is outside the directory")
    if not (m.isfile() or m.isdir() or m.issym()):
        raise ValueError(f"archive entry {m.name!r} is not a file, directory or symlink")
    if m.issym():
        link = os.path.realpath(os.path.join(os.path.dirname(target), m.linkname))
        if os.path.isabs(m.linkname) or not (link == base or link.startswith(base + os.sep)):
            raise ValueError(f"archive symlink {m.name!r} points outside the directory")
    return m


def _extract(tar: tarfile.TarFile, members: List[tarfile.TarInfo], root: str) -> None:
    # Python 3.12 (and 3.8.17+, 3.11.4+) has extraction filters; "data"
    # repeats the checks above and drops owners and special bits.
    if hasattr(tarfile, "data_filter"):
        tar.extractall(root, members=members, filter="data")
    else:  # pragma: no cover - older Pythons
        for m in members:
            m.uid = m.gid = os.getuid()
            m.mode &= 0o777
        tar.extractall(root, members=members)
