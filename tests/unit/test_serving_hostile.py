"""Clients that hold connections or bodies against the function's servers, in-process
(tests/unit/serving_harness.py): a body left unread closes its connection after the answer, a
body cut short is one JSON 400, a repeated one-value field is refused, a connection that says
nothing or keeps a closing socket open holds no worker thread. The contract suite checks the same
on the servers' own processes; these run in mutation testing, which sees only this process."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import struct
import threading
import time
from collections.abc import Callable

import pytest
import redis

from function import asgi, service, serving
from tests.conftest import head_of_counted_size
from tests.unit.serving_harness import (
    PATIENCE,
    TIMEOUT,
    Client,
    answer_of,
    connect,
    error_of,
    read_answer,
    read_to_close,
    request_bytes,
)

LIMIT = 1_048_576  # MAX_BODY_BYTES of the harness: the default
# Of a refused body, sent before the answer and left unread: under the 64 KiB a closing
# connection is drained of, so that the server lingers (more and it lets go at once).
SENT = 30_000
CUT_SHORT = json.dumps({"error": "bad_request", "message": service.BODY_CUT_SHORT}).encode()


def put(target: bytes, length: int, first: bytes = b"", extra: bytes = b"") -> bytes:
    return (
        b"PUT " + target + b" HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n" % length + extra + b"\r\n" + first
    )


def chunked_put(target: bytes) -> bytes:
    """The head of a PUT whose body comes in chunks."""
    return put(target, 0).replace(b"Content-Length: 0", b"Transfer-Encoding: chunked")


# A value for each one-value field, and a PUT that sends the field once more (its name spelled
# another way: names match in any case).
ONE_VALUE = {"Host": b"test", "Content-Type": b"application/json", "Authorization": b"Bearer a"}


def repeated_put(name: str, spelled: Callable[[str], str]) -> bytes:
    field = name.encode() + b": " + ONE_VALUE[name] + b"\r\n"
    again = field.replace(name.encode(), spelled(name).encode())
    return put(b"/repeated", 2, b"{}", extra=field + again)


def _closed_after(raw: bytes) -> tuple[int, str, bytes]:
    """Status, Connection header and body of the one answer before the connection closed."""
    assert raw.count(b"HTTP/1.1 ") == 1, raw[:300]
    status, headers, body = answer_of(raw)
    return status, headers.get("connection", ""), body


def _reset_within(sock: socket.socket, seconds: float) -> bool:
    """Whether the server's socket is gone within ``seconds``: what is sent to it then is
    answered by a reset, where a lingering server reads and throws it away."""
    deadline = time.monotonic() + seconds
    sock.settimeout(0.05)
    while time.monotonic() < deadline:
        try:
            sock.sendall(b"x")
            sock.recv(1)  # b"" while the server lingers: its FIN came with the answer
        except TimeoutError:
            pass
        except (ConnectionResetError, BrokenPipeError):
            return True
        time.sleep(0.05)
    return False


# --- ASGI mode -----------------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("declared", ["length", "chunked"])
async def test_asgi_answers_a_refused_body_and_closes_without_reading_it(
    asgi_address: tuple[str, int], direct: redis.Redis, declared: str
) -> None:
    client = await Client.connect(asgi_address)
    if declared == "length":
        await client.send(put(b"/big", 2 * LIMIT, b"x" * SENT))
    else:
        # Read to the limit and 64 KiB past it (asgi's LINGER_BYTES) before the answer.
        head = chunked_put(b"/big")
        chunk = b"x" * 16_384
        count = (LIMIT + asgi.LINGER_BYTES + SENT) // len(chunk)
        await client.send(head + b"%x\r\n%s\r\n" % (len(chunk), chunk) * count)
    status, headers, body = await client.answer()
    assert (status, json.loads(body)["error"], headers["connection"]) == (
        413,
        "payload_too_large",
        "close",
    )
    # The server ends its side after the answer, and reads what still comes without a reset.
    await client.send(b"x" * 10_000)
    assert await client.rest() == b""
    await client.close()
    assert direct.keys("*") == []


@pytest.mark.asyncio
async def test_asgi_closes_after_a_body_declared_by_its_only_field(
    asgi_address: tuple[str, int],
) -> None:
    """Content-Length alone marks a body: the answer before it (415, for want of a
    Content-Type) says the connection closes."""
    client = await Client.connect(asgi_address)
    await client.send(b"PUT /bare HTTP/1.1\r\nContent-Length: %d\r\n\r\n{" % (2 * LIMIT))
    status, headers, _ = await client.answer()
    assert (status, headers["connection"]) == (415, "close")
    assert await client.rest() == b""
    await client.close()


@pytest.mark.asyncio
async def test_asgi_keeps_the_connection_after_a_body_read_whole(
    asgi_address: tuple[str, int],
) -> None:
    client = await Client.connect(asgi_address)
    await client.send(put(b"/whole", 2, b"{}"))
    status, headers, _ = await client.answer()
    assert (status, "connection" in headers) == (201, False)
    await client.send(b"GET /whole HTTP/1.1\r\nHost: test\r\n\r\n")
    assert (await client.answer())[0] == 200
    await client.close()


@pytest.mark.asyncio
async def test_asgi_answers_a_body_cut_short_at_once_in_json(
    asgi_address: tuple[str, int], direct: redis.Redis
) -> None:
    client = await Client.connect(asgi_address)
    await client.send(put(b"/short", 100, b'{"a": 1}'))
    client.writer.write_eof()  # the client has sent all it will
    raw = await client.rest()
    assert _closed_after(raw) == (400, "close", CUT_SHORT)
    await client.close()
    assert direct.keys("*") == []


@pytest.mark.asyncio
async def test_asgi_lets_go_of_a_client_that_sends_more_than_it_throws_away(
    asgi_address: tuple[str, int],
) -> None:
    host, port = asgi_address
    sock = socket.create_connection((host, port), timeout=PATIENCE)
    sock.sendall(put(b"/big", 2 * LIMIT, b"x" * SENT))
    loop = asyncio.get_running_loop()
    raw = await loop.run_in_executor(None, read_to_close, sock)
    assert _closed_after(raw)[:2] == (413, "close")
    # More than the server throws away after an answer, in pieces: it lets go before its time.
    for _ in range(4):
        await loop.run_in_executor(None, sock.sendall, b"x" * (asgi.LINGER_BYTES // 4))
        await asyncio.sleep(0.05)
    reset = await loop.run_in_executor(None, _reset_within, sock, asgi.LINGER_SECONDS / 2)
    sock.close()
    assert reset


@pytest.mark.asyncio
async def test_asgi_lets_go_of_a_lingering_client_after_the_linger_time(
    asgi_address: tuple[str, int],
) -> None:
    sock = socket.create_connection(asgi_address, timeout=PATIENCE)
    sock.sendall(put(b"/big", 2 * LIMIT, b"x" * SENT))
    loop = asyncio.get_running_loop()
    raw = await loop.run_in_executor(None, read_to_close, sock)
    assert _closed_after(raw)[:2] == (413, "close")
    lingering = await loop.run_in_executor(None, _reset_within, sock, asgi.LINGER_SECONDS / 2)
    gone = await loop.run_in_executor(None, _reset_within, sock, asgi.LINGER_SECONDS + PATIENCE)
    sock.close()
    assert (lingering, gone) == (False, True)


@pytest.mark.asyncio
async def test_asgi_answers_bytes_that_are_no_http_after_the_requests_before_them(
    asgi_address: tuple[str, int],
) -> None:
    """A write, a read pipelined behind it, then bytes that are no request: both requests are
    answered in order, then the refusal, then the connection closes. A write Redis took is never
    answered only by a 400."""
    client = await Client.connect(asgi_address)
    get = b"GET /first HTTP/1.1\r\nHost: test\r\n\r\n"
    await client.send(put(b"/first", 2, b"{}") + get + b"\x16\x03 not http\r\n\r\n")
    raw = await client.rest()
    await client.close()
    assert re.findall(rb"HTTP/1.1 (\d{3}) ", raw) == [b"201", b"200", b"400"]
    assert error_of(raw[raw.rindex(b"HTTP/1.1 ") :]) == (400, "bad_request", "close")


@pytest.mark.asyncio
@pytest.mark.parametrize("name", service.SINGLE_FIELDS)
async def test_asgi_refuses_a_repeated_one_value_field(
    asgi_address: tuple[str, int], direct: redis.Redis, name: str
) -> None:
    client = await Client.connect(asgi_address)
    await client.send(repeated_put(name, str.upper))
    raw = await client.rest()
    assert raw.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert error_of(raw) == (400, "bad_request", "close")
    assert json.loads(answer_of(raw)[2])["message"] == service.repeated_field(name).message
    await client.close()
    assert direct.keys("*") == []


# --- Flask mode ----------------------------------------------------------------------------------


@pytest.mark.parametrize("declared", ["length", "chunked"])
def test_flask_answers_a_refused_body_and_closes_without_reading_it(
    flask_address: tuple[str, int], direct: redis.Redis, declared: str
) -> None:
    with connect(flask_address) as sock:
        if declared == "length":
            sock.sendall(put(b"/big", 2 * LIMIT, b"x" * SENT))
        else:  # read to the limit, one byte more, and no further
            head = chunked_put(b"/big")
            chunk = b"x" * 16_384
            count = (LIMIT + SENT) // len(chunk)
            sock.sendall(head + b"%x\r\n%s\r\n" % (len(chunk), chunk) * count)
        status, connection, body = _closed_after(read_to_close(sock))
        assert (status, connection) == (413, "close")
        assert json.loads(body)["error"] == "payload_too_large"
        assert not _reset_within(sock, 0.3)  # lingering: what still comes is thrown away
    assert direct.keys("*") == []


def test_flask_keeps_the_connection_after_requests_without_a_body(
    flask_address: tuple[str, int],
) -> None:
    with connect(flask_address) as sock:
        for _ in range(2):
            sock.sendall(request_bytes())
            status, headers, _ = read_answer(sock)
            assert (status, headers.get("connection")) == (200, "keep-alive")


def test_flask_reads_an_empty_chunked_body_as_empty(flask_address: tuple[str, int]) -> None:
    """Whole, with nothing in it: invalid JSON, not a body cut short, and the connection kept."""
    head = chunked_put(b"/empty")
    with connect(flask_address) as sock:
        sock.sendall(head + b"0\r\n\r\n")
        status, headers, body = read_answer(sock)
    assert (status, json.loads(body)["error"], headers["connection"]) == (
        400,
        "invalid_json",
        "keep-alive",
    )


def test_flask_answers_a_body_cut_short_at_once_in_json(
    flask_address: tuple[str, int], direct: redis.Redis
) -> None:
    with connect(flask_address) as sock:
        sock.sendall(put(b"/short", 100, b'{"a": 1}'))
        sock.shutdown(socket.SHUT_WR)
        assert _closed_after(read_to_close(sock)) == (400, "close", CUT_SHORT)
    assert direct.keys("*") == []


def test_flask_lets_go_of_a_client_that_sends_more_than_it_throws_away(
    flask_address: tuple[str, int],
) -> None:
    with connect(flask_address) as sock:
        sock.sendall(put(b"/big", 2 * LIMIT, b"x" * SENT))
        assert _closed_after(read_to_close(sock))[:2] == (413, "close")
        for _ in range(4):  # in pieces: what the server reads adds up
            sock.sendall(b"x" * (serving.LINGER_BYTES // 4))
            threading.Event().wait(0.05)
        assert _reset_within(sock, serving.LINGER_SECONDS / 2)
    # Let go of on the poller too: the next connection, likely on the same descriptor number,
    # is kept alive between its requests.
    with connect(flask_address) as sock:
        for _ in range(2):
            sock.sendall(request_bytes())
            assert read_answer(sock)[0] == 200


def test_flask_lets_go_of_a_lingering_client_that_resets(flask_address: tuple[str, int]) -> None:
    with connect(flask_address) as sock:
        sock.sendall(b"GET /health/readiness HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\nxx")
        assert _closed_after(read_to_close(sock))[:2] == (200, "close")
        threading.Event().wait(0.2)  # the server has drained "xx": the reset is all it reads
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    # Closed with a reset: the poller's read fails, and the worker goes on serving.
    with connect(flask_address) as other:
        other.sendall(request_bytes())
        assert read_answer(other)[0] == 200


@pytest.mark.parametrize(
    ("head_bytes", "refused"), [(serving.MAX_HEAD_BYTES, False), (serving.MAX_HEAD_BYTES + 1, True)]
)
def test_flask_refuses_a_head_over_32_kib(
    flask_address: tuple[str, int], head_bytes: int, refused: bool
) -> None:
    with connect(flask_address) as sock:
        sock.sendall(head_of_counted_size(b"/health/liveness", head_bytes))
        raw = read_to_close(sock)
    if refused:
        assert error_of(raw) == (431, "headers_too_large", "close")
    else:
        assert answer_of(raw)[0] == 200


def test_flask_lets_go_of_a_lingering_client_after_the_linger_time(
    flask_address: tuple[str, int],
) -> None:
    with connect(flask_address) as sock:
        sock.sendall(b"GET /health/readiness HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\nxx")
        assert _closed_after(read_to_close(sock))[:2] == (200, "close")
        assert not _reset_within(sock, serving.LINGER_SECONDS / 2)
        assert _reset_within(sock, serving.LINGER_SECONDS + PATIENCE)


def test_flask_clients_that_keep_a_closing_connection_stop_no_one(
    flask_address: tuple[str, int],
) -> None:
    """More such clients than worker threads: each is drained by the poller, holding none."""
    held = [connect(flask_address) for _ in range(4)]
    for sock in held:
        sock.sendall(b"GET /health/readiness HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        assert read_answer(sock)[0] == 200
    with connect(flask_address) as other:
        other.settimeout(PATIENCE / 2)  # under gunicorn's own 2 s per closing connection, times 4
        other.sendall(request_bytes())
        assert read_answer(other)[0] == 200
    for sock in held:
        assert sock.recv(1) == b""
        sock.close()


def test_flask_connections_that_send_nothing_hold_no_thread(
    flask_address: tuple[str, int],
) -> None:
    """As many silent connections as worker threads: another client is served at once, and the
    silent ones, which wait on the poller, are served when they speak, past the deadline that a
    thread reading them would have closed them at."""
    silent = [connect(flask_address) for _ in range(2)]
    with connect(flask_address) as other:
        other.settimeout(PATIENCE / 2)  # gunicorn's thread would wait 5 s for a silent one
        other.sendall(request_bytes())
        assert read_answer(other)[0] == 200
    threading.Event().wait(2 * TIMEOUT + 0.3)  # past the deadline for a head and a body
    for sock in silent:
        sock.sendall(request_bytes())
        assert read_answer(sock)[0] == 200
        sock.close()


@pytest.mark.parametrize("name", service.SINGLE_FIELDS)
def test_flask_refuses_a_repeated_one_value_field(
    flask_address: tuple[str, int], direct: redis.Redis, name: str
) -> None:
    with connect(flask_address) as sock:
        sock.sendall(repeated_put(name, str.lower))
        raw = read_to_close(sock)
    assert raw.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert error_of(raw) == (400, "bad_request", "close")
    assert json.loads(answer_of(raw)[2])["message"] == service.repeated_field(name).message
    assert direct.keys("*") == []
