"""Helpers shared by the client and the sandbox objects."""

from __future__ import annotations

import json
from typing import Any, Dict, Iterator, Optional, Sequence, Union
from urllib.parse import quote

from .types import Event


# A network policy: the hosts allowed, or {"allow": [...]} as the API has it.
Network = Union[Sequence[str], Dict[str, Any]]


def network_field(network: Network) -> Dict[str, Any]:
    """The API's ``{"allow": [...]}`` of a list of hosts (a dict as is)."""
    if isinstance(network, dict):
        return dict(network)
    if isinstance(network, str):
        raise TypeError("network is a list of hosts, not a string")
    return {"allow": list(network)}


def merge(request: Optional[Dict[str, Any]], fields: Dict[str, Any]) -> Dict[str, Any]:
    """A request dict with keyword fields over it."""
    out = dict(request or {})
    out.update(fields)
    return out


def events_of(lines: Iterator[bytes]) -> Iterator[Event]:
    """NDJSON lines to events; closing this closes the lines' connection."""
    try:
        for line in lines:
            raw = json.loads(line)
            yield Event(str(raw.get("type", "")), raw)
    finally:
        close = getattr(lines, "close", None)
        if close is not None:
            close()


def sandbox_path(sandbox_id: str, rest: str = "") -> str:
    """/v1/sandboxes/{id} and what follows."""
    return "/v1/sandboxes/" + quote(sandbox_id, safe="") + rest


def files_path(sandbox_id: str, path: str) -> str:
    """The URL of a sandbox path (docs/api.md, "Paths"): each segment
    escaped, an absolute path's leading slash as %2F (a // would be cleaned
    into a relative path), and "." or ".." as %2E so that no HTTP layer
    cleans the URL into another resource; the daemon refuses them."""
    if path == "":
        return sandbox_path(sandbox_id, "/files")
    out = sandbox_path(sandbox_id, "/files/")
    if path.startswith("/"):
        out += "%2F"
        path = path[1:]
    segs = []
    for seg in path.split("/"):
        segs.append("%2E" * len(seg) if seg in (".", "..") else quote(seg, safe=""))
    return out + "/".join(segs)
