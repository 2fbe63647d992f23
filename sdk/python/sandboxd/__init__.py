"""sandboxd: a Python client for the sandboxd daemon (standard library only).

>>> import sandboxd
>>> client = sandboxd.Client()
>>> print(client.run_code("python", "print('hello')")["run"]["stdout"])
hello
"""

from .client import DEFAULT_SOCKET, Client, main_file, request_for_code
from .errors import (Busy, Conflict, ConnectionError, Forbidden, InsufficientStorage, InternalError,
                     InvalidRequest, NotFound, RateLimited, RequestTooLarge, SandboxdError, Unauthorized,
                     Unavailable)
from .interactive import Interactive
from .sandbox import Files, Sandbox
from .types import Event

__all__ = [
    "DEFAULT_SOCKET", "Client", "Sandbox", "Files", "Interactive", "Event", "main_file", "request_for_code",
    "SandboxdError", "InvalidRequest", "NotFound", "Unauthorized", "Forbidden", "Conflict", "RequestTooLarge",
    "RateLimited", "InsufficientStorage", "Unavailable", "Busy", "InternalError", "ConnectionError",
]
__version__ = "0.1.0"
