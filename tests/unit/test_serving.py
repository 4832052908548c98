"""How functions-framework serves the function (function/serving.py), in-process on real sockets
(tests/unit/serving_harness.py). Redis is a real redis-server."""

from __future__ import annotations

import asyncio
import json
import select
import threading
from pathlib import Path
from typing import Any

import flask
import functions_framework
import functions_framework.aio
import pytest
import redis
from functions_framework._http import gunicorn as framework_gunicorn

from function import asgi, logs, serving
from function import settings as function_settings
from function.settings import Settings
from tests.conftest import head_of_counted_size
from tests.support.local_redis import RedisServer
from tests.unit.serving_harness import (
    MAIN,
    PATIENCE,
    TIMEOUT,
    Client,
    answer_of,
    connect,
    error_of,
    read_answer,
    read_to_close,
    request_bytes,
    thread_worker,
)

# --- the apps functions-framework builds from function/main.py ----------------------------------


class Sent:
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    async def __call__(self, message: dict[str, Any]) -> None:
        self.messages.append(message)


async def _nothing() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _call(app: Any, method: str, path: str) -> tuple[int, dict[bytes, bytes], bytes]:
    scope = {
        "type": "http", "method": method, "path": path, "raw_path": path.encode(),
        "query_string": b"", "headers": [], "http_version": "1.1", "scheme": "http",
        "server": ("test", 80), "root_path": "",
    }  # fmt: skip
    sent = Sent()
    await app(scope, _nothing, sent)
    start = sent.messages[0]
    body = b"".join(message.get("body", b"") for message in sent.messages[1:])
    return start["status"], dict(start["headers"]), body


@pytest.mark.asyncio
async def test_asgi_mode_serves_every_path_and_method_with_the_function(framework: None) -> None:
    app = functions_framework.aio.create_asgi_app(target="handle", source=str(MAIN))
    assert app is asgi.app
    for method, path, status, code in [
        ("GET", "/robots.txt", 404, "not_found"),
        ("GET", "/favicon.ico", 404, "not_found"),
        ("TRACE", "/a", 405, "method_not_allowed"),
    ]:
        answer_status, headers, body = await _call(app, method, path)
        assert (answer_status, json.loads(body)["error"]) == (status, code)
        assert headers[b"content-type"] == b"application/json"


@pytest.mark.asyncio
async def test_asgi_mode_leaves_other_functions_to_the_framework(
    framework: None, tmp_path: Path
) -> None:
    serving.install()
    source = tmp_path / "other.py"
    source.write_text("def other(request):\n    return 'other'\n")
    app = functions_framework.aio.create_asgi_app(target="other", source=str(source))
    assert app is not asgi.app
    status, _, body = await _call(app, "GET", "/robots.txt")
    assert (status, body) == (404, b"Not Found")  # the framework's own plain-text answer
    status, _, body = await _call(app, "GET", "/x")
    assert (status, body) == (200, b"other")


def test_flask_mode_answers_robots_and_favicon_with_the_function(framework: None) -> None:
    app = functions_framework.create_app(target="handle_flask", source=str(MAIN))
    assert isinstance(app, flask.Flask)
    client = app.test_client()
    for path in ("/robots.txt", "/favicon.ico"):
        answer = client.get(path)
        assert (answer.status_code, answer.json) == (
            404, {"error": "not_found", "message": answer.json and answer.json["message"]}
        )  # fmt: skip
        assert answer.content_type == "application/json"
    assert client.get("/").get_data() and client.put("/a", json={"v": 1}).status_code == 201
    assert client.get("/a").json["v"] == 1


def test_flask_mode_closes_when_the_function_says_so_under_any_server(framework: None) -> None:
    """werkzeug's test client calls the app with a plain ``start_response``, not gunicorn's."""
    app = functions_framework.create_app(target="handle_flask", source=str(MAIN))
    client = app.test_client()
    too_large = client.put("/big", data=b"x" * 1_048_577, content_type="application/json")
    assert (too_large.status_code, too_large.headers["connection"]) == (413, "close")


