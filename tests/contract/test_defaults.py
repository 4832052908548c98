"""Each documented default, probed at its boundary on servers started with no settings but the
Redis to use: the last value accepted and the first refused, the exact header, and the timeouts
where the server cannot honestly answer sooner. The values are written here as the documents
state them, not read from function/settings.py, so that a changed default fails here.

The timeout tests wait for the defaults themselves (10, 30 and 40 s); they bound each wait from
below by the documented value and from above with generous room, so they do not measure speed."""

from __future__ import annotations

import re
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import fields
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import redis

from function.settings import Settings
from tests.conftest import RunningFunction, _starter
from tests.delaying_proxy import DelayingProxy
from tests.support.local_redis import RedisServer, free_port

from .conftest import error_of, read_until_close

ENTRY_POINTS = ["handle", "handle_flask"]

# As docs/configuration.md and docs/http-api.md state them.
MAX_PATH_BYTES = 1024
MAX_BODY_BYTES = 1_048_576
TTL_MIN_SECONDS = 1
TTL_MAX_SECONDS = 315_360_000
TTL_DEFAULT_SECONDS = 31_536_000
MAX_JSON_DEPTH = 32
KEY_PREFIX = "kv:"
RETRY_AFTER = "1"
REDIS_TIMEOUT_SECONDS = 1.0
HEAD_TIMEOUT_SECONDS = 10.0
BODY_TIMEOUT_SECONDS = 30.0
KEEPALIVE_SECONDS = 5.0
# Room above a timeout for a loaded machine: catches a doubled default, not a slow answer.
ROOM_SECONDS = 4.0


def no_settings(redis_url: str) -> dict[str, str]:
    """Every setting blank (blank keeps the default, whatever this process's environment holds)
    but the Redis to use."""
    return {**{field.name.upper(): "" for field in fields(Settings)}, "REDIS_URL": redis_url}


@pytest.fixture(scope="module", params=ENTRY_POINTS)
def plain(
    request: pytest.FixtureRequest,
    redis_server: RedisServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunningFunction]:
    start, started = _starter(redis_server, tmp_path_factory)
    yield start(request.param, env=no_settings(redis_server.function_url))
    for running in started:
        running.stop()


@pytest.fixture
def http(plain: RunningFunction) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=plain.url, timeout=30) as client:
        yield client


@pytest.fixture
def name() -> str:
    return f"/defaults/{uuid.uuid4().hex}"


# The probes take a client on any server with the defaults: func's runtime runs them too.


def probe_path_length(http: httpx.Client) -> None:
    last = "/" + "p" * (MAX_PATH_BYTES - 1)  # the name as the function counts it, "/" included
    assert http.put(last, json={}).status_code in (200, 201)
    assert http.get(last).status_code == 200
    too_long = http.put(last + "p", json={})
    assert too_long.status_code == 414, too_long.text
    assert error_of(too_long) == "uri_too_long"
    # Counted in UTF-8 bytes: one two-byte character in place of one byte is over.
    assert http.put("/" + "p" * (MAX_PATH_BYTES - 2) + "é", json={}).status_code == 414


def _body_of(size: int) -> bytes:
    body = b'{"v":"' + b"x" * (size - 8) + b'"}'
    assert len(body) == size
    return body


def probe_body_size(http: httpx.Client, name: str) -> None:
    headers = {"Content-Type": "application/json"}
    largest = http.put(name, content=_body_of(MAX_BODY_BYTES), headers=headers)
    assert largest.status_code == 201, largest.text
    assert len(http.get(name).json()["v"]) == MAX_BODY_BYTES - 8
    over = http.put(name + "-over", content=_body_of(MAX_BODY_BYTES + 1), headers=headers)
    assert over.status_code == 413, over.text
    assert error_of(over) == "payload_too_large"
    assert http.get(name + "-over").status_code == 404


