"""Clients that hold connections or bodies against the server, with the default request deadline
(40 s): others are served while they do, and a body the function does not want is never read
into memory. Bounds catch a hang or a read of the whole body; they do not measure speed."""

from __future__ import annotations

import http.client
import socket
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any
from urllib.parse import urlsplit

import httpx
import psutil
import pytest

from tests.conftest import RunningFunction

from .conftest import error_of, put_head, read_until_close

ENTRY_POINTS = ["handle", "handle_flask"]
MIB = 1024 * 1024
# Well under the request deadline: a server that makes others wait for it fails the test.
PATIENCE_SECONDS = 10
# What the function may grow by while refusing a body; reading a 300 MB one breaks it.
MEMORY_BOUND = 50 * MIB
DECLARED = 300_000_000
WRITE_TOKEN = "write-token-for-tests-0123"


@pytest.fixture(params=ENTRY_POINTS)
def entry_point(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _connect(url: str) -> socket.socket:
    parts = urlsplit(url)
    return socket.create_connection((parts.hostname, parts.port), timeout=PATIENCE_SECONDS)


def _served_meanwhile(url: str) -> None:
    """Another client's request and a write are answered while the hostile sockets stay open."""
    with httpx.Client(base_url=url, timeout=PATIENCE_SECONDS) as http:
        assert http.get("/health/readiness").status_code == 200
        assert http.put("/hostile/other", json={"ok": True}).status_code in (200, 201)


def _memory(running: RunningFunction) -> int:
    assert running.process is not None
    root = psutil.Process(running.process.pid)
    return sum(process.memory_info().rss for process in [root, *root.children(recursive=True)])


@pytest.mark.parametrize("count", [1, 8])
def test_clients_that_keep_a_closing_connection_open_stop_no_one(
    start_function: Any, entry_point: str, count: int
) -> None:
    """Each sends ``Connection: close``, reads its whole answer and never closes its socket."""
    running: RunningFunction = start_function(entry_point)
    with ExitStack() as stack:
        for _ in range(count):
            sock = stack.enter_context(_connect(running.url))
            sock.sendall(b"GET /health/readiness HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            answer = http.client.HTTPResponse(sock)
            answer.begin()
            assert answer.status == 200
            answer.read()  # by its Content-Length; the socket stays open
        _served_meanwhile(running.url)


def test_connections_that_send_nothing_stop_no_one(start_function: Any, entry_point: str) -> None:
    # Two worker threads in Flask mode, ten times as many silent connections.
    running: RunningFunction = start_function(entry_point, env={"THREADS": "2"})
    with ExitStack() as stack:
        for _ in range(20):
            stack.enter_context(_connect(running.url))
        _served_meanwhile(running.url)


def test_a_slow_head_stops_no_one(start_function: Any, entry_point: str) -> None:
    running: RunningFunction = start_function(entry_point)
    stop = threading.Event()

    def slowloris() -> None:
        with _connect(running.url) as sock:
            sock.sendall(b"GET /hostile/slow HTTP/1.1\r\nHost: t\r\n")
            while not stop.wait(0.2):
                try:
                    sock.sendall(b"X-Slow: 1\r\n")
                except OSError:
                    return

    thread = threading.Thread(target=slowloris)
    thread.start()
    try:
        _served_meanwhile(running.url)
    finally:
        stop.set()
        thread.join()


@pytest.mark.parametrize("half_close", [False, True])
def test_a_body_shorter_than_its_content_length_is_a_json_408_or_400(
    start_function: Any, entry_point: str, half_close: bool
) -> None:
    """The body stops short and the client waits (408 at the deadline) or says it sent all it
    will (400 at once): either way our JSON, never a 500, and nothing stored."""
    env = {"HEAD_TIMEOUT_SECONDS": "1", "BODY_TIMEOUT_SECONDS": "1"}
    running: RunningFunction = start_function(entry_point, env=env)
    with _connect(running.url) as sock:
        sock.sendall(put_head(b"/hostile/short", b"x" * 100) + b'{"a": 1}')
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        answer = read_until_close(sock)
    status = answer.split(b" ", 2)[1]
    assert status in (b"408", b"400"), answer[:300]
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"content-type: application/json" in head.lower(), answer[:300]
    assert body.startswith(b'{"error": "'), answer[:300]
    with httpx.Client(base_url=running.url, timeout=PATIENCE_SECONDS) as http:
        assert http.get("/hostile/short").status_code == 404


def _huge_declared(chunked: bool, token: str | None) -> Iterator[bytes]:
    """A PUT declaring 300 MB, or chunked with no last chunk, then as many bytes as it is let."""
    auth = f"Authorization: Bearer {token}\r\n".encode() if token is not None else b""
    head = put_head(b"/hostile/huge", b"", auth).replace(b"Connection: close\r\n", b"")
    if chunked:
        head = head.replace(b"Content-Length: 0", b"Transfer-Encoding: chunked")
    else:
        head = head.replace(b"Content-Length: 0", b"Content-Length: %d" % DECLARED)
    yield head
    block = b"x" * MIB
    for _ in range(DECLARED // MIB):
        yield b"%x\r\n%s\r\n" % (len(block), block) if chunked else block


@pytest.mark.parametrize("token", [None, WRITE_TOKEN, "wrong"])
@pytest.mark.parametrize("chunked", [False, True])
def test_a_huge_body_is_refused_without_being_read(
    start_function: Any, entry_point: str, chunked: bool, token: str | None
) -> None:
    """300 MB offered, by Content-Length or chunked without end, with and without a token: the
    answer comes early (401, 403 or 413) and the function's memory stays flat."""
    env = {"WRITE_TOKEN": WRITE_TOKEN, "MAX_BODY_BYTES": "1000"}
    running: RunningFunction = start_function(entry_point, env=env)
    with httpx.Client(base_url=running.url, timeout=PATIENCE_SECONDS) as http:
        assert http.get("/health/readiness").status_code == 200  # warm: imports, first request
    before = _memory(running)
    sent = 0
    with _connect(running.url) as sock:
        try:
            for data in _huge_declared(chunked, token):
                sock.sendall(data)
                sent += len(data)
        except OSError:  # the server answered and closed while the client was still sending
            pass
        answer = read_until_close(sock)
    assert sent < DECLARED, "the server read the whole body"
    expected = {None: b"401", WRITE_TOKEN: b"413", "wrong": b"403"}[token]
    assert answer.split(b" ", 2)[1:2] == [expected], answer[:300]
    # The rest of the body is not read: the answer says the connection closes (it did).
    assert b"connection: close" in answer.partition(b"\r\n\r\n")[0].lower().split(b"\r\n")
    assert _memory(running) - before < MEMORY_BOUND
    with httpx.Client(base_url=running.url, timeout=PATIENCE_SECONDS) as http:
        headers = {"Authorization": f"Bearer {WRITE_TOKEN}"}
        missing = http.get("/hostile/huge", headers=headers)
        assert missing.status_code == 404 and error_of(missing) == "not_found"
