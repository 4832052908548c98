"""A request head is bounded however its bytes arrive, and bytes after a request do not take its
answer away: a stored write is answered as stored, then the stray bytes are refused."""

from __future__ import annotations

import contextlib
import socket
import time
import uuid
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import RunningFunction, head_of_counted_size, skip_for_mode

from .conftest import error_of, put_head, read_until_close

LIMIT_BYTES = 32 * 1024  # the documented head limit
FIELD_LIMIT = 8190  # the documented request line and field limit


def _exchange(url: str, data: bytes, *, half_close: bool = True) -> bytes:
    """Send ``data`` in one write, then (``half_close``) no more; everything answered until the
    server closes."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=20) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(data)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        return read_until_close(sock)


def _our_servers(function: RunningFunction) -> None:
    """The head limits are those of the servers function/serving.py sets up."""
    if function.process is None:
        skip_for_mode(f"head limits of functions-framework's servers; {function.url} is another")


def _status_lines(answer: bytes) -> list[bytes]:
    return [line for line in answer.split(b"\r\n") if line.startswith(b"HTTP/1.1 ")]


@pytest.mark.parametrize(
    "fields",
    [[("X-Big", 85_000)], [("X-A", 30_000), ("X-B", 60_000)], [("X-A", 8000)] * 5,
     [("X-Edge", FIELD_LIMIT - len("X-Edge") - 1)]],
)  # fmt: skip
def test_a_head_over_the_limit_in_one_write_is_refused(
    function: RunningFunction, fields: list[tuple[str, int]]
) -> None:
    _our_servers(function)
    head = b"GET /head HTTP/1.1\r\nHost: test\r\nConnection: close\r\n"
    head += b"".join(name.encode() + b": " + b"v" * size + b"\r\n" for name, size in fields)
    total = len(head) + 2
    answer = _exchange(function.url, head + b"\r\n")
    lines = _status_lines(answer)
    field_too_long = any(len(name) + size + 2 > FIELD_LIMIT for name, size in fields)
    if total <= LIMIT_BYTES and not field_too_long:
        assert lines and lines[0].startswith(b"HTTP/1.1 404"), answer[:200]
        return
    # Refused (431) or, where the server closed before reading it all, only closed.
    assert not lines or lines[0].startswith(b"HTTP/1.1 431"), answer[:200]
    assert b"application/json" in answer or not lines


@pytest.mark.parametrize("length", [FIELD_LIMIT + 1, 30_000])
def test_a_request_line_over_the_limit_is_refused_and_not_served(
    function: RunningFunction, client: httpx.Client, length: int
) -> None:
    _our_servers(function)
    before = client.head("/").headers
    target = b"/?" + b"q" * length
    request = b"GET " + target + b" HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    answer = _exchange(function.url, request, half_close=False)
    lines = _status_lines(answer)
    assert lines and lines[0].startswith((b"HTTP/1.1 414", b"HTTP/1.1 431")), answer[:200]
    assert client.head("/").headers.get("content-length") == before.get("content-length")
    assert client.get("/", headers={"Accept": "application/json"}).status_code == 200


@pytest.mark.parametrize(
    "after", [b"\x00\x01 not http\r\n\r\n", b"GARBAGE", b"9", b'} "tail"']
)  # fmt: skip
def test_bytes_after_a_write_do_not_take_its_answer(
    function: RunningFunction, client: httpx.Client, after: bytes
) -> None:
    """A PUT followed in the same packet by bytes that are not HTTP (or a Content-Length shorter
    than the body): Redis holds the document, and the client is told so first."""
    _our_servers(function)
    path = f"/trailing/{uuid.uuid4().hex}"
    body = b'{"a": 1}'
    head = put_head(path.encode(), body).replace(b"Connection: close\r\n", b"")
    answer = _exchange(function.url, head + body + after)
    lines = _status_lines(answer)
    assert lines and lines[0].startswith(b"HTTP/1.1 201"), answer[:300]
    assert client.get(path).json()["a"] == 1
    if len(lines) > 1:
        assert lines[1].startswith(b"HTTP/1.1 400"), answer[:300]


def test_a_short_content_length_answers_the_write_first(
    function: RunningFunction, client: httpx.Client
) -> None:
    _our_servers(function)
    path = f"/short/{uuid.uuid4().hex}"
    body = b'{"a": 1}'
    head = put_head(path.encode(), body).replace(b"Connection: close\r\n", b"")
    answer = _exchange(function.url, head + body + b'{"b": 2}')
    assert _status_lines(answer)[0].startswith(b"HTTP/1.1 201"), answer[:300]
    assert client.get(path).json()["a"] == 1
    assert error_of(client.get(path + "/none")) == "not_found"


@pytest.mark.parametrize("split_at", [None, 100, -30, -2, -1])
@pytest.mark.parametrize("over", [0, 1])
def test_the_head_limit_is_exact_however_the_head_arrives(
    function: RunningFunction, over: int, split_at: int | None
) -> None:
    """The last byte within the limit is served and the first over it refused, in one read or
    in two (split in a field, before the blank line, inside it)."""
    _our_servers(function)
    head = head_of_counted_size(b"/head-edge", LIMIT_BYTES + over)
    parts = urlsplit(function.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=20) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            if split_at is None:
                sock.sendall(head)
            else:
                sock.sendall(head[:split_at])
                time.sleep(0.3)  # the server reads the first part alone
                sock.sendall(head[split_at:])
        answer = read_until_close(sock)
    expected = b"HTTP/1.1 404" if over == 0 else b"HTTP/1.1 431"
    assert answer.startswith(expected), answer[:200]