def probe_ttl_bounds(http: httpx.Client, name: str) -> None:
    for ttl in (TTL_MIN_SECONDS, TTL_MAX_SECONDS):
        answer = http.put(f"{name}/{ttl}", params={"ttl": str(ttl)}, json={})
        assert answer.status_code == 201, answer.text
        assert answer.json()["ttl"] == ttl
    for ttl in (TTL_MIN_SECONDS - 1, TTL_MAX_SECONDS + 1):
        refused = http.put(f"{name}/{ttl}", params={"ttl": str(ttl)}, json={})
        assert refused.status_code == 400, refused.text
        assert error_of(refused) == "invalid_ttl"
        assert http.get(f"{name}/{ttl}").status_code == 404


def probe_default_ttl(http: httpx.Client, name: str) -> None:
    put = http.put(name, json={})
    assert put.status_code == 201
    assert put.json()["ttl"] == TTL_DEFAULT_SECONDS
    # A few seconds may pass on a loaded machine; a default a day off is far outside.
    assert TTL_DEFAULT_SECONDS - 10 <= http.get(name).json()["ttl"] <= TTL_DEFAULT_SECONDS
    # ?ttl=keep on a new resource gives it the default too.
    kept = http.put(name + "-kept", params={"ttl": "keep"}, json={})
    assert kept.status_code == 201 and kept.json()["ttl"] == TTL_DEFAULT_SECONDS


def _nested(depth: int) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for _ in range(depth - 1):  # the outer object is level 1
        document = {"d": document}
    return document


def probe_json_depth(http: httpx.Client, name: str) -> None:
    deepest = http.put(name, json=_nested(MAX_JSON_DEPTH))
    assert deepest.status_code == 201, deepest.text
    assert http.get(name).status_code == 200
    too_deep = http.put(name + "-deeper", json=_nested(MAX_JSON_DEPTH + 1))
    assert too_deep.status_code == 400, too_deep.text
    assert error_of(too_deep) == "too_deep"
    # Arrays count as levels too.
    array_deep: Any = [_nested(MAX_JSON_DEPTH - 1)]
    assert http.put(name + "-array", json={"a": array_deep}).status_code == 400


def test_path_length(http: httpx.Client) -> None:
    probe_path_length(http)


def test_body_size(http: httpx.Client, name: str) -> None:
    probe_body_size(http, name)


def test_ttl_bounds(http: httpx.Client, name: str) -> None:
    probe_ttl_bounds(http, name)


def test_default_ttl(
    http: httpx.Client, name: str, redis_client: redis.Redis, plain: RunningFunction
) -> None:
    probe_default_ttl(http, name)
    # Redis expires the key at that moment, under the default prefix.
    pttl = redis_client.pttl(f"{KEY_PREFIX}r:{name}")
    assert (TTL_DEFAULT_SECONDS - 10) * 1000 <= pttl <= TTL_DEFAULT_SECONDS * 1000


def test_json_depth(http: httpx.Client, name: str) -> None:
    probe_json_depth(http, name)


def test_key_prefix(http: httpx.Client, name: str, redis_client: redis.Redis) -> None:
    assert http.put(name, json={"v": 1}).status_code == 201
    assert redis_client.exists(f"{KEY_PREFIX}r:{name}") == 1


@pytest.mark.parametrize("entry_point", ENTRY_POINTS)
def test_retry_after_when_redis_is_down(
    start_function: Any, redis_server: RedisServer, entry_point: str
) -> None:
    nothing_listens = f"redis://127.0.0.1:{free_port()}/0"
    running: RunningFunction = start_function(entry_point, env=no_settings(nothing_listens))
    with httpx.Client(base_url=running.url, timeout=30) as http:
        answer = http.get("/down")
    assert answer.status_code == 503, answer.text
    assert error_of(answer) == "redis_unavailable"
    assert answer.headers["retry-after"] == RETRY_AFTER


