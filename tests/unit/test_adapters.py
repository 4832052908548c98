"""The two adapters in-process, on a real Redis: what they read of a body, what they answer.

``handle`` gets a Starlette request built from an ASGI scope and a ``receive`` that counts what
it hands over; ``handle_flask`` a Flask request built from a WSGI environ. The contract suite
runs the same adapters behind real servers.
"""

from __future__ import annotations

import io
import json
import logging
import math
from typing import Any

import flask
import pytest
import redis
from starlette.requests import Request as StarletteRequest
from werkzeug.test import EnvironBuilder

from function import asgi, wsgi
from function import settings as config
from function.settings import Settings
from tests.conftest import stored_document
from tests.support.local_redis import RedisServer

LIMIT = 1000  # MAX_BODY_BYTES of these tests


@pytest.fixture
def adapter_settings(server: RedisServer) -> Settings:
    """The settings of on_asgi and on_wsgi (tests/unit/conftest.py) in this module."""
    return Settings(redis_url=server.url, max_body_bytes=LIMIT, key_prefix="adapter:")


# --- handle (ASGI) ------------------------------------------------------------------------------


class Receive:
    """An ASGI ``receive`` handing over ``chunks`` body messages, counting how many were taken."""

    def __init__(self, chunks: list[bytes], *, endless: bool = False) -> None:
        self.chunks = chunks
        self.endless = endless
        self.taken = 0

    async def __call__(self) -> dict[str, Any]:
        if self.taken < len(self.chunks):
            chunk = self.chunks[self.taken]
            self.taken += 1
            more = self.endless or self.taken < len(self.chunks)
            return {"type": "http.request", "body": chunk, "more_body": more}
        return {"type": "http.disconnect"}


async def asgi_call(
    method: str,
    path: str,
    receive: Receive | None = None,
    headers: dict[str, str] | None = None,
    query: bytes = b"",
) -> tuple[int, dict[str, str], bytes]:
    scope = {
        "type": "http", "method": method, "path": path, "query_string": query,
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
    }  # fmt: skip
    response = await asgi.handle(StarletteRequest(scope, receive or Receive([b""])))
    return response.status_code, dict(response.headers), bytes(response.body)


@pytest.mark.asyncio
async def test_asgi_put_get_delete(on_asgi: None, direct: redis.Redis) -> None:
    headers = {"content-type": "application/json"}
    status, answer_headers, body = await asgi_call(
        "PUT", "/a", Receive([b'{"x":', b" 1}"]), headers, b"ttl=60"
    )
    assert (status, answer_headers["location"]) == (201, "/a")
    assert answer_headers["content-type"] == "application/json"
    assert answer_headers["content-length"] == str(len(body))
    assert json.loads(body)["ttl"] == 60
    assert stored_document(direct.get("adapter:r:/a"))[1]["x"] == 1
    status, _, body = await asgi_call("GET", "/a")
    assert (status, json.loads(body)["x"]) == (200, 1)
    status, answer_headers, body = await asgi_call("DELETE", "/a")
    assert (status, body) == (204, b"")
    assert "content-type" not in answer_headers
    status, _, body = await asgi_call("GET", "/", headers={"accept": "text/plain"})
    assert (status, body) == (200, b"Count is 1.")
    assert direct.get("adapter:count") == b"1"


@pytest.mark.asyncio
async def test_asgi_health_reads_no_body(on_asgi: None) -> None:
    receive = Receive([b"x"] * 5)
    status, answer_headers, body = await asgi_call("GET", "/health/readiness", receive)
    assert (status, body) == (200, b'{"status":"ok"}')
    assert receive.taken == 0
    assert answer_headers["content-type"] == "application/json"


@pytest.mark.asyncio
async def test_asgi_chunked_body_is_read_only_past_the_limit(on_asgi: None) -> None:
    """A body without a declared length is kept until it passes the limit, never to its end:
    then only asgi.LINGER_BYTES more are read, and thrown away, before the answer."""
    receive = Receive([b"x" * 7] * 20_000, endless=True)  # 7 * 143 == LIMIT + 1
    headers = {"content-type": "application/json"}
    status, _, body = await asgi_call("PUT", "/a", receive, headers)
    assert (status, json.loads(body)["error"]) == (413, "payload_too_large")
    assert receive.taken == 143 + math.ceil(asgi.LINGER_BYTES / 7)


@pytest.mark.asyncio
async def test_asgi_body_at_the_limit_is_read_whole(on_asgi: None, direct: redis.Redis) -> None:
    document = b'{"a":"' + b"x" * (LIMIT - 8) + b'"}'
    chunks = [document[i : i + 100] for i in range(0, LIMIT, 100)]
    headers = {"content-type": "application/json"}
    status, _, _ = await asgi_call("PUT", "/a", Receive(chunks), headers)
    assert status == 201


@pytest.mark.asyncio
async def test_asgi_declared_oversize_body_is_not_read(on_asgi: None) -> None:
    receive = Receive([b"x" * 100] * 20)
    headers = {"content-type": "application/json", "content-length": str(LIMIT + 1)}
    status, _, _ = await asgi_call("PUT", "/a", receive, headers)
    assert status == 413
    assert receive.taken == 0


