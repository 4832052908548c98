"""What passes between an adapter, the core and Redis: a request in, and out either a finished
``Response`` or a ``RedisCall`` whose reply the core turns into one (sans-IO: no sockets here)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

JSON = "application/json"


class Headers(Protocol):
    """Header fields by lower-case name; a field sent on several lines is its values joined
    with commas (RFC 9110 §5.3), as WSGI servers hand them over and the ASGI adapter joins them."""

    def get(self, key: str, /) -> str | None: ...


@dataclass(frozen=True)
class Request:
    method: str
    raw_path: bytes  # as the client sent it: still percent-encoded, without the query
    query_string: bytes
    headers: Headers
    body: bytes = b""


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str | None = JSON
    headers: dict[str, str] = field(default_factory=dict)


Command = tuple[Any, ...]


@dataclass(frozen=True)
class RedisCall:
    command: Command
    # The answer from Redis's reply, or one more call (a value in the format before, read again).
    finish: Callable[[Any], Response | RedisCall]
    # For EVALSHA: the same call as EVAL, for a Redis whose script cache is empty (restarted).
    fallback: Command | None = None
    # For a write: the answer should building the full one fail once Redis has replied. A write
    # Redis accepted is never answered as a failure.
    accepted: Response | None = None
    # For a command that changes something: what to tell the client when it was sent and no
    # reply came, so it may have run.
    unconfirmed: str | None = None