def test_flask_mode_leaves_other_functions_to_the_framework(
    framework: None, tmp_path: Path
) -> None:
    serving.install()
    source = tmp_path / "other.py"
    source.write_text("def other(request):\n    return 'other'\n")
    client = functions_framework.create_app(target="other", source=str(source)).test_client()
    robots = client.get("/robots.txt")
    assert robots.status_code == 404 and robots.content_type.startswith("text/html")
    assert client.get("/x").get_data() == b"other"


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_both_servers_log_in_the_format_set(
    framework: None, monkeypatch: pytest.MonkeyPatch, log_format: str
) -> None:
    chosen = Settings(log_format=log_format)
    monkeypatch.setattr(function_settings, "loaded", lambda: chosen)
    app = functions_framework.create_app(target="handle_flask", source=str(MAIN))
    for application in (
        serving.GunicornApplication(app, "127.0.0.1", 0, False, threads=2),
        serving.UvicornApplication(app, "127.0.0.1", 0, False),
    ):
        assert application.cfg.logconfig_dict == logs.dict_config(log_format)


def test_install_is_idempotent(framework: None) -> None:
    serving.install()
    installed = (
        functions_framework.aio._create_asgi_app_with_function,
        functions_framework._configure_app,
        framework_gunicorn.UvicornApplication,
        framework_gunicorn.GunicornApplication,
    )
    serving.install()
    assert installed == (
        functions_framework.aio._create_asgi_app_with_function,
        functions_framework._configure_app,
        framework_gunicorn.UvicornApplication,
        framework_gunicorn.GunicornApplication,
    )
    assert installed[2] is serving.UvicornApplication
    assert installed[3] is serving.GunicornApplication


# --- ASGI mode: the uvicorn worker's protocol on a real socket ----------------------------------


@pytest.mark.asyncio
async def test_asgi_serves_requests_on_a_kept_alive_connection(
    asgi_address: tuple[str, int], direct: redis.Redis
) -> None:
    client = await Client.connect(asgi_address)
    body = b'{"v": 1}'
    await client.send(
        b"PUT /a?ttl=60 HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    status, headers, answer = await client.answer()
    assert (status, headers["location"], json.loads(answer)["ttl"]) == (201, "/a", 60)
    # Each request on the connection gets its own head allowance: two heads of 60 fields and
    # 20 KiB each would together be over both limits.
    for _ in range(2):
        await client.send(request_bytes("/a", fields=60, field_bytes=330))
        status, _, answer = await client.answer()
        assert (status, json.loads(answer)["v"]) == (200, 1)
    await client.close()


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("head_bytes", "refused"), [(serving.MAX_HEAD_BYTES, False), (serving.MAX_HEAD_BYTES + 1, True)]
)
async def test_asgi_refuses_a_head_over_32_kib(
    asgi_address: tuple[str, int], head_bytes: int, refused: bool
) -> None:
    head = head_of_counted_size(b"/health/liveness", head_bytes)[:-4]  # without its last CRLFs
    client = await Client.connect(asgi_address)
    await client.send(head)  # all of it before the end
    await client.send(b"\r\n\r\n")
    if refused:
        raw = await client.rest()
        assert error_of(raw) == (431, "headers_too_large", "close")
        assert json.loads(answer_of(raw)[2])["message"] == (
            "the request head is limited to 32768 bytes and 100 fields"
        )
    else:
        status, _, body = await client.answer()
        assert (status, body) == (200, b'{"status":"ok"}')
    await client.close()


@pytest.mark.asyncio
@pytest.mark.parametrize(("fields", "refused"), [(99, False), (100, True)])
async def test_asgi_refuses_more_than_100_header_fields(
    asgi_address: tuple[str, int], fields: int, refused: bool
) -> None:
    client = await Client.connect(asgi_address)
    await client.send(request_bytes(fields=fields))  # plus Host: 99 or 100 fields
    if refused:
        raw = await client.rest()
        assert error_of(raw) == (431, "headers_too_large", "close")
        assert raw.count(b"HTTP/1.1 4") == 1  # the parser's own error is not answered too
    else:
        assert (await client.answer())[0] == 200
    await client.close()


@pytest.mark.asyncio
async def test_asgi_answers_what_is_not_http_in_json(asgi_address: tuple[str, int]) -> None:
    client = await Client.connect(asgi_address)
    await client.send(b"\x16\x03\x01 not http\r\n\r\n")
    raw = await client.rest()
    assert error_of(raw) == (400, "bad_request", "close")
    assert raw.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert raw.count(b"HTTP/1.1 4") == 1