@pytest.mark.asyncio
async def test_asgi_fault_answers_without_details(
    on_asgi: None, direct: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    direct.rpush("adapter:r:/list", "x")
    with caplog.at_level(logging.ERROR):
        _, _, body = await asgi_call("GET", "/list")
    assert set(json.loads(body)) == {"error", "message"}
    assert json.loads(body)["error"] == "internal"
    assert b"WRONGTYPE" not in body and b"Traceback" not in body
    assert "WRONGTYPE" in caplog.text


@pytest.mark.asyncio
async def test_asgi_unavailable_keeps_retry_after(
    on_asgi: None, monkeypatch: pytest.MonkeyPatch, server: RedisServer
) -> None:
    await asgi._redis().aclose()
    asgi._redis.cache_clear()
    monkeypatch.setattr(config, "loaded", lambda: Settings(redis_url="redis://127.0.0.1:1/0"))
    status, answer_headers, body = await asgi_call("GET", "/")
    assert (status, answer_headers["retry-after"]) == (503, "1")
    assert json.loads(body)["error"] == "redis_unavailable"


# --- handle_flask (WSGI) ------------------------------------------------------------------------


def wsgi_call(
    method: str,
    path: str,
    body: bytes | io.BytesIO = b"",
    headers: dict[str, str] | None = None,
    query: str = "",
) -> flask.Response:
    builder = EnvironBuilder(path=path, method=method, headers=headers, query_string=query)
    environ = builder.get_environ()
    if isinstance(body, io.BytesIO):  # a body of unknown length, as a chunked one arrives
        environ.pop("CONTENT_LENGTH", None)
        environ["wsgi.input_terminated"] = True
        environ["wsgi.input"] = body
    else:
        environ["CONTENT_LENGTH"] = str(len(body))
        environ["wsgi.input"] = io.BytesIO(body)
    return wsgi.handle_flask(flask.Request(environ))


def test_wsgi_put_get_delete(on_wsgi: None, direct: redis.Redis) -> None:
    headers = {"content-type": "application/json"}
    created = wsgi_call("PUT", "/a", b'{"x": 1}', headers, "ttl=60")
    assert (created.status_code, created.headers["location"]) == (201, "/a")
    assert created.headers["content-type"] == "application/json"
    assert json.loads(created.get_data())["ttl"] == 60
    assert stored_document(direct.get("adapter:r:/a"))[1]["x"] == 1
    read = wsgi_call("GET", "/a")
    assert (read.status_code, json.loads(read.get_data())["x"]) == (200, 1)
    deleted = wsgi_call("DELETE", "/a")
    assert (deleted.status_code, deleted.get_data()) == (204, b"")
    assert "content-type" not in deleted.headers
    counter = wsgi_call("GET", "/")
    assert (counter.get_data(), counter.headers["content-type"]) == (
        b"Count is 1.", "text/plain; charset=utf-8"
    )  # fmt: skip


def test_wsgi_body_of_unknown_length_is_read_only_past_the_limit(on_wsgi: None) -> None:
    stream = io.BytesIO(b'{"a":"' + b"x" * 100_000 + b'"}')
    response = wsgi_call("PUT", "/a", stream, {"content-type": "application/json"})
    assert response.status_code == 413
    assert stream.tell() == LIMIT + 1


def test_wsgi_health_reads_no_body(on_wsgi: None) -> None:
    stream = io.BytesIO(b"x" * 100)
    response = wsgi_call("GET", "/health/liveness", stream)
    assert (response.status_code, response.get_data()) == (200, b'{"status":"ok"}')
    assert stream.tell() == 0


def test_wsgi_fault_answers_without_details(
    on_wsgi: None, direct: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    direct.rpush("adapter:r:/list", "x")
    with caplog.at_level(logging.ERROR):
        response = wsgi_call("GET", "/list")
    body = response.get_data()
    assert json.loads(body)["error"] == "internal"
    assert set(json.loads(body)) == {"error", "message"}
    assert b"WRONGTYPE" not in body and b"Traceback" not in body
    assert "WRONGTYPE" in caplog.text


def test_wsgi_unavailable_keeps_retry_after(on_wsgi: None, monkeypatch: pytest.MonkeyPatch) -> None:
    wsgi._redis().close()
    wsgi._redis.cache_clear()
    monkeypatch.setattr(config, "loaded", lambda: Settings(redis_url="redis://127.0.0.1:1/0"))
    response = wsgi_call("GET", "/")
    assert (response.status_code, response.headers["retry-after"]) == (503, "1")


class Sent:
    """An ASGI ``send`` keeping every message."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    async def __call__(self, message: dict[str, Any]) -> None:
        self.messages.append(message)


@pytest.mark.asyncio
async def test_asgi_app_acknowledges_lifespan_events() -> None:
    events = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])

    async def receive() -> dict[str, Any]:
        return next(events)

    sent = Sent()
    await asgi.app({"type": "lifespan"}, receive, sent)
    assert sent.messages == [
        {"type": "lifespan.startup.complete"},
        {"type": "lifespan.shutdown.complete"},
    ]


@pytest.mark.asyncio
async def test_asgi_app_serves_http_and_ignores_websockets(
    on_asgi: None, direct: redis.Redis
) -> None:
    sent = Sent()
    scope = {
        "type": "http", "method": "PUT", "path": "/app", "raw_path": b"/app%2Fx?ignored",
        "query_string": b"ttl=30", "headers": [(b"content-type", b"application/json")],
    }  # fmt: skip
    await asgi.app(scope, Receive([b'{"v":1}']), sent)
    start, body = sent.messages
    assert (start["type"], start["status"]) == ("http.response.start", 201)
    assert (b"location", b"/app/x") in start["headers"]
    assert json.loads(body["body"])["ttl"] == 30
    assert stored_document(direct.get("adapter:r:/app/x"))[1]["v"] == 1

    websocket = Sent()
    await asgi.app({"type": "websocket", "path": "/"}, Receive([]), websocket)
    assert websocket.messages == []
    assert direct.get("adapter:count") is None  # nothing reached the counter
