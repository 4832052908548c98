"""How each adapter reads a body that is late, cut short or oddly framed, and which path it
answers for: ``asgi.app`` with a real scope, ``receive`` and ``send``; ``handle_flask`` with a
real WSGI environ. Redis is a real redis-server; what is stored is read back through the adapter.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
from typing import Any

import flask
import pytest
from werkzeug.test import EnvironBuilder

from function import asgi, service, wsgi
from function.settings import Settings
from tests.support.local_redis import RedisServer

LIMIT = 100  # MAX_BODY_BYTES of these tests
BODY_TIMEOUT = 0.05
LEFT = "the client left before sending its whole body; nothing was stored"  # logged at INFO


@pytest.fixture
def adapter_settings(server: RedisServer) -> Settings:
    """The settings of on_asgi and on_wsgi (tests/unit/conftest.py) in this module."""
    return Settings(
        redis_url=server.url, max_body_bytes=LIMIT, key_prefix="bodies:",
        head_timeout_seconds=0.25, body_timeout_seconds=BODY_TIMEOUT,
    )  # fmt: skip


# --- ASGI ---------------------------------------------------------------------------------------


class Receive:
    """Hands over ``messages`` one by one, each ``delay`` seconds after it is asked for, then
    waits forever (a client that sends no more). A call given up while it waits has taken
    nothing, as a server's ``receive`` that waits for the client."""

    def __init__(self, *messages: dict[str, Any], delay: float = 0.0) -> None:
        self.messages = list(messages)
        self.delay = delay
        self.taken = 0
        self.asked = 0  # calls, the one left waiting included

    async def __call__(self) -> dict[str, Any]:
        self.asked += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.taken < len(self.messages):
            self.taken += 1
            return self.messages[self.taken - 1]
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


async def _asgi(
    method: str, path: str, receive: Receive | None = None, **scope: Any
) -> tuple[int, dict[bytes, bytes], bytes]:
    full = {
        "type": "http", "method": method, "path": path, "query_string": b"",
        "headers": [(b"content-type", b"application/json")], **scope,
    }  # fmt: skip
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await asgi.app(full, receive or Receive(), send)
    start, *rest = sent
    return start["status"], dict(start["headers"]), b"".join(m.get("body", b"") for m in rest)


def _body(data: bytes, **more: Any) -> dict[str, Any]:
    return {"type": "http.request", "body": data, **more}


@pytest.mark.asyncio
async def test_asgi_body_that_stops_coming_is_a_408(on_asgi: None) -> None:
    receive = Receive(_body(b'{"a"', more_body=True))
    status, headers, body = await asyncio.wait_for(_asgi("PUT", "/late", receive), 5)
    assert (status, headers[b"content-type"]) == (408, b"application/json")
    assert json.loads(body) == {
        "error": "request_timeout",
        "message": f"the body did not arrive within {BODY_TIMEOUT} s",
    }
    assert (await _asgi("GET", "/late"))[0] == 404


@pytest.mark.asyncio
async def test_asgi_body_that_comes_after_the_head_is_read_once_and_stored(on_asgi: None) -> None:
    receive = Receive(_body(b'{"late": true}'), delay=BODY_TIMEOUT / 5)
    status, _, _ = await _asgi("PUT", "/after", receive)
    assert status == 201
    assert json.loads((await _asgi("GET", "/after"))[2])["late"] is True


@pytest.mark.asyncio
async def test_asgi_body_that_comes_too_late_in_one_piece_is_a_408(on_asgi: None) -> None:
    receive = Receive(_body(b'{"late": true}'), delay=BODY_TIMEOUT * 20)
    status, _, _ = await asyncio.wait_for(_asgi("PUT", "/too-late", receive), 5)
    assert status == 408
    assert (await _asgi("GET", "/too-late"))[0] == 404


@pytest.mark.asyncio
async def test_asgi_client_that_leaves_gets_a_400_and_nothing_is_stored(
    on_asgi: None, caplog: pytest.LogCaptureFixture
) -> None:
    # The same answer as Flask mode's: a client that only half-closed still reads it.
    receive = Receive(_body(b'{"a":', more_body=True), {"type": "http.disconnect"})
    with caplog.at_level(logging.INFO, logger="function.service"):
        status, _, body = await _asgi("PUT", "/gone", receive)
    assert status == 400
    assert json.loads(body) == {"error": "bad_request", "message": service.BODY_CUT_SHORT}
    assert caplog.messages == [LEFT]
    assert (await _asgi("GET", "/gone"))[0] == 404


