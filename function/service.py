"""What the function answers, independent of the server that carries the request: the HTTP
semantics (routing, methods, preconditions, content negotiation, error answers).

``dispatch`` turns a request into either a finished ``Response`` or a ``RedisCall``: the one Redis
command the request needs and how to turn its reply into the response. The adapters run the call
on a synchronous or an asynchronous client (``store``); how a resource is kept in Redis is in
``storage``.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from typing import Any, TypeVar

from . import access, conditions, redis_errors, resources, storage
from .conditions import Condition
from .errors import (
    ApiError,
    BadRequest,
    InternalError,
    MethodNotAllowed,
    NotFound,
    OutcomeUnknown,
    Overloaded,
    PreconditionFailed,
    ServiceUnavailable,
    StorageFull,
)
from .logs import ThrottledWarning
from .messages import Headers, RedisCall, Request, Response
from .settings import Settings

log = logging.getLogger(__name__)
T = TypeVar("T")

HEALTH_PATHS = ("/health/liveness", "/health/readiness")
# functions-framework answers these itself (404) in one mode and not in the other; keep both alike.
FRAMEWORK_PATHS = ("/robots.txt", "/favicon.ico")

COUNTER_METHODS = ("GET", "HEAD")
HEALTH_METHODS = ("GET", "HEAD")
RESOURCE_METHODS = ("GET", "HEAD", "PUT", "DELETE")

TEXT = "text/plain; charset=utf-8"


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


def finish(call: RedisCall, reply: Any) -> Response | RedisCall:
    try:
        return call.finish(reply)
    except ApiError as error:
        return error_response(error)
    except Exception:
        if call.accepted is None:
            return internal_error()
        log.exception("Redis accepted the write; answering without the document")
        return call.accepted


def error_response(error: ApiError) -> Response:
    body = json.dumps({"error": error.code, "message": error.message}).encode()
    return Response(error.status, body, headers=error.headers)


_warn_unavailable = ThrottledWarning(log, interval_seconds=10.0)
_warn_overloaded = ThrottledWarning(log, interval_seconds=10.0)
_warn_storage_full = ThrottledWarning(log, interval_seconds=10.0)

# What a client is told when its change left for Redis and no reply came in time.
UNCONFIRMED_PUT = (
    "Redis did not confirm the write in time: it may have been stored. Sending the same PUT again "
    "is safe (a conditional one may then fail because the first took effect)"
)
UNCONFIRMED_DELETE = (
    "Redis did not confirm the delete in time: it may have been done. Sending it again is safe"
)
UNCONFIRMED_HIT = "Redis did not confirm the count in time: this hit may have been counted"
# Fields that carry one value (RFC 9110 §5.3). Sent twice, which one counts is anyone's guess
# (each server read another), so the request is refused. (Both of functions-framework's parsers
# refuse a repeated Content-Length themselves: the body's framing is unknown.)
SINGLE_FIELDS = ("Host", "Content-Type", "Authorization")


def repeated_field(name: str) -> BadRequest:
    return BadRequest(f"the {name} header field must be sent once")


# The client ended its side before its body was whole (both modes).
BODY_CUT_SHORT = "the request ended before its body was whole; nothing was stored"


def redis_unavailable(error: Exception) -> Response:
    _warn_unavailable("Redis did not answer: %s", redis_errors.describe(error))
    return error_response(ServiceUnavailable("Redis is not answering; try again shortly"))


def unconfirmed(message: str, error: Exception) -> Response:
    _warn_unavailable("Redis did not confirm a change: %s", redis_errors.describe(error))
    return error_response(OutcomeUnknown(message))


def overloaded(error: Exception) -> Response:
    _warn_overloaded("every Redis connection of this process is busy: %s", error)
    return error_response(Overloaded("the service is busy; try again shortly"))


def storage_full(error: Exception) -> Response:
    _warn_storage_full("Redis is out of memory and refuses writes: %s", error)
    return error_response(StorageFull("there is no room to store this; nothing was changed"))


def client_left() -> Response:
    """The answer to a request whose client ended its side before its whole body came: a
    half-closed client still reads it, so it is the JSON error."""
    log.info("the client left before sending its whole body; nothing was stored")
    return error_response(BadRequest(BODY_CUT_SHORT))


def internal_error() -> Response:
    log.exception("unexpected error")
    return internal_error_response()


def internal_error_response() -> Response:
    return error_response(InternalError("internal error"))  # details stay in the log


def _route(request: Request, settings: Settings) -> Response | RedisCall:
    method = request.method
    raw_path = request.raw_path
    if raw_path == b"*":
        # RFC 9112 §3.2.4: the asterisk form is for OPTIONS alone, which names the server, "/".
        if method != "OPTIONS":
            raise BadRequest("the request target * is for OPTIONS only")
        raw_path = b"/"
    path = resources.canonical_path(resources.decode_path(raw_path))
    if path in HEALTH_PATHS:
        _allow(method, HEALTH_METHODS)
        return Response(200, b'{"status":"ok"}')
    # After the health paths: a small MAX_PATH_BYTES must not fail the probes.
    resources.check_path_length(path, settings)
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
        return _read(request, key, path)
    if method == "DELETE":
        return _delete(request, key, path)
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
    if request.method == "GET":
        return RedisCall(
            ("INCR", resources.counter_key(settings)), answer, unconfirmed=UNCONFIRMED_HIT
        )
    return RedisCall(("GET", resources.counter_key(settings)), answer)


def _read(request: Request, key: str, path: str) -> RedisCall:
    if_match, if_none_match = _parsed_conditions(request)

    def answer(stored: bytes | None, left_ms: int) -> Response:
        tag = None if stored is None else storage.etag(stored)
        opaque = "" if tag is None else tag.strip('"')
        if if_match is not None and not (tag and if_match.names(opaque, weakly=False)):
            raise PreconditionFailed(f"the resource at {path} does not match If-Match")
        if stored is None:
            raise NotFound(f"no resource at {path}")
        assert tag is not None
        if if_none_match is not None and if_none_match.names(opaque, weakly=True):
            return Response(304, content_type=None, headers={"ETag": tag})
        document = storage.split_stored(stored)[1]
        body = resources.render_stored(document, resources.seconds_left(left_ms))
        return Response(200, body, headers={"ETag": tag})

    def answer_get(stored: bytes | None) -> Response | RedisCall:
        if stored is None:
            return answer(None, 0)
        expires_at_ms = storage.split_stored(stored)[0]
        if expires_at_ms is None:
            # Written before the expiry was kept in the value: read it again with its TTL.
            return storage.READ_BARE.call(key, finish=lambda reply: answer(*reply))
        return answer(stored, expires_at_ms - _now_ms())

    return RedisCall(("GET", key), answer_get)


def _delete(request: Request, key: str, path: str) -> RedisCall:
    if_match, if_none_match = _conditions(request)

    def answer(reply: Any) -> Response:
        if reply == storage.PRECONDITION_FAILED:
            raise PreconditionFailed(f"the resource at {path} does not meet the preconditions")
        if not reply:
            raise NotFound(f"no resource at {path}")
        return Response(204, content_type=None)

    accepted = Response(204, content_type=None)
    if if_match or if_none_match:
        return storage.DELETE_IF.call(
            key,
            if_match,
            if_none_match,
            finish=answer,
            accepted=accepted,
            unconfirmed=UNCONFIRMED_DELETE,
        )
    return RedisCall(("DEL", key), answer, accepted=accepted, unconfirmed=UNCONFIRMED_DELETE)


def _write(request: Request, key: str, path: str, settings: Settings) -> RedisCall:
    ttl = resources.parse_ttl(request.query_string, settings)
    resources.check_content_type(request.headers.get("content-type"))
    resources.check_body_size(_declared_length(request.headers) or 0, settings)
    document = resources.stored_json(
        resources.parse_document(request.body, settings), int(time.time())
    )
    if_match, if_none_match = _conditions(request)
    now_ms = _now_ms()
    seconds = settings.ttl_default_seconds if ttl is None else ttl
    expires_at_ms = now_ms + seconds * 1000

    def answer(existed: bool, expiry_ms: int, tag: str) -> Response:
        headers = {"ETag": tag} if existed else {"ETag": tag, "Location": resources.location(path)}
        ttl_now = resources.seconds_left(expiry_ms - now_ms)
        return Response(
            200 if existed else 201, resources.render_stored(document, ttl_now), headers=headers
        )

    def tag_of(expiry_ms: int) -> str:
        return storage.etag(storage.stored_value(document, expiry_ms))

    if ttl is not None and not if_match and not if_none_match:
        # One plain command: the old value it returns tells a replacement from a new resource.
        stored = storage.stored_value(document, expires_at_ms)
        tag = storage.etag(stored)
        return RedisCall(
            ("SET", key, stored, "PXAT", expires_at_ms, "GET"),
            lambda previous: answer(previous is not None, expires_at_ms, tag),
            accepted=Response(204, content_type=None, headers={"ETag": tag}),
            unconfirmed=UNCONFIRMED_PUT,
        )

    def answer_script(reply: Any) -> Response:
        existed, expiry_ms = reply
        if existed == storage.PRECONDITION_FAILED:
            raise PreconditionFailed(f"the resource at {path} does not meet the preconditions")
        return answer(bool(existed), int(expiry_ms), tag_of(int(expiry_ms)))

    keep = "1" if ttl is None else ""
    # With ?ttl=keep the stored bytes, and so the tag, depend on the expiry Redis keeps.
    accepted_headers = {} if keep else {"ETag": tag_of(expires_at_ms)}
    return storage.WRITE.call(
        key,
        document,
        expires_at_ms,
        keep,
        if_match,
        if_none_match,
        now_ms,
        finish=answer_script,
        accepted=Response(204, content_type=None, headers=accepted_headers),
        unconfirmed=UNCONFIRMED_PUT,
    )


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _parsed_conditions(request: Request) -> tuple[Condition | None, Condition | None]:
    headers = request.headers
    return (
        conditions.parse("If-Match", headers.get("if-match")),
        conditions.parse("If-None-Match", headers.get("if-none-match")),
    )


def _conditions(request: Request) -> tuple[str, str]:
    """If-Match and If-None-Match as the write scripts take them."""
    if_match, if_none_match = _parsed_conditions(request)
    return storage.script_condition(if_match, weak=False), storage.script_condition(
        if_none_match, weak=True
    )


def _declared_length(headers: Headers) -> int | None:
    declared = headers.get("content-length")
    if declared is None or not (declared.isascii() and declared.isdigit()):
        return None
    digits = declared.lstrip("0") or "0"  # a length may be written with leading zeros
    # Past 18 digits it is over any limit: int() of thousands of digits would raise.
    return int(digits) if len(digits) <= 18 else 10**18


def _prefers_json(accept: str | None) -> bool:
    """Whether ``Accept`` ranks JSON above plain text (RFC 9110 §12.5.1): each takes the quality
    of the most specific range that matches it; equal ranks go to plain text."""
    if not accept:
        return False
    ranges = sorted(_media_ranges(accept), key=lambda r: (r[0], r[1]), reverse=True)
    as_json = _rank(ranges, "application", "json")
    return as_json[0] > 0 and as_json > _rank(ranges, "text", "plain")


_Range = tuple[tuple[bool, ...], float, list[str]]  # specificity, quality, type/subtype/params
_MEDIA_PARTS = re.compile(r"/|(?:[ \t]*;[ \t]*)")
_QUOTED = r'"(?:[^"\\]|\\.)*"'
_TOKEN = r"[\w!#$%&'*+\-.^`|~]+"
# A parameter (RFC 9110 §5.6.6); anything else between semicolons is skipped.
_PARAMETER = re.compile(rf"({_TOKEN})=({_TOKEN}|{_QUOTED})")
_ESCAPED = re.compile(r"\\(.)")
_QUALITY = re.compile(r"-?\d+(\.\d+)?")
# A list element: commas inside a quoted string do not end it. A field with a quoted string left
# open has no elements.
_ELEMENT = re.compile(rf'(?:[^,"]|{_QUOTED})+')
_BALANCED = re.compile(rf'(?:[^"]|{_QUOTED})*')


def _media_ranges(accept: str) -> list[_Range]:
    ranges: list[_Range] = []
    if not _BALANCED.fullmatch(accept):
        return ranges
    for element in _ELEMENT.findall(accept):
        item = _unquoted(element.strip(" \t"))
        media_type, *fields = (field.strip(" \t") for field in item.split(";"))
        params: dict[str, str] = {}  # by lower-case name: a name given twice keeps its last value
        for field in fields:
            if parameter := _PARAMETER.match(field):
                params[parameter[1].lower()] = _unquoted(parameter[2])
        quality = params.pop("q", "1").strip(" \t")
        if not _QUALITY.fullmatch(quality) or not 0 <= float(quality) <= 1:
            continue  # a range with an invalid weight is ignored
        parts = _MEDIA_PARTS.split(media_type.lower()) + [f"{n}={v}" for n, v in params.items()]
        if "/" in media_type and not (parts[0] == "*" and parts[1] != "*"):
            ranges.append((tuple(part != "*" for part in parts), float(quality), parts))
    return ranges


def _unquoted(text: str) -> str:
    """A quoted string's content; other text as it is."""
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return _ESCAPED.sub(r"\1", text[1:-1])
    return text


def _rank(ranges: list[_Range], kind: str, subtype: str) -> tuple[float, tuple[bool, ...]]:
    """The quality and specificity of the first (most specific) range naming ``kind/subtype``."""
    for specificity, quality, (range_kind, range_subtype, *params) in ranges:
        if range_kind == "*" or (
            range_kind == kind
            and (range_subtype == "*" or (range_subtype == subtype and not params))
        ):
            return quality, specificity
    return -1.0, ()


def safe_response(response: Response, build: Callable[[Response], T]) -> T:
    """``build(response)``, the framework's response object; if that fails, a bare answer with
    the same status when it reports a success (a write Redis accepted is never reported as
    failed), otherwise a 500."""
    try:
        return build(response)
    except Exception:
        log.exception("could not build the answer")
        if response.status < 400:
            return build(Response(response.status, content_type=None))
        return build(internal_error_response())
