"""How functions-framework serves this function: all of its HTTP surface, with HTTP limits.

functions-framework 3.10 (pinned in requirements.txt; ``install`` refuses any other release,
whose internals may differ) puts a Starlette router in front of an ASGI
function, which answers some methods and paths itself in plain text, and runs gunicorn with no
limit on the request line and none on the request head in ASGI mode. It imports the function's
source file before it builds its server, so ``main`` imports this module, which then has the
framework:

- serve ``function.asgi.app`` (every method, every path) when the target is ``handle``, and
  let ``handle_flask`` answer /robots.txt and /favicon.ico too, which Flask mode keeps for itself;
- run gunicorn and uvicorn with the limits below, in line with common servers (nginx, Node.js,
  gunicorn's own defaults): a request head over ``MAX_HEAD_BYTES`` or with more than
  ``MAX_HEADERS`` fields is answered 431 and the connection closed; a head not received within
  ``HEAD_TIMEOUT_SECONDS`` (a setting) closes the connection; an idle keep-alive connection is
  closed after ``KEEPALIVE_SECONDS``. The body has its own bound, ``BODY_TIMEOUT_SECONDS``.
  In Flask mode a worker thread reads a request's head and body against one deadline, the sum
  of the two settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import json
import socket
import time
from typing import Any, ClassVar

import functions_framework
import functions_framework.aio
from functions_framework._http import gunicorn as framework_gunicorn
from gunicorn.http.errors import LimitRequestHeaders, LimitRequestLine, ParseException
from gunicorn.workers.gthread import ThreadWorker
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn_worker import UvicornWorker
from werkzeug.exceptions import HTTPException

from . import asgi, logs, wsgi
from . import settings as config

MAX_HEAD_BYTES = 32 * 1024  # nginx: large_client_header_buffers 4 8k
MAX_HEADERS = 100  # gunicorn: limit_request_fields
MAX_REQUEST_LINE = 8190  # gunicorn's limit_request_field_size; nginx: 8k
KEEPALIVE_SECONDS = 5  # uvicorn's and Node.js's default
# The functions-framework release whose internals this module replaces, as requirements.txt pins
# it: another release may have moved or changed them.
FRAMEWORK_VERSION = "3.10.2"


class FrameworkMismatch(RuntimeError):
    """The installed functions-framework is not the release this module was written against."""


def check_framework(installed: str) -> None:
    if installed != FRAMEWORK_VERSION:
        raise FrameworkMismatch(
            f"function/serving.py replaces internals of functions-framework {FRAMEWORK_VERSION}, "
            f"and {installed} is installed: check them against that release, then update "
            "FRAMEWORK_VERSION"
        )


def _json_answer(status: int, reason: str, code: str, message: str) -> bytes:
    """A whole HTTP/1.1 answer in the contract's JSON, after which the connection closes."""
    body = json.dumps({"error": code, "message": message}).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


