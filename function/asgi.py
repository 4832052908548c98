"""``handle``: the function in functions-framework's ASGI mode (``--asgi``).

``app`` is the same function as a plain ASGI application: ``function.serving`` has
functions-framework serve it in place of its own Starlette router, so every request, whatever its
method or path, gets this function's answer.

``respond`` is the request-to-response path of both ASGI entry points: this one and func's
(``function.func``), which differ only in where their settings and Redis client come from.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Awaitable, Callable, Coroutine, MutableMapping
from typing import Any

from starlette.requests import Request as StarletteRequest
from starlette.responses import Response as StarletteResponse

from . import resources, store
from . import settings as config
from .errors import ApiError, RequestTimeout
from .messages import RedisCall, Request, Response
from .service import (
    SINGLE_FIELDS,
    body_limit,
    client_left,
    dispatch,
    error_response,
    internal_error,
    repeated_field,
    safe_response,
)
from .settings import Settings

# After a refusal that leaves the body unread, what the client still sends is read and thrown
# away for this long, up to this much (gunicorn's close_graceful), before the connection closes.
LINGER_SECONDS = 2.0
LINGER_BYTES = 64 * 1024

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class _ClientGone(Exception):
    """The client closed the connection before its body arrived."""


@functools.cache
def _redis() -> store.AsyncCommands:
    # Made on the first request, inside the worker's event loop (workers fork after import).
    return store.async_client(config.loaded())


async def handle(request: StarletteRequest) -> StarletteResponse:
    return _to_starlette(await respond(request.scope, request.receive, config.loaded(), _redis))


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """The whole HTTP surface as one ASGI application (lifespan events are acknowledged)."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["type"] != "http":
        return  # websockets are not served: the server closes the connection
    await serve(scope, receive, send, config.loaded(), _redis)


async def serve(
    scope: Scope,
    receive: Receive,
    send: Send,
    settings: Settings,
    redis_client: Callable[[], store.AsyncCommands],
) -> None:
    """Answers one HTTP request on the ASGI ``send`` channel."""
    response = await respond(scope, receive, settings, redis_client)
    start, body = safe_response(response, _asgi_messages)
    await send(start)
    await send(body)


async def respond(
    scope: Scope,
    receive: Receive,
    settings: Settings,
    redis_client: Callable[[], store.AsyncCommands],
) -> Response:
    """The answer to one request; never raises. Faults become a 500 and a log line."""
    try:
        method: str = scope["method"]
        headers = _headers(scope)
        limit = body_limit(method, headers, settings)
        try:
            body = await _read_body(receive, limit, settings) if limit else b""
        except TimeoutError:
            return error_response(
                RequestTimeout(f"the body did not arrive within {settings.body_timeout_seconds} s")
            )
        raw_path = resources.path_from_target(scope.get("raw_path") or scope["path"].encode())
        request = Request(method, raw_path, scope["query_string"], headers, body)
        outcome = dispatch(request, settings)
        if isinstance(outcome, RedisCall):
            outcome = await store.run_async(redis_client(), outcome)
        return outcome
    except _ClientGone:
        return client_left()
    except ApiError as error:
        return error_response(error)
    except Exception:
        return internal_error()


async def _read_body(receive: Receive, limit: int, settings: Settings) -> bytes:
    body = bytearray()
    waiting = receive()
    if isinstance(waiting, Coroutine):
        # Nearly always the whole body came with the head and receive() answers without waiting:
        # run it that far first, so that only a body still on its way costs a timer (the timer
        # was a fifth of a PUT's CPU).
        try:
            waiting.send(None)
        except StopIteration as ready:
            if _append(body, ready.value, limit):
                return await _past_the_limit(body, ready.value, receive)
        else:
            waiting.close()  # it stopped to wait, having taken nothing: wait again, timed
        waiting = receive()
    async with asyncio.timeout(settings.body_timeout_seconds):
        while not _append(body, message := await waiting, limit):
            waiting = receive()
    return await _past_the_limit(body, message, receive)


async def _past_the_limit(
    body: bytearray, last: MutableMapping[str, Any], receive: Receive
) -> bytes:
    """The body; one that stopped at the limit (it will be refused) is read on a little first,
    thrown away: a server that closes with the client's bytes unread resets the connection, and
    a client still sending loses the answer (func's own server does; serving lingers itself)."""
    if last.get("more_body", False):
        discarded = 0
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(LINGER_SECONDS):
                while discarded < LINGER_BYTES:
                    message = await receive()
                    discarded += len(message.get("body", b""))
                    if not message.get("more_body", False):
                        break
    return bytes(body)


def _append(body: bytearray, message: MutableMapping[str, Any], limit: int) -> bool:
    """Adds a message's bytes to the body; True once the body is whole or at the limit (the
    rest need not be read)."""
    if message["type"] == "http.disconnect":
        raise _ClientGone
    body += message.get("body", b"")
    return len(body) >= limit or not message.get("more_body", False)


_SINGLE_FIELDS = {name.lower(): name for name in SINGLE_FIELDS}


def _headers(scope: Scope) -> dict[str, str]:
    # A field sent on several lines is one value, joined with commas (RFC 9110 §5.3), as WSGI
    # servers join it: both modes read the same conditions, tokens and content types. A field of
    # one value sent twice is refused (behind functions-framework, serving refuses it first;
    # under func's own server, here).
    headers: dict[str, str] = {}
    for name, value in scope["headers"]:
        key, text = name.decode("latin-1").lower(), value.decode("latin-1")
        if key in headers:
            if key in _SINGLE_FIELDS:
                raise repeated_field(_SINGLE_FIELDS[key])
            text = f"{headers[key]},{text}"
        headers[key] = text
    return headers


Message = dict[str, Any]
_NO_BODY_STATUSES = (204, 304)


def _asgi_messages(response: Response) -> tuple[Message, Message]:
    """The response as its two ASGI messages, with the header fields Starlette would add."""
    fields = []
    if response.status not in _NO_BODY_STATUSES and response.status >= 200:
        fields.append((b"content-length", b"%d" % len(response.body)))
    if response.content_type is not None:
        fields.append((b"content-type", response.content_type.encode("latin-1")))
    for name, value in response.headers.items():
        fields.append((name.lower().encode("latin-1"), value.encode("latin-1")))
    start = {"type": "http.response.start", "status": response.status, "headers": fields}
    return start, {"type": "http.response.body", "body": response.body}


def _to_starlette(response: Response) -> StarletteResponse:
    # Building the framework's response is inside the error handling too (safe_response).
    return safe_response(response, _starlette_response)


def _starlette_response(response: Response) -> StarletteResponse:
    return StarletteResponse(
        response.body, response.status, response.headers, media_type=response.content_type
    )
