"""The JSON shapes the daemon answers with, as TypedDicts (docs/api.md and
docs/result.md describe every field). Answers are plain dicts: these types
are for editors and type checkers."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, TypedDict


class RunResult(TypedDict, total=False):
    """One program run (docs/result.md)."""

    status: str
    exit_code: int
    signal: Optional[str]
    stdout: str
    stderr: str
    stdout_truncated: bool
    stderr_truncated: bool
    cpu_time_ms: float
    wall_time_ms: float
    memory_peak_bytes: int
    oom_killed: bool
    files: List[Dict[str, Any]]


class ExecuteResponse(TypedDict, total=False):
    """POST /v1/execute in raw mode, and a session exec."""

    id: str
    image: str
    status: str
    run: RunResult


class LanguageResponse(TypedDict, total=False):
    """POST /v1/execute in language mode."""

    id: str
    language: str
    version: str
    status: str
    compile: Optional[RunResult]
    run: Optional[RunResult]
    tests: Optional[List[Dict[str, Any]]]
    summary: Dict[str, int]
    # Judging (docs/judge.md): the checker's compile, and with groups or
    # points each group's outcome and the score.
    checker_compile: RunResult
    groups: List[Dict[str, Any]]
    score: float
    max_score: float


class SandboxInfo(TypedDict, total=False):
    """A session sandbox (POST/GET /v1/sandboxes)."""

    id: str
    image: str
    language: str
    version: str
    created_at: str
    expires_at: str
    idle_timeout_ms: int
    limits: Dict[str, Any]
    labels: Dict[str, str]
    state: str
    usage: Dict[str, Any]
    network: Dict[str, Any]


class FileEntry(TypedDict, total=False):
    """One entry of a directory listing, or the file a write made."""

    path: str
    name: str
    type: str
    size: int
    mode: str
    mtime: str


class ExecInfo(TypedDict, total=False):
    """A detached exec."""

    exec_id: str
    cmd: List[str]
    state: str
    started_at: str
    ended_at: Optional[str]
    result: Optional[RunResult]
    error: Dict[str, str]


@dataclass
class Event:
    """One streaming event: ``type`` is ``stdout``, ``stderr``, ``stage``,
    ``result`` or ``error`` (and, in an image build, ``step`` and
    ``step_end``); ``raw`` is the whole event as sent (a result's
    fields are in it: ``event.raw["run"]``)."""

    type: str
    raw: Dict[str, Any] = field(repr=False)

    @property
    def data(self) -> str:
        """An output event's data as sent (base64 when ``encoding`` says so)."""
        return str(self.raw.get("data", ""))

    @property
    def encoding(self) -> str:
        """``"base64"`` for output that is not UTF-8, else ``""``."""
        return str(self.raw.get("encoding", ""))

    def bytes(self) -> bytes:
        """An output event's bytes, decoded from base64 when so sent."""
        if self.encoding == "base64":
            return base64.b64decode(self.data)
        return self.data.encode()

    @property
    def stage(self) -> str:
        """A stage event's stage: ``compile``, ``run`` or ``test``."""
        return str(self.raw.get("stage", ""))

    @property
    def index(self) -> int:
        """A stage event's test index (0 otherwise)."""
        return int(self.raw.get("index", 0))

    @property
    def step(self) -> int:
        """A build's ``step`` or ``step_end`` event's step, from 1 (0 otherwise)."""
        return int(self.raw.get("step", 0))

    @property
    def error(self) -> Optional[Dict[str, str]]:
        """An error event's ``{"code", "message"}``."""
        return self.raw.get("error")