# The servers' own refusals: status, reason, error code, message.
_HEAD_TOO_LARGE = (
    431,
    "Request Header Fields Too Large",
    "headers_too_large",
    f"the request head is limited to {MAX_HEAD_BYTES} bytes and {MAX_HEADERS} fields",
)
_LINE_TOO_LONG = (
    414,
    "URI Too Long",
    "uri_too_long",
    f"the request line is limited to {MAX_REQUEST_LINE} bytes",
)
_FIELD_TOO_LONG = (
    431,
    "Request Header Fields Too Large",
    "headers_too_large",
    f"a header field is limited to {MAX_REQUEST_LINE} bytes",
)
_NOT_HTTP = (400, "Bad Request", "bad_request", "the request is not valid HTTP/1.1")
_Refusal = tuple[int, str, str, str]


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a bounded request head: its size, its number of fields
    and the time it takes to arrive. httptools itself buffers a head without limit."""

    # Per connection; each request's head starts its own count (on_message_begin).
    _head_bytes = 0
    _parsed_bytes = 0  # of the head in progress, from the parser: its target and fields
    _header_count = 0
    _in_head = True  # blank lines before a first request count as head too
    _head_timer: asyncio.TimerHandle | None = None
    # A refusal of bytes that came after a request still being answered: sent after its answer,
    # so that a write Redis accepted is never answered only by a 400.
    _deferred: _Refusal | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_head_timer()

    def data_received(self, data: bytes) -> None:
        # After a refusal the transport is closing: asyncio delivers no more data, and each
        # later refusal in this chunk finds it closing and sends nothing (_refuse).
        super().data_received(data)
        if self._in_head:
            self._head_bytes += len(data)  # this chunk did not finish the head: all of it is head
            if self._head_bytes > MAX_HEAD_BYTES:
                self._refuse(_HEAD_TOO_LARGE)

    def on_message_begin(self) -> None:
        # Each request's head has its own allowance and, after a kept-alive wait, its own timer.
        self._in_head, self._head_bytes, self._header_count = True, 0, 0
        self._parsed_bytes = 0
        if self._head_timer is None:
            self._start_head_timer()
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        # The parser's own count: a head completed by the chunk that holds it is bounded too.
        self._parsed_bytes += len(url)
        if self._parsed_bytes > MAX_REQUEST_LINE:
            self._refuse(_LINE_TOO_LONG)
            raise ValueError  # stops the parser; answered already
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        self._parsed_bytes += len(name) + len(value) + 4  # ": " and CRLF
        if len(name) + len(value) + 2 > MAX_REQUEST_LINE:
            self._refuse(_FIELD_TOO_LONG)
            raise ValueError
        if self._header_count > MAX_HEADERS or self._parsed_bytes > MAX_HEAD_BYTES:
            self._refuse(_HEAD_TOO_LARGE)
            raise ValueError
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._cancel_head_timer()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def send_400_response(self, msg: str) -> None:
        # uvicorn's answer to a request it cannot parse, in the contract's JSON; none after a 431.
        self._refuse(_NOT_HTTP)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._deferred is not None and not self._answering():
            self._refuse(self._deferred)

    def _answering(self) -> bool:
        cycle = self.cycle
        return bool(self.pipeline) or (cycle is not None and not cycle.response_complete)

    def _refuse(self, refusal: _Refusal) -> None:
        self._cancel_head_timer()
        if self._answering():
            # Bytes after a request being answered (a short Content-Length, garbage after the
            # body): its answer goes first, then this one, then the connection closes.
            self._deferred = self._deferred or refusal
            self.transport.pause_reading()
            return
        if not self.transport.is_closing():
            self.transport.write(_json_answer(*refusal))
            self.transport.close()

    def _start_head_timer(self) -> None:
        self._head_timer = self.loop.call_later(
            config.loaded().head_timeout_seconds, self._head_timed_out
        )

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.cycle is not None and not self.cycle.response_complete:
            # A pipelined head waits behind the answer in progress, which must not be cut off.
            self._start_head_timer()
            return
        self.transport.close()  # no answer: the client may not even be speaking HTTP


class BoundedUvicornWorker(UvicornWorker):
    CONFIG_KWARGS: ClassVar[dict[str, Any]] = {"loop": "auto", "http": BoundedHttpToolsProtocol}


class _DeadlineSocket:
    """A socket whose blocking reads for one request share a deadline: a client that sends its
    head or body a byte at a time cannot hold a worker thread longer than that."""

    _deadline = 0.0  # set by setblocking, which gunicorn calls before it reads a request

    def __init__(self, sock: socket.socket, seconds: float) -> None:
        self._sock, self._seconds = sock, seconds

    def setblocking(self, flag: bool) -> None:
        # gunicorn makes the socket blocking each time a thread takes up the connection.
        self._deadline = time.monotonic() + self._seconds
        self._sock.setblocking(flag)

    def recv(self, size: int) -> bytes:  # gunicorn's HTTP/1.1 reader passes no flags
        self._sock.settimeout(max(self._deadline - time.monotonic(), 0.001))
        try:
            return self._sock.recv(size)
        finally:
            self._sock.settimeout(None)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class BoundedThreadWorker(ThreadWorker):
    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        # gunicorn answers requests it cannot parse with an HTML page; the contract says JSON.
        if not isinstance(exc, ParseException):
            return super().handle_error(req, client, addr, exc)  # type: ignore[no-any-return]
        if isinstance(exc, LimitRequestHeaders):
            answer = _HEAD_TOO_LARGE
        elif isinstance(exc, LimitRequestLine):
            answer = _LINE_TOO_LONG
        else:
            answer = _NOT_HTTP
        with contextlib.suppress(OSError):
            client.sendall(_json_answer(*answer))
        return None

    def handle_request(self, req: Any, conn: Any) -> Any:
        # gunicorn bounds each field and their number, not the head as a whole: the same limit
        # as in ASGI mode, refused (431, then the connection closes) before the function runs.
        size = len(req.uri) + sum(len(name) + len(value) + 4 for name, value in req.headers)
        if size > MAX_HEAD_BYTES:
            raise LimitRequestHeaders("the request head is over the limit")
        return super().handle_request(req, conn)

    def enqueue_req(self, conn: Any) -> None:
        if not isinstance(conn.sock, _DeadlineSocket):
            settings = config.loaded()
            seconds = settings.head_timeout_seconds + settings.body_timeout_seconds
            conn.sock = _DeadlineSocket(conn.sock, seconds)
        super().enqueue_req(conn)


_LIMITS = {
    "limit_request_line": MAX_REQUEST_LINE,
    "limit_request_fields": MAX_HEADERS,
    "limit_request_field_size": MAX_REQUEST_LINE,
    "keepalive": KEEPALIVE_SECONDS,
}


def _bound(cfg: Any, worker_class: str) -> None:
    log_config = logs.dict_config(config.loaded().log_format)
    for key, value in {
        **_LIMITS,
        "logconfig_dict": log_config,
        "worker_class": worker_class,
    }.items():
        cfg.set(key, value)


class UvicornApplication(framework_gunicorn.UvicornApplication):
    def load_config(self) -> None:
        super().load_config()
        _bound(self.cfg, BOUNDED_UVICORN_WORKER)


class GunicornApplication(framework_gunicorn.GunicornApplication):
    def load_config(self) -> None:
        super().load_config()
        _bound(self.cfg, BOUNDED_THREAD_WORKER)


BOUNDED_UVICORN_WORKER = f"{__name__}.BoundedUvicornWorker"
BOUNDED_THREAD_WORKER = f"{__name__}.BoundedThreadWorker"

_build_asgi_app = functions_framework.aio._create_asgi_app_with_function


def _asgi_app(function: Any, signature_type: str, enable_id_logging: bool) -> Any:
    if function is asgi.handle:
        return asgi.app
    return _build_asgi_app(function, signature_type, enable_id_logging)


_configure_flask_app = functions_framework._configure_app


def _flask_app(app: Any, function: Any, signature_type: str) -> None:
    _configure_flask_app(app, function, signature_type)
    if function is wsgi.handle_flask:
        # /robots.txt and /favicon.ico reach the function too, which answers them in JSON.
        run = app.view_functions["run"]
        app.view_functions["error"] = lambda: run(path="")
        # Flask's own refusals (a path its router does not match, such as /a%0Ab; a Host its
        # URL adapter refuses; `PUT *`; the 308 for repeated slashes) would be HTML: the function
        # answers every request itself, from the request target as sent.
        app.register_error_handler(HTTPException, lambda error: run(path=""))
        # The framework reads every body whole after the answer (read_request): a body declared
        # at 300 MB was held in memory, one that never ends held a thread until the deadline.
        # The function reads what it needs and closes the connection on a body left unread.
        hooks = app.after_request_funcs.get(None, [])
        hooks[:] = [hook for hook in hooks if hook is not functions_framework.read_request]
        app.wsgi_app = _closing_when_told(app.wsgi_app)


def _closing_when_told(wsgi_app: Any) -> Any:
    """gunicorn drops an application's ``Connection`` header and keeps the connection open: an
    answer that says ``Connection: close`` closes it."""

    def closing(environ: Any, start_response: Any) -> Any:
        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            if any(n.lower() == "connection" and v.lower() == "close" for n, v in headers):
                response = getattr(start_response, "__self__", None)  # gunicorn's Response
                if response is not None and hasattr(response, "force_close"):
                    response.force_close()
            return start_response(status, headers, exc_info)

        return wsgi_app(environ, start)

    return closing


def install() -> None:
    """Have functions-framework serve this function as described above (idempotent)."""
    check_framework(importlib.metadata.version("functions-framework"))
    functions_framework.aio._create_asgi_app_with_function = _asgi_app
    functions_framework._configure_app = _flask_app
    framework_gunicorn.UvicornApplication = UvicornApplication  # type: ignore[misc]
    framework_gunicorn.GunicornApplication = GunicornApplication  # type: ignore[misc]
