"""What the function answers, independent of the server that carries the request.

``dispatch`` turns a request into either a finished ``Response`` or a ``RedisCall``: the one Redis
command the request needs and how to turn its reply into the response. The adapters run the call
on a synchronous or an asynchronous client; the rules live only here.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote

from werkzeug.datastructures import MIMEAccept
from werkzeug.http import parse_accept_header

from . import access, resources
from .errors import ApiError, MethodNotAllowed, NotFound, ServiceUnavailable
from .settings import Settings

log = logging.getLogger(__name__)

HEALTH_PATHS = ("/health/liveness", "/health/readiness")
# functions-framework answers these itself (404) in one mode and not in the other; keep both alike.
FRAMEWORK_PATHS = ("/robots.txt", "/favicon.ico")

COUNTER_METHODS = ("GET", "HEAD")
HEALTH_METHODS = ("GET", "HEAD")
RESOURCE_METHODS = ("GET", "HEAD", "PUT", "DELETE")

JSON = "application/json"
TEXT = "text/plain; charset=utf-8"


class Headers(Protocol):
    def get(self, key: str, /) -> str | None: ...


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # percent-decoded, as servers hand it over
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
    finish: Callable[[Any], Response]
    # For EVALSHA: the same call as EVAL, for a Redis whose script cache is empty (restarted).
    fallback: Command | None = None


@dataclass(frozen=True)
class Script:
    """A Lua script: Redis runs it as one atomic step, and one command carries it."""

    source: str
    sha: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha", hashlib.sha1(self.source.encode()).hexdigest())

    def call(self, key: str, *args: Any, finish: Callable[[Any], Response]) -> RedisCall:
        return RedisCall(
            ("EVALSHA", self.sha, 1, key, *args), finish, ("EVAL", self.source, 1, key, *args)
        )


# The document and its remaining time to live, read together.
READ = Script("return {redis.call('GET', KEYS[1]), redis.call('TTL', KEYS[1])}")
# Replace document and expiry together, and tell whether a document was there.
WRITE = Script(
    "local existed = redis.call('EXISTS', KEYS[1]) "
    "redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2]) "
    "return existed"
)


def body_limit(method: str, headers: Headers, settings: Settings) -> int:
    """How many body bytes an adapter should read: one past the limit, to tell a body that is too
    large; none for methods that take no body or a declared length already over the limit."""
    if method != "PUT":
        return 0
    declared = _declared_length(headers)
    if declared is not None and declared > settings.max_body_bytes:
        return 0
    return settings.max_body_bytes + 1


def dispatch(request: Request, settings: Settings) -> Response | RedisCall:
    try:
        return _route(request, settings)
    except ApiError as error:
        return error_response(error)


def finish(call: RedisCall, reply: Any) -> Response:
    try:
        return call.finish(reply)
    except ApiError as error:
        return error_response(error)


def error_response(error: ApiError) -> Response:
    body = json.dumps({"error": error.code, "message": error.message}).encode()
    return Response(error.status, body, headers=error.headers)


class _ThrottledWarning:
    """Logs a failure that repeats on every request at most once per interval, with a count:
    an outage under load must not turn into thousands of log lines a second."""

    def __init__(self, interval_seconds: float) -> None:
        self.interval_seconds = interval_seconds
        self.next_at = 0.0
        self.held_back = 0

    def __call__(self, message: str, *args: object) -> None:
        now = time.monotonic()
        if now < self.next_at:
            self.held_back += 1
            return
        if self.held_back:
            message += f" (and {self.held_back} more like it since the last report)"
        log.warning(message, *args)
        self.next_at, self.held_back = now + self.interval_seconds, 0


_warn_unavailable = _ThrottledWarning(interval_seconds=10.0)


def redis_unavailable(error: Exception) -> Response:
    _warn_unavailable("Redis did not answer: %s", error)
    return error_response(ServiceUnavailable("Redis is not answering; try again shortly"))


def internal_error() -> Response:
    log.exception("unexpected error")
    return error_response(ApiError("internal error", code="internal"))  # details stay in the log


def _route(request: Request, settings: Settings) -> Response | RedisCall:
    path = resources.normalize_path(request.path, settings)
    method = request.method
    if path in HEALTH_PATHS:
        _allow(method, HEALTH_METHODS)
        return Response(200, b'{"status":"ok"}')
    if path in FRAMEWORK_PATHS:
        raise NotFound(f"{path} is not served here")
    if path == "/":
        _allow(method, COUNTER_METHODS)
        access.authorize(method, request.headers.get("authorization"), settings)
        return _count(request, settings)
    _allow(method, RESOURCE_METHODS)
    access.authorize(method, request.headers.get("authorization"), settings)
    key = resources.resource_key(settings, path)
    if method in ("GET", "HEAD"):
        return _read(key, path)
    if method == "DELETE":
        return _delete(key, path)
    return _write(request, key, path, settings)


def _allow(method: str, allowed: tuple[str, ...]) -> None:
    if method not in allowed:
        raise MethodNotAllowed(method, allowed)


def _count(request: Request, settings: Settings) -> RedisCall:
    as_json = _prefers_json(request.headers.get("accept"))

    def answer(reply: Any) -> Response:
        count = int(reply or 0)
        if as_json:
            return Response(200, b'{"count":%d}' % count)
        return Response(200, b"Count is %d." % count, TEXT)

    # HEAD is safe: it reports the count without adding a hit.
    command = "INCR" if request.method == "GET" else "GET"
    return RedisCall((command, resources.counter_key(settings)), answer)


def _read(key: str, path: str) -> RedisCall:
    def answer(reply: Any) -> Response:
        stored, ttl = reply
        if stored is None:
            raise NotFound(f"no resource at {path}")
        return Response(200, resources.render_stored(stored, ttl))

    return READ.call(key, finish=answer)


def _delete(key: str, path: str) -> RedisCall:
    def answer(reply: Any) -> Response:
        if not reply:
            raise NotFound(f"no resource at {path}")
        return Response(204, content_type=None)

    return RedisCall(("DEL", key), answer)


def _write(request: Request, key: str, path: str, settings: Settings) -> RedisCall:
    ttl = resources.parse_ttl(request.query_string, settings)
    resources.check_content_type(request.headers.get("content-type"))
    resources.check_body_size(_declared_length(request.headers) or 0, settings)
    document = resources.parse_document(request.body, settings)
    stored = resources.encode_stored(document, int(time.time()))

    def answer(reply: Any) -> Response:
        existed = bool(reply)
        # Percent-encoded: a header carries Latin-1 at most, and a path may hold any character.
        headers = {} if existed else {"Location": quote(path)}
        return Response(
            200 if existed else 201, resources.render_stored(stored, ttl), headers=headers
        )

    return WRITE.call(key, stored, ttl, finish=answer)


def _declared_length(headers: Headers) -> int | None:
    declared = headers.get("content-length")
    return int(declared) if declared is not None and declared.isdigit() else None


def _prefers_json(accept: str | None) -> bool:
    if not accept:
        return False
    offered = parse_accept_header(accept, MIMEAccept)
    return offered.best_match(("text/plain", JSON)) == JSON