@pytest.mark.asyncio
async def test_asgi_messages_without_optional_keys(on_asgi: None) -> None:
    """``body`` and ``more_body`` may be left out of a message (ASGI: b"" and False)."""
    receive = Receive(
        _body(b'{"a":', more_body=True), {"type": "http.request", "more_body": True}, _body(b" 1}")
    )
    status, _, _ = await _asgi("PUT", "/keys", receive)
    assert (status, receive.asked) == (201, 3)  # no more_body is the last message: none asked for
    assert json.loads((await _asgi("GET", "/keys"))[2])["a"] == 1
    status, _, _ = await _asgi("PUT", "/more", Receive({"type": "http.request", "body": b"{}"}))
    assert status == 201


@pytest.mark.asyncio
async def test_asgi_reads_a_body_of_exactly_the_limit_and_stops(on_asgi: None) -> None:
    document = b'{"a":"' + b"x" * (LIMIT - 8) + b'"}'
    receive = Receive(_body(document, more_body=True), _body(b"never read", more_body=True))
    status, _, _ = await _asgi("PUT", "/full", receive)
    assert receive.taken == 2  # the limit is no sign of the end: one more message is needed
    assert status == 413
    status, _, _ = await _asgi("PUT", "/full", Receive(_body(document)))
    assert status == 201


@pytest.mark.asyncio
async def test_asgi_answers_for_the_raw_path_else_the_decoded_one(on_asgi: None) -> None:
    receive = Receive(_body(b'{"v": 1}'))
    status, headers, _ = await _asgi("PUT", "/a/b", receive, raw_path=b"/a%2Fb")
    assert (status, headers[b"location"]) == (201, b"/a/b")
    status, _, body = await _asgi("GET", "/a/b", raw_path=None)
    assert (status, json.loads(body)["v"]) == (200, 1)


@pytest.mark.asyncio
async def test_asgi_lifespan_answers_each_startup_until_shutdown() -> None:
    events = iter([{"type": "lifespan.startup"}, {"type": "lifespan.startup"},
                   {"type": "lifespan.shutdown"}])  # fmt: skip
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return next(events)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await asgi.app({"type": "lifespan"}, receive, send)
    assert [message["type"] for message in sent] == [
        "lifespan.startup.complete", "lifespan.startup.complete", "lifespan.shutdown.complete",
    ]  # fmt: skip


# --- WSGI ---------------------------------------------------------------------------------------


class Failing(io.RawIOBase):
    """gunicorn's body reader when its socket fails: it raises the socket's error."""

    def __init__(self, error: OSError) -> None:
        self.error = error

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        raise self.error


# gunicorn hands the application its own body reader, marked as ending by itself.
GUNICORN = {"wsgi.input_terminated": True}


def _wsgi(
    method: str, path: str, body: bytes = b"", stream: Any = None, **environ: Any
) -> tuple[flask.Response, flask.Request]:
    builder = EnvironBuilder(
        path=path, method=method, data=body, headers={"content-type": "application/json"}
    )
    full = builder.get_environ()
    if stream is not None:
        full["wsgi.input"] = stream
    full.update(environ)
    for key in [key for key, value in environ.items() if value is None]:
        del full[key]
    request = flask.Request(full)
    return wsgi.handle_flask(request), request


def test_wsgi_body_that_times_out_is_a_408_for_head_and_body_together(on_wsgi: None) -> None:
    response, request = _wsgi(
        "PUT", "/late", b"{}", stream=Failing(TimeoutError("timed out")), **GUNICORN
    )
    assert (response.status_code, response.content_type) == (408, "application/json")
    assert response.json == {
        "error": "request_timeout",
        "message": f"the request did not arrive within {0.25 + BODY_TIMEOUT} s",
    }
    assert request.get_data() == b""  # the framework's drain after the answer reads nothing
    assert _wsgi("GET", "/late")[0].status_code == 404


@pytest.mark.parametrize(
    "framing",
    [
        {"wsgi.input": io.BytesIO(b""), "CONTENT_LENGTH": "10"},  # werkzeug: ClientDisconnected
        {"wsgi.input": Failing(ConnectionResetError()), **GUNICORN},
        # gunicorn ends the stream where a client that closed its side stopped sending.
        {"wsgi.input": io.BytesIO(b'{"a":'), "CONTENT_LENGTH": "10", **GUNICORN},
    ],
    ids=["werkzeug", "gunicorn", "gunicorn-short"],
)
def test_wsgi_client_that_leaves_gets_a_400_and_nothing_is_stored(
    on_wsgi: None, caplog: pytest.LogCaptureFixture, framing: dict[str, Any]
) -> None:
    with caplog.at_level(logging.INFO, logger="function.service"):
        response, request = _wsgi("PUT", "/gone", b"{}", **framing)
    # A client that closed only its sending side reads the answer: the contract's JSON.
    assert (response.status_code, response.json) == (
        400,
        {"error": "bad_request", "message": service.BODY_CUT_SHORT},
    )
    assert response.headers["connection"] == "close"
    assert request.get_data() == b""
    assert caplog.messages == [LEFT]
    assert _wsgi("GET", "/gone")[0].status_code == 404


