from __future__ import annotations

import http.client
import json
import os
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import redis

from tests.conftest import RunningFunction
from tests.support.local_redis import RedisServer


@pytest.fixture
def client(function: RunningFunction) -> Iterator[httpx.Client]:
    """An HTTP client on the function under test; a hung server fails the test, not the suite."""
    with httpx.Client(base_url=function.url, timeout=10, headers=auth_headers()) as http:
        yield http


def auth_headers() -> dict[str, str]:
    """With FUNCTION_TOKEN set (a server with WRITE_TOKEN/READ_TOKEN, such as the one
    `make cluster-up` deploys), every request of the suite carries it."""
    token = os.environ.get("FUNCTION_TOKEN", "")
    return {"Authorization": f"Bearer {token}"} if token else {}


def _auth_line() -> bytes:
    return b"".join(f"{k}: {v}\r\n".encode() for k, v in auth_headers().items())


@pytest.fixture
def path() -> str:
    """A resource path no other test uses."""
    return f"/tests/{uuid.uuid4().hex}"


@pytest.fixture(scope="session")
def redis_client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    with redis.Redis.from_url(redis_server.url) as connection:
        yield connection


def error_of(response: httpx.Response) -> str:
    """The error code of a JSON error body; fails the test when the body is not one."""
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error", "message"}
    assert isinstance(body["message"], str) and body["message"]
    return str(body["error"])


@dataclass
class RawResponse:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def raw_request(url: str, head: bytes, body: bytes = b"", timeout: float = 10) -> RawResponse:
    """Send bytes as they are (any path, any header) and read one answer. httpx and http.client
    refuse or rewrite the targets these tests need to send."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    # Heads name the placeholder host `test`; behind an ingress the Host header picks the route,
    # so the server's own name goes in its place.
    head = head.replace(b"\r\nHost: test\r\n", b"\r\nHost: " + parts.netloc.encode() + b"\r\n", 1)
    with socket.create_connection((parts.hostname, port), timeout=timeout) as sock:
        sock.sendall(head + body)
        answer = http.client.HTTPResponse(sock, method=head.split(b" ", 1)[0].decode())
        answer.begin()
        return RawResponse(answer.status, answer.headers, answer.read())


def read_until_close(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (a reset counts as a close)."""
    answer = b""
    try:
        while chunk := sock.recv(65536):
            answer += chunk
    except ConnectionResetError:
        pass
    return answer


def put_head(target: bytes, body: bytes, extra: bytes = b"") -> bytes:
    return (
        b"PUT " + target + b" HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        b"Content-Length: "
        + str(len(body)).encode()
        + b"\r\nConnection: close\r\n"
        + _auth_line()
        + extra
        + b"\r\n"
    )


def get_head(target: bytes, method: bytes = b"GET", extra: bytes = b"") -> bytes:
    return (
        method
        + b" "
        + target
        + b" HTTP/1.1\r\nHost: test\r\nConnection: close\r\n"
        + _auth_line()
        + extra
        + b"\r\n"
    )