@pytest.mark.asyncio
async def test_asgi_answers_nothing_more_after_a_431(asgi_address: tuple[str, int]) -> None:
    client = await Client.connect(asgi_address)
    unended = serving.MAX_HEAD_BYTES + serving.UNCOUNTED_HEAD_BYTES  # a field that never ends
    await client.send(b"GET / HTTP/1.1\r\nX-Big: " + b"v" * unended)
    await client.send(b"\x00 not http\r\n\r\n")  # would be a 400 if it were still parsed
    raw = await client.rest()
    assert error_of(raw) == (431, "headers_too_large", "close")
    assert raw.count(b"HTTP/1.1 4") == 1


@pytest.mark.asyncio
@pytest.mark.parametrize("sent", [b"", b"GET / HTTP/1.1\r\nHost: te"])
async def test_asgi_closes_a_head_that_does_not_arrive_in_time(
    asgi_address: tuple[str, int], sent: bytes
) -> None:
    client = await Client.connect(asgi_address)
    await client.send(sent)
    assert await client.rest() == b""  # closed, unanswered, well within PATIENCE


@pytest.mark.asyncio
async def test_asgi_head_timer_covers_each_request_on_a_connection(
    asgi_address: tuple[str, int],
) -> None:
    client = await Client.connect(asgi_address)
    await client.send(request_bytes(), pause=TIMEOUT * 2)  # the first head's timer is stopped
    assert (await client.answer())[0] == 200
    await client.send(b"GET /health/liveness HTTP/1.1\r\nHost: te")
    assert await client.rest() == b""  # the second head, unfinished, is closed


@pytest.mark.asyncio
async def test_asgi_kept_alive_connection_outlives_the_head_timeout(
    asgi_address: tuple[str, int],
) -> None:
    """Idle between requests, a connection is bound by the keep-alive time, not the head's."""
    client = await Client.connect(asgi_address)
    await client.send(request_bytes(), pause=TIMEOUT * 3)
    assert (await client.answer())[0] == 200
    await client.send(request_bytes(), pause=TIMEOUT * 3)
    assert (await client.answer())[0] == 200
    await client.close()


@pytest.mark.asyncio
async def test_asgi_head_timer_waits_for_the_answer_in_progress(
    asgi_address: tuple[str, int], server: RedisServer, direct: redis.Redis
) -> None:
    """A head timer that fires while the previous answer is still being made closes nothing."""
    direct.set("serving:count", 0)
    client = await Client.connect(asgi_address)
    # Redis paused for longer than the head timeout, and within the Redis timeout (1 s).
    direct.execute_command("CLIENT", "PAUSE", int(TIMEOUT * 1.5 * 1000), "ALL")
    await client.send(b"GET / HTTP/1.1\r\nHost: test\r\nAccept: text/plain\r\n\r\nGET ")
    await asyncio.sleep(TIMEOUT * 1.2)
    status, _, body = await client.answer()
    assert (status, body) == (200, b"Count is 1.")
    await client.close()


@pytest.mark.asyncio
@pytest.mark.parametrize(("blank_lines", "refused"), [(16_896, False), (16_897, True)])
async def test_asgi_bounds_blank_lines_before_a_request(
    asgi_address: tuple[str, int], blank_lines: int, refused: bool
) -> None:
    """Not counted by the head limit; bounded by it and the uncounted allowance together."""
    assert serving.MAX_HEAD_BYTES + serving.UNCOUNTED_HEAD_BYTES == 2 * 16_896
    client = await Client.connect(asgi_address)
    await client.send(b"\r\n" * blank_lines)  # 33,792 or 33,794 bytes
    await client.send(request_bytes())
    if refused:
        assert error_of(await client.rest()) == (431, "headers_too_large", "close")
    else:
        assert (await client.answer())[0] == 200
    await client.close()


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("head_bytes", "refused"),
    [(serving.MAX_HEAD_BYTES + serving.UNCOUNTED_HEAD_BYTES, False),
     (serving.MAX_HEAD_BYTES + serving.UNCOUNTED_HEAD_BYTES + 1, True)],
)  # fmt: skip
async def test_asgi_bounds_each_head_that_never_ends_on_a_kept_alive_connection(
    asgi_address: tuple[str, int], head_bytes: int, refused: bool
) -> None:
    """A second request's field that never ends: refused past the bound, else closed unanswered
    at the head timeout."""
    client = await Client.connect(asgi_address)
    await client.send(request_bytes())
    assert (await client.answer())[0] == 200
    start = b"GET / HTTP/1.1\r\nX-Never-Ends: "
    await client.send(start + b"v" * (head_bytes - len(start)))
    rest = await client.rest()
    assert (error_of(rest) if refused else rest) == ((431, TOO_LARGE, "close") if refused else b"")
    await client.close()


