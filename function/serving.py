"""How functions-framework serves this function: all of its HTTP surface, with HTTP limits.

functions-framework 3.10 (pinned in requirements.txt, as are the servers below it; ``install``
refuses any other release of them, whose internals may differ) puts a Starlette router in front
of an ASGI function, which answers some methods and paths itself in plain text, and runs
gunicorn with no limit on the request line and none on the request head in ASGI mode. It imports
the function's source file before it builds its server, so ``main`` imports this module, which
then has the framework:

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
import functools
import importlib.metadata
import json
import selectors
import socket
import time
from collections.abc import Mapping
from typing import Any, ClassVar

import functions_framework
import functions_framework.aio
from functions_framework._http import gunicorn as framework_gunicorn
from gunicorn.http.errors import (
    InvalidHeader,
    LimitRequestHeaders,
    LimitRequestLine,
    ParseException,
)
from gunicorn.workers import gthread
from gunicorn.workers.gthread import ThreadWorker
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn_worker import UvicornWorker
from werkzeug.exceptions import HTTPException

from . import asgi, logs, service, wsgi
from . import settings as config

# Counted as the request target plus, per header field, its name, its value and 4 bytes (": "
# and the line end), in both modes: the method, the version, optional whitespace and the blank
# line are not, and ASGI mode allows them this much more before a head is whole.
MAX_HEAD_BYTES = 32 * 1024  # nginx: large_client_header_buffers 4 8k
UNCOUNTED_HEAD_BYTES = 1024
MAX_HEADERS = 100  # gunicorn: limit_request_fields
MAX_REQUEST_LINE = 8190  # gunicorn's limit_request_field_size; nginx: 8k
KEEPALIVE_SECONDS = 5  # uvicorn's and Node.js's default
# After an answer that closes the connection, what the client still sends is read and thrown
# away (asgi's LINGER_*): closing with unread bytes resets the connection, and a client still
# sending may lose the answer.
LINGER_SECONDS, LINGER_BYTES = asgi.LINGER_SECONDS, asgi.LINGER_BYTES
# The releases whose internals this module replaces or subclasses, as requirements.txt pins them:
# functions-framework's app builders and gunicorn applications, gunicorn's threaded worker and
# parser errors, uvicorn's httptools protocol and uvicorn-worker's worker. Another release of any
# may have moved or changed them.
REPLACED_RELEASES = {
    "functions-framework": "3.10.2",
    "gunicorn": "27.0.1",
    "uvicorn": "0.54.0",
    "uvicorn-worker": "0.4.0",
}


class FrameworkMismatch(RuntimeError):
    """An installed release is not the one this module was written against."""


def check_releases(installed: Mapping[str, str]) -> None:
    """Refuses ``installed`` (distribution name -> version) unless it holds the releases above."""
    wrong = [
        f"function/serving.py replaces internals of {name} {release}, and {installed[name]} is "
        "installed: check them against that release, then update REPLACED_RELEASES"
        for name, release in REPLACED_RELEASES.items()
        if installed[name] != release
    ]
    if wrong:
        raise FrameworkMismatch("; ".join(wrong))


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
_BODY_CUT_SHORT = (400, "Bad Request", "bad_request", service.BODY_CUT_SHORT)
_Refusal = tuple[int, str, str, str]
# A repeated one-value field is refused here, before the function sees the request.
_SINGLE_FIELD_BYTES = {name.lower().encode(): name for name in service.SINGLE_FIELDS}
_SINGLE_UPPER = {name.upper(): name for name in service.SINGLE_FIELDS}
_BODY_FIELDS = frozenset({b"content-length", b"transfer-encoding"})


def _repeated(name: str) -> _Refusal:
    return (400, "Bad Request", "bad_request", service.repeated_field(name).message)


class RepeatedField(ParseException):
    """gunicorn's kind of error, so that its worker answers it as it answers a bad head."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a bounded request head: its size, its number of fields
    and the time it takes to arrive. httptools itself buffers a head without limit."""

    # Per connection; each request's head starts its own count (on_message_begin).
    _head_bytes = 0
    _parsed_bytes = 0  # of the head in progress, from the parser: its target and fields
    _header_count = 0
    _single_fields_seen: set[bytes]  # of the head in progress, set by on_message_begin
    _in_head = True  # blank lines before a first request count as head too
    _head_timer: asyncio.TimerHandle | None = None
    # A refusal of bytes that came after a request still being answered: sent after its answer,
    # so that a write Redis accepted is never answered only by a 400.
    _deferred: _Refusal | None = None
    _drained: int | None = None  # bytes thrown away after an answer that closes the connection
    _has_body = False  # the request in progress declared one (Content-Length, Transfer-Encoding)
    _linger_after_answer = False  # its answer said Connection: close, its body not all read

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_head_timer()

    def data_received(self, data: bytes) -> None:
        if self._drained is not None:
            self._drained += len(data)
            if self._drained >= LINGER_BYTES:
                self.transport.close()
            return
        # After a refusal the transport is closing: asyncio delivers no more data, and each
        # later refusal in this chunk finds it closing and sends nothing (_refuse).
        super().data_received(data)
        if self._in_head:
            # This chunk did not finish the head: all of it is head. The limit itself is on what
            # the parser counts (on_url, on_header), wherever the reads end; this bounds a head
            # whose fields never end, with room for the bytes the count leaves out.
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES + UNCOUNTED_HEAD_BYTES:
                self._refuse(_HEAD_TOO_LARGE)

    def on_message_begin(self) -> None:
        # Each request's head has its own allowance and, after a kept-alive wait, its own timer.
        self._in_head, self._head_bytes, self._header_count = True, 0, 0
        self._parsed_bytes = 0
        self._single_fields_seen, self._has_body = set(), False
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
        key = name.lower()
        if key in _BODY_FIELDS:
            self._has_body = True
        if key in _SINGLE_FIELD_BYTES:
            if key in self._single_fields_seen:
                self._refuse(_repeated(_SINGLE_FIELD_BYTES[key]))
                raise ValueError
            self._single_fields_seen.add(key)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._cancel_head_timer()
        super().on_headers_complete()
        if self._has_body and self.cycle is not None:
            # Its task has not started yet: the application will send through this.
            self.cycle.send = self._closing_if_body_unread(self.cycle)  # type: ignore[method-assign]

    def _closing_if_body_unread(self, cycle: Any) -> Any:
        """The cycle's ``send``, saying ``Connection: close`` on an answer that comes before the
        body is whole (413, or a body the request takes none of): uvicorn would read the rest,
        however long, only to throw it away. The close itself follows the answer (linger)."""
        send = cycle.send

        async def closing_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start" and cycle.more_body:
                headers = [*message.get("headers", ()), (b"connection", b"close")]
                await send({**message, "headers": headers})
                cycle.keep_alive = True  # else uvicorn closes at once, before on_response_complete
                self._linger_after_answer = True
                return
            await send(message)

        return closing_send

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def eof_received(self) -> None:
        # The client ended its side with a body not yet whole: nothing can complete it, so the
        # request is refused now (our JSON; a half-closed client still reads), not at the timeout.
        cycle = self.cycle
        if cycle is not None and cycle.more_body and not cycle.response_started:
            self._refuse(_BODY_CUT_SHORT, answering=False)
            return
        super().eof_received()

    def send_400_response(self, msg: str) -> None:
        # uvicorn's answer to a request it cannot parse, in the contract's JSON; none after a 431.
        self._refuse(_NOT_HTTP)

    def on_response_complete(self) -> None:
        if self._linger_after_answer and not self.transport.is_closing():
            self._close_after_answer()
        super().on_response_complete()
        if self._deferred is not None and not self._answering():
            self._refuse(self._deferred)

    def _answering(self) -> bool:
        # The cycle is that of the last request parsed: one waiting in the pipeline is not done.
        cycle = self.cycle
        return cycle is not None and not cycle.response_complete

    def _refuse(self, refusal: _Refusal, *, answering: bool = True) -> None:
        """Answer ``refusal`` and close; after the answer in progress, if any (``answering``)."""
        self._cancel_head_timer()
        if answering and self._answering():
            # Bytes after a request being answered (a short Content-Length, garbage after the
            # body): its answer goes first, then this one, then the connection closes.
            self._deferred = self._deferred or refusal
            self.transport.pause_reading()
            return
        if not self.transport.is_closing():
            self.transport.write(_json_answer(*refusal))
            self.transport.close()

    def _close_after_answer(self) -> None:
        """Close as gunicorn's close_graceful does: the answer, then the FIN, then what the
        client still sends is thrown away for a while. Closing with unread bytes would reset the
        connection, and the answer with it."""
        self._drained = 0
        self.transport.write_eof()
        self.loop.call_later(LINGER_SECONDS, self.transport.close)

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
    """gunicorn's threaded worker, in which no client holds up the others while a thread is free.

    gunicorn's main thread accepts connections and runs the poller; it also drained each closing
    connection (up to 2 s, and up to the request deadline once reads went through
    ``_DeadlineSocket``), and a worker thread waited up to 5 s for a new connection's first
    bytes. Here a closing connection is drained by the poller and a connection that has sent
    nothing yet waits on the poller, holding no thread.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Connections half-closed after their answer: when to let go, and bytes drained so far.
        self._lingering: dict[socket.socket, tuple[float, int]] = {}

    def handle(self, conn: Any) -> Any:
        if not conn.initialized and not conn.data_ready and not conn.wait_for_data(0):
            return gthread._DEFER  # to the poller, which hands it back once bytes arrive
        return super().handle(conn)

    def _close(self, conn: Any, graceful: bool = False) -> None:
        """``TConn.close`` that never blocks the main thread: a graceful close sends the FIN
        and leaves the draining to the poller."""
        sock = conn.sock._sock if isinstance(conn.sock, _DeadlineSocket) else conn.sock
        if graceful:
            try:
                sock.shutdown(socket.SHUT_WR)
                sock.setblocking(False)
                self.poller.register(sock, selectors.EVENT_READ, self._drain)
            except (OSError, ValueError, KeyError):
                pass  # the client is gone already
            else:
                self._lingering[sock] = (time.monotonic() + LINGER_SECONDS, 0)
                return
        sock.close()

    def _drain(self, sock: socket.socket) -> None:
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        until, drained = self._lingering[sock]
        drained += len(data)
        self._lingering[sock] = (until, drained)
        if not data or drained >= LINGER_BYTES:
            self._let_go(sock)

    def _let_go(self, sock: socket.socket) -> None:
        del self._lingering[sock]
        with contextlib.suppress(OSError, ValueError, KeyError):
            self.poller.unregister(sock)
        sock.close()

    def murder_keepalived(self, force: bool = False) -> None:
        # Called on each turn of the main loop, and with force=True as the worker stops.
        super().murder_keepalived(force)
        now = time.monotonic()
        for sock, (until, _) in list(self._lingering.items()):
            if force or until <= now:
                self._let_go(sock)

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        # gunicorn answers requests it cannot parse with an HTML page; the contract says JSON.
        if not isinstance(exc, ParseException):
            return super().handle_error(req, client, addr, exc)  # type: ignore[no-any-return]
        if isinstance(exc, RepeatedField):
            answer = _repeated(exc.name)
        elif isinstance(exc, InvalidHeader) and exc.req is not None and exc.hdr in _SINGLE_UPPER:
            answer = _repeated(_SINGLE_UPPER[exc.hdr])  # gunicorn's own refusal of a repeat
        elif isinstance(exc, LimitRequestHeaders):
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
        names = [name for name, _ in req.headers]  # upper case, as gunicorn keeps them
        for key, name in _SINGLE_UPPER.items():
            if names.count(key) > 1:
                raise RepeatedField(name)
        return super().handle_request(req, conn)

    def enqueue_req(self, conn: Any) -> None:
        if not isinstance(conn.sock, _DeadlineSocket):
            settings = config.loaded()
            seconds = settings.head_timeout_seconds + settings.body_timeout_seconds
            conn.sock = _DeadlineSocket(conn.sock, seconds)
            conn.close = functools.partial(self._close, conn)
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
    check_releases({name: importlib.metadata.version(name) for name in REPLACED_RELEASES})
    functions_framework.aio._create_asgi_app_with_function = _asgi_app
    functions_framework._configure_app = _flask_app
    framework_gunicorn.UvicornApplication = UvicornApplication  # type: ignore[misc]
    framework_gunicorn.GunicornApplication = GunicornApplication  # type: ignore[misc]
