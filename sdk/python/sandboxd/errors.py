"""Typed exceptions for the API's errors.

Every error the daemon answers is ``{"error": {"code": ..., "message": ...}}``
with an HTTP status (docs/api.md, "Error codes"). :func:`from_response`
turns one into the exception class of its code, so callers can catch a
kind of failure (``except sandboxd.NotFound``) or test ``err.code``.
"""

from __future__ import annotations

import json
from typing import Dict, Optional, Type


class SandboxdError(Exception):
    """An error answered by the daemon, or met talking to it.

    Attributes:
        code: the API's error code (``invalid_request``, ``unknown_sandbox``,
            ...), or ``http_<status>`` when the answer was not an API error,
            or ``connection_error`` when the daemon could not be reached.
        message: the daemon's message.
        status: the HTTP status, 0 when there was no answer.
        retry_after: the ``Retry-After`` header in seconds, when sent
            (``rate_limited``, ``busy``).
    """

    def __init__(self, code: str, message: str, status: int = 0, retry_after: Optional[float] = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.retry_after = retry_after


class InvalidRequest(SandboxdError):
    """400 ``invalid_request``: the request is malformed or not allowed."""


class NotFound(SandboxdError):
    """404: ``not_found``, ``unknown_image``, ``unknown_language``,
    ``unknown_sandbox``, ``unknown_exec`` or ``unknown_testset``."""


class Unauthorized(SandboxdError):
    """401 ``unauthorized``: a valid bearer token is needed."""


class Forbidden(SandboxdError):
    """403 ``forbidden``: the socket's caller is not allowed."""


class Conflict(SandboxdError):
    """409 ``conflict``."""


class RequestTooLarge(SandboxdError):
    """413 ``request_too_large``."""


class RateLimited(SandboxdError):
    """429 ``rate_limited``: see ``retry_after``."""


class InsufficientStorage(SandboxdError):
    """507 ``insufficient_storage``: a session sandbox's tmpfs is full."""


class Unavailable(SandboxdError):
    """502 ``unavailable``: a registry could not be reached."""


class Busy(SandboxdError):
    """503 ``busy``: every slot and the queue are full; see ``retry_after``."""


class InternalError(SandboxdError):
    """500 ``internal_error``: the daemon failed; its log has the details."""


class ConnectionError(SandboxdError):  # noqa: A001 - the SDK's own, a SandboxdError
    """The daemon could not be reached, or the connection broke."""

    def __init__(self, message: str) -> None:
        super().__init__("connection_error", message)


_CLASSES: Dict[str, Type[SandboxdError]] = {
    "invalid_request": InvalidRequest,
    "not_found": NotFound,
    "unknown_image": NotFound,
    "unknown_language": NotFound,
    "unknown_sandbox": NotFound,
    "unknown_exec": NotFound,
    "unknown_testset": NotFound,
    "unauthorized": Unauthorized,
    "forbidden": Forbidden,
    "conflict": Conflict,
    "request_too_large": RequestTooLarge,
    "rate_limited": RateLimited,
    "insufficient_storage": InsufficientStorage,
    "unavailable": Unavailable,
    "busy": Busy,
    "internal_error": InternalError,
}


def error_for(code: str, message: str, status: int = 0, retry_after: Optional[float] = None) -> SandboxdError:
    """Returns the exception of an API error code (SandboxdError for a code
    this SDK does not know)."""
    return _CLASSES.get(code, SandboxdError)(code, message, status, retry_after)


def from_response(status: int, body: bytes, retry_after: Optional[str] = None) -> SandboxdError:
    """Builds the exception for an error answer's status, body and
    Retry-After header."""
    after: Optional[float] = None
    if retry_after:
        try:
            after = float(retry_after)
        except ValueError:
            after = None
    try:
        detail = json.loads(body)["error"]
        return error_for(str(detail["code"]), str(detail.get("message", "")), status, after)
    except (ValueError, KeyError, TypeError):
        text = body.decode("utf-8", "replace").strip()
        return SandboxdError(f"http_{status}", text, status, after)
