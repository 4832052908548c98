"""HTTP limits with no proxy in front: an oversized or endless request head is refused at once
with memory flat, a body that never comes is answered 408, and slow clients do not hold up
others. Bounds here are generous: they catch a hang, they do not measure speed."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import psutil
import pytest

from tests.conftest import RunningFunction

from .conftest import put_head

ENTRY_POINTS = ["handle", "handle_flask"]
MIB = 1024 * 1024
PATIENCE_SECONDS = 20
FAST_TIMEOUTS = {"HEAD_TIMEOUT_SECONDS": "1", "BODY_TIMEOUT_SECONDS": "1"}


@pytest.fixture(params=ENTRY_POINTS)
def limited(request: pytest.FixtureRequest, start_function: Any) -> RunningFunction:
    running: RunningFunction = start_function(request.param, env=FAST_TIMEOUTS)
    return running


def _connect(url: str) -> socket.socket:
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=PATIENCE_SECONDS)
    return sock


def _worker_memory(running: RunningFunction) -> int:
    assert running.process is not None
    tree = [psutil.Process(running.process.pid), *psutil.Process(running.process.pid).children()]
    return sum(process.memory_info().rss for process in tree)


def _answer_or_close(sock: socket.socket, junk: Iterator[bytes]) -> bytes:
    """Send until the server stops taking bytes; what it answered, or b'' for a closed socket."""
    try:
        for chunk in junk:
            sock.sendall(chunk)
    except (BrokenPipeError, ConnectionResetError):
        pass
    else:
        raise AssertionError("the server took the whole oversized head")
    try:
        return sock.recv(65536)
    except ConnectionResetError:
        return b""


def _refused(answer: bytes) -> None:
    assert answer == b"" or answer.startswith((b"HTTP/1.1 431", b"HTTP/1.0 431")), answer[:200]
    if answer:
        assert b"content-type: application/json" in answer.lower()
        assert b'"headers_too_large"' in answer


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [(b"NOT HTTP AT ALL\r\n\r\n", b"400"), (b"GET /a HTTP/1.1\r\nBad Header\r\n\r\n", b"400"),
     (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: t\r\n\r\n", b"41")],
)  # fmt: skip
def test_unparseable_requests_get_a_json_answer(
    limited: RunningFunction, request_bytes: bytes, status: bytes
) -> None:
    with _connect(limited.url) as sock:
        sock.sendall(request_bytes)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 " + status), answer[:200]
    assert b"content-type: application/json" in answer.lower(), answer[:300]
    assert b'{"error": "' in answer


def test_a_huge_header_is_refused_at_once(limited: RunningFunction) -> None:
    before = _worker_memory(limited)

    def junk() -> Iterator[bytes]:
        yield b"GET /limits/a HTTP/1.1\r\nHost: test\r\nX-Big: "
        for _ in range(64):  # 64 MiB offered; the server must stop reading long before
            yield b"x" * MIB

    with _connect(limited.url) as sock:
        _refused(_answer_or_close(sock, junk()))
    assert _worker_memory(limited) - before < 32 * MIB
    with httpx.Client(base_url=limited.url, timeout=10) as http:
        assert http.get("/health/readiness").status_code == 200


def test_ten_thousand_headers_are_refused(limited: RunningFunction) -> None:
    def junk() -> Iterator[bytes]:
        yield b"GET /limits/b HTTP/1.1\r\nHost: test\r\n"
        for n in range(10_000):
            yield b"X-H%d: v\r\n" % n
        yield b"\r\n"
        for _ in range(64):  # keep offering bytes: a server that stops reading refuses them
            yield b"X-More: " + b"y" * 65536 + b"\r\n"

    with _connect(limited.url) as sock:
        _refused(_answer_or_close(sock, junk()))


def test_a_head_that_never_ends_is_closed(limited: RunningFunction) -> None:
    with _connect(limited.url) as sock:
        sock.sendall(b"GET /limits/c HTTP/1.1\r\nHost: test\r\n")  # and nothing more
        started = time.monotonic()
        try:
            answer = sock.recv(65536)
        except ConnectionResetError:
            answer = b""
        assert time.monotonic() - started < PATIENCE_SECONDS
        assert answer == b"" or answer.startswith(b"HTTP/1.1 408"), answer


@pytest.mark.parametrize("client_closes", [True, False])
def test_a_body_that_never_arrives_is_a_408(limited: RunningFunction, client_closes: bool) -> None:
    head = put_head(b"/limits/d", b"x" * 100)
    if not client_closes:
        head = head.replace(b"Connection: close\r\n", b"")
    with _connect(limited.url) as sock:
        sock.sendall(head + b'{"a":')
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert b"request_timeout" in answer
    # The rest of the body may still come: the server says it closes, and does (recv ended).
    head_lines = answer.partition(b"\r\n\r\n")[0].lower().split(b"\r\n")
    assert b"connection: close" in head_lines and b"connection: keep-alive" not in head_lines
    with httpx.Client(base_url=limited.url, timeout=10) as http:
        assert http.get("/limits/d").status_code == 404


def test_slow_clients_do_not_stop_others(limited: RunningFunction) -> None:
    stop = threading.Event()

    def slow_client() -> None:
        with _connect(limited.url) as sock:
            sock.sendall(b"GET /limits/e HTTP/1.1\r\nHost: test\r\n")
            for n in range(100):
                if stop.wait(0.3):
                    return
                try:
                    sock.sendall(b"X-Slow-%d: 1\r\n" % n)
                except OSError:
                    return  # closed by the server: what the head bound is for

    threads = [threading.Thread(target=slow_client) for _ in range(50)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.5)  # all fifty are connected and trickling
        with httpx.Client(base_url=limited.url, timeout=PATIENCE_SECONDS) as http:
            for _ in range(3):
                assert http.put("/limits/e", json={"ok": True}).status_code in (200, 201)
                assert http.get("/limits/e").json()["ok"] is True
    finally:
        stop.set()
        for thread in threads:
            thread.join()