@pytest.mark.asyncio
@pytest.mark.parametrize("over", [0, 1])
async def test_asgi_bounds_the_request_target_and_each_field(
    asgi_address: tuple[str, int], over: int
) -> None:
    """The target (counted in pieces as it arrives) and a field's name and value with ": " are
    each at most MAX_REQUEST_LINE bytes: the longest is served, one byte more refused."""
    target = b"/health/liveness?q=".ljust(serving.MAX_REQUEST_LINE + over, b"a")
    client = await Client.connect(asgi_address)
    await client.send(b"GET " + target[:4000])
    await client.send(target[4000:] + b" HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    raw = await client.rest()
    assert (error_of(raw)[:2] if over else answer_of(raw)[0]) == (
        (414, "uri_too_long") if over else 200
    )
    await client.close()
    value = b"v" * (serving.MAX_REQUEST_LINE - len(b"X-Long: ") + over)
    client = await Client.connect(asgi_address)
    await client.send(
        b"GET / HTTP/1.1\r\nHost: t\r\nX-Long: " + value + b"\r\nConnection: close\r\n\r\n"
    )
    raw = await client.rest()
    if over:
        assert error_of(raw) == (431, TOO_LARGE, "close")
        assert json.loads(answer_of(raw)[2])["message"] == "a header field is limited to 8190 bytes"
    else:
        assert answer_of(raw)[0] == 200
    await client.close()


@pytest.mark.asyncio
async def test_asgi_adds_up_a_head_that_comes_in_pieces(asgi_address: tuple[str, int]) -> None:
    client = await Client.connect(asgi_address)
    await client.send(b"GET / HTTP/1.1\r\nX-Big: " + b"v" * 20_000)
    await client.send(b"v" * 20_000)
    assert error_of(await client.rest()) == (431, "headers_too_large", "close")


@pytest.mark.asyncio
async def test_asgi_body_does_not_count_as_head(asgi_address: tuple[str, int]) -> None:
    document = b'{"a": "' + b"x" * 50_000 + b'"}'
    client = await Client.connect(asgi_address)
    await client.send(
        b"PUT /big HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(document), document[:20_000])
    )
    await client.send(document[20_000:])
    assert (await client.answer())[0] == 201
    await client.close()


# --- Flask mode: gunicorn's thread worker, running in a thread ----------------------------------


def test_flask_leaves_an_application_crash_to_gunicorn(framework: None) -> None:
    """Only what gunicorn cannot parse is answered in JSON; an application that raises (which
    the function never does) still gets gunicorn's own 500."""

    def crashing(environ: Any, start_response: Any) -> Any:
        raise RuntimeError("crash")

    serving.install()
    with thread_worker(crashing) as address, connect(address) as sock:
        sock.sendall(request_bytes())
        status, headers, _ = read_answer(sock)
    assert (status, headers["content-type"]) == (500, "text/html")


# A request line of exactly MAX_REQUEST_LINE bytes, its CRLF not counted; the path is short.
LONGEST_TARGET = "/health/liveness?q=".ljust(serving.MAX_REQUEST_LINE - len("GET  HTTP/1.1"), "a")


TOO_LARGE = "headers_too_large"


def test_flask_serves_requests_on_a_kept_alive_connection(
    flask_address: tuple[str, int], direct: redis.Redis
) -> None:
    with connect(flask_address) as sock:
        body = b'{"v": 2}'
        sock.sendall(
            b"PUT /b HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        assert read_answer(sock)[0] == 201
        # Each request gets its own deadline: this one comes after the first one's has passed.
        threading.Event().wait(TIMEOUT * 3)
        sock.sendall(request_bytes("/b"))
        status, _, answer = read_answer(sock)
        assert (status, json.loads(answer)["v"]) == (200, 2)


@pytest.mark.parametrize(
    ("request_bytes", "expected"),
    [
        (request_bytes(LONGEST_TARGET + "a"), (414, "uri_too_long", "close")),
        (request_bytes(fields=100), (431, TOO_LARGE, "close")),
        (request_bytes(fields=1, field_bytes=serving.MAX_REQUEST_LINE), (431, TOO_LARGE, "close")),
        (b"\x16\x03\x01 not http\r\n\r\n", (400, "bad_request", "close")),
    ],
    ids=["request-line", "fields", "field-size", "not-http"],
)
def test_flask_answers_what_gunicorn_cannot_parse_in_json(
    flask_address: tuple[str, int], request_bytes: bytes, expected: tuple[int, str, str]
) -> None:
    with connect(flask_address) as sock:
        sock.sendall(request_bytes)
        raw = read_to_close(sock)
    assert error_of(raw) == expected
    assert raw.count(b"HTTP/1.1 4") == 1
    messages = {
        414: "the request line is limited to 8190 bytes",
        431: "the request head is limited to 32768 bytes and 100 fields",
        400: "the request is not valid HTTP/1.1",
    }
    assert json.loads(answer_of(raw)[2])["message"] == messages[expected[0]]


@pytest.mark.parametrize(
    ("request_line", "expected"),
    [(b"PROPFIND /a HTTP/1.1", (405, "method_not_allowed")),
     (b"GET /a%0Ab HTTP/1.1", (400, "invalid_path"))],
)  # fmt: skip
def test_flask_answers_what_flask_refuses_itself_with_the_function(
    flask_address: tuple[str, int], request_line: bytes, expected: tuple[int, str]
) -> None:
    with connect(flask_address) as sock:
        sock.sendall(request_line + b"\r\nHost: t\r\nConnection: close\r\n\r\n")
        assert error_of(read_to_close(sock))[:2] == expected


def test_flask_answers_pipelined_requests_in_order(flask_address: tuple[str, int]) -> None:
    """Both in one write: the second waits in gunicorn's buffer, not on the socket."""
    with connect(flask_address) as sock:
        last = b"GET /health/liveness HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
        sock.sendall(request_bytes("/health/readiness") + last)
        assert read_to_close(sock).count(b"HTTP/1.1 200 OK\r\n") == 2


def test_flask_takes_a_head_within_the_limits(flask_address: tuple[str, int]) -> None:
    with connect(flask_address) as sock:
        # The longest request line and 99 fields, within the 32 KiB head.
        sock.sendall(request_bytes(LONGEST_TARGET, fields=99, field_bytes=220))
        status, _, body = read_answer(sock)
    assert (status, body) == (200, b'{"status":"ok"}')


def test_flask_answers_a_body_that_does_not_arrive_in_time_with_408(
    flask_address: tuple[str, int],
) -> None:
    with connect(flask_address) as sock:
        sock.sendall(
            b"PUT /c HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            b"Content-Length: 10\r\n\r\n{"
        )
        status, headers, body = read_answer(sock)
    assert (status, headers["content-type"]) == (408, "application/json")
    assert json.loads(body) == {
        "error": "request_timeout",
        "message": f"the request did not arrive within {TIMEOUT * 2} s",
    }


def test_flask_serves_a_client_that_pauses_within_the_deadline(
    flask_address: tuple[str, int],
) -> None:
    with connect(flask_address) as sock:
        sock.sendall(b"PUT /d HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n")
        # Each pause is longer than the product of the two timeouts, the sum's other misreading.
        threading.Event().wait(TIMEOUT / 4)
        sock.sendall(b"Content-Length: 2\r\n\r\n{")
        threading.Event().wait(TIMEOUT / 4)
        sock.sendall(b"}")
        assert read_answer(sock)[0] == 201


def test_flask_closes_a_client_that_sends_a_byte_at_a_time(
    flask_address: tuple[str, int],
) -> None:
    """Each byte comes well within any single read's timeout; the deadline covers them all."""
    with connect(flask_address) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\n")
        for _ in range(int(PATIENCE / 0.02)):
            try:
                sock.sendall(b"X")
                threading.Event().wait(0.02)
                if select.select([sock], [], [], 0)[0]:
                    assert sock.recv(65536) == b""  # closed, unanswered
                    return
            except ConnectionError:
                return  # closed
        pytest.fail("the server kept reading a head that never ends")


def test_flask_closes_a_head_that_does_not_arrive_in_time(flask_address: tuple[str, int]) -> None:
    with connect(flask_address) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: te")
        assert read_to_close(sock) == b""  # within PATIENCE, or recv raises TimeoutError