@pytest.mark.parametrize("entry_point", ENTRY_POINTS)
def test_a_frozen_redis_is_answered_after_the_redis_timeout(
    start_function: Any, redis_server: RedisServer, entry_point: str
) -> None:
    with DelayingProxy(redis_server.port) as proxy:
        running: RunningFunction = start_function(entry_point, env=no_settings(proxy.url))
        with httpx.Client(base_url=running.url, timeout=30) as http:
            assert http.get("/frozen").status_code == 404  # connected, Redis answers
            proxy.delay_all(REDIS_TIMEOUT_SECONDS * 10)
            began = time.monotonic()
            answer = http.get("/frozen")
            waited = time.monotonic() - began
    assert answer.status_code == 503, answer.text
    assert answer.headers["retry-after"] == RETRY_AFTER
    # The reply cannot come sooner than the timeout; a doubled timeout overruns the room.
    assert REDIS_TIMEOUT_SECONDS <= waited < REDIS_TIMEOUT_SECONDS * 2, waited


def _connect(url: str) -> socket.socket:
    parts = urlsplit(url)
    return socket.create_connection((parts.hostname, parts.port), timeout=120)


def _seconds_until_answer_or_close(sock: socket.socket, began: float) -> tuple[float, bytes]:
    answer = read_until_close(sock)
    return time.monotonic() - began, answer


def test_head_and_body_timeouts(plain: RunningFunction) -> None:
    """A head that never ends is closed after HEAD_TIMEOUT_SECONDS, a body that never comes is a
    408 after BODY_TIMEOUT_SECONDS; Flask mode bounds both by their sum, from the connection's
    start. Both connections wait side by side."""
    results: dict[str, tuple[float, bytes]] = {}

    def wait(kind: str, sent: bytes) -> None:
        with _connect(plain.url) as sock:
            began = time.monotonic()
            sock.sendall(sent)
            results[kind] = _seconds_until_answer_or_close(sock, began)

    head = b"GET /slow-head HTTP/1.1\r\nHost: test\r\nX-Never-Ends: "
    body = (b"PUT /slow-body HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            b"Content-Length: 10\r\n\r\n{}")  # fmt: skip
    threads = [threading.Thread(target=wait, args=("head", head)),
               threading.Thread(target=wait, args=("body", body))]  # fmt: skip
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    head_seconds, head_answer = results["head"]
    body_seconds, body_answer = results["body"]
    assert body_answer.startswith(b"HTTP/1.1 408"), body_answer[:200]
    assert b'"request_timeout"' in body_answer
    assert not head_answer.startswith(b"HTTP/1.1 2"), head_answer[:200]
    if plain.entry_point == "handle":
        assert HEAD_TIMEOUT_SECONDS <= head_seconds < HEAD_TIMEOUT_SECONDS + ROOM_SECONDS
        assert BODY_TIMEOUT_SECONDS <= body_seconds < BODY_TIMEOUT_SECONDS + ROOM_SECONDS
    else:
        both = HEAD_TIMEOUT_SECONDS + BODY_TIMEOUT_SECONDS
        for seconds in (head_seconds, body_seconds):
            assert both <= seconds < both + ROOM_SECONDS, (head_seconds, body_seconds)


def test_an_idle_keep_alive_connection_closes_after_its_time(plain: RunningFunction) -> None:
    with _connect(plain.url) as sock:
        sock.sendall(b"GET /health/liveness HTTP/1.1\r\nHost: test\r\n\r\n")
        # The whole answer first: a server may send its head and its body in two writes.
        answer = b""
        while b"\r\n\r\n" not in answer or len(answer.partition(b"\r\n\r\n")[2]) < int(
            re.search(rb"(?i)content-length: *(\d+)", answer.partition(b"\r\n\r\n")[0])[1]
        ):
            answer += sock.recv(65536)
        began = time.monotonic()
        assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
        seconds, more = _seconds_until_answer_or_close(sock, began)
    assert more == b""
    # The server's clock starts when it has sent the answer, a moment before this read ends.
    assert KEEPALIVE_SECONDS - 0.1 <= seconds < KEEPALIVE_SECONDS + ROOM_SECONDS, seconds