@pytest.mark.parametrize("key", ["RAW_URI", "REQUEST_URI"])
def test_wsgi_answers_for_the_target_as_sent(on_wsgi: None, key: str) -> None:
    only = {"RAW_URI": None, "REQUEST_URI": None}  # werkzeug's test environ sets both
    response, _ = _wsgi("PUT", "/a/b", b'{"v": 1}', **{**only, key: "/a%2Fb?ttl=60"})
    assert (response.status_code, response.headers["location"]) == (201, "/a/b")
    response, _ = _wsgi("GET", "/other", **{**only, key: "/a/b/"})
    assert response.json["v"] == 1


def test_wsgi_without_the_target_answers_for_the_decoded_path(on_wsgi: None) -> None:
    neither = {"RAW_URI": None, "REQUEST_URI": None}
    response, _ = _wsgi("PUT", "/a b/ü", b'{"v": 2}', **neither)
    assert response.headers["location"] == "/a%20b/%C3%BC"
    response, _ = _wsgi("GET", "/a b/ü", **neither)
    assert (response.status_code, response.json["v"]) == (200, 2)


def test_wsgi_fault_while_reading_is_a_500(on_wsgi: None, monkeypatch: pytest.MonkeyPatch) -> None:
    response, _ = _wsgi("PUT", "/x", b"{}", stream=io.StringIO("{}"))  # str, not bytes
    assert (response.status_code, response.json["error"]) == (500, "internal")


@pytest.mark.asyncio
@pytest.mark.parametrize("name", ["Content-Type", "Host", "Authorization"])
async def test_asgi_refuses_a_one_value_field_sent_twice(on_asgi: None, name: str) -> None:
    """Under func's own server nothing in front refuses it: the adapter does, as serving does
    in front of functions-framework. Other fields sent twice are joined."""
    field = name.lower().encode()
    headers = [(b"content-type", b"application/json"), (field, b"a"), (field, b"b")]
    if name == "Content-Type":
        headers = headers[1:]
    status, _, body = await _asgi("PUT", "/twice", Receive(_body(b"{}")), headers=headers)
    assert status == 400
    assert json.loads(body)["message"] == f"the {name} header field must be sent once"
    assert (await _asgi("GET", "/twice"))[0] == 404
    joined = [(b"content-type", b"application/json"), (b"x-note", b"a"), (b"x-note", b"b")]
    assert (await _asgi("PUT", "/twice", Receive(_body(b"{}")), headers=joined))[0] == 201
    # Both lines count: with the first alone, plain text would be the answer.
    accept = [(b"accept", b"text/plain;q=0.5"), (b"accept", b"application/json")]
    _, answer_headers, _ = await _asgi("GET", "/", headers=accept)
    assert answer_headers[b"content-type"] == b"application/json"


@pytest.mark.asyncio
async def test_asgi_reads_a_little_past_a_refused_body_so_the_close_loses_no_answer(
    on_asgi: None,
) -> None:
    # A body 20 bytes over the limit: the rest is read (and thrown away) before the 413, so a
    # server that closes afterwards finds nothing unread to reset the connection with.
    receive = Receive(
        _body(b"x" * 60, more_body=True), _body(b"x" * 60, more_body=True), _body(b"x" * 10)
    )
    assert (await _asgi("PUT", "/over", receive))[0] == 413
    assert receive.taken == receive.asked == 3  # the last message says it is the last
    # A body that goes on: read on only so far (asgi.LINGER_BYTES), then answered all the same.
    kib = _body(b"x" * 1024, more_body=True)
    endless = Receive(*[kib] * 200)
    assert (await asyncio.wait_for(_asgi("PUT", "/endless", endless), 5))[0] == 413
    assert endless.taken == 1 + asgi.LINGER_BYTES // 1024
    # Exactly that many bytes past the limit, however the messages split them.
    more = [_body(b"x" * (asgi.LINGER_BYTES - 1), more_body=True), _body(b"x", more_body=True)]
    exact = Receive(_body(b"x" * (LIMIT + 1), more_body=True), *more, _body(b"x", more_body=True))
    assert (await _asgi("PUT", "/exact", exact))[0] == 413
    assert exact.taken == 3
