"""Promises of the docs checked on running servers: timeouts, no retry of a timed-out command,
a Redis restarted while the function idles, the exact Redis key and format, faults kept out of
answers, a chunked body not read to its end, and ``unix://`` Redis URLs."""

from __future__ import annotations

import socket
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests.conftest import RunningFunction, stored_document
from tests.delaying_proxy import DelayingProxy
from tests.support.local_redis import RedisServer

from .conftest import error_of

ENTRY_POINTS = ["handle", "handle_flask"]
TIMEOUT_SECONDS = 0.5  # REDIS_TIMEOUT_SECONDS of the servers below


@pytest.fixture
def prefix() -> str:
    """A KEY_PREFIX no other test uses, so the keys a test finds are its own; under kv:, where
    the function's Redis user may write."""
    return f"kv:t{uuid.uuid4().hex[:8]}:"


@pytest.mark.parametrize("entry_point", ENTRY_POINTS)
def test_slow_redis_is_a_503_within_the_timeout_and_not_retried(
    start_function: Any, redis_server: RedisServer, redis_client: redis.Redis, prefix: str,
    entry_point: str,
) -> None:  # fmt: skip
    with DelayingProxy(redis_server.port) as proxy:
        env = {"REDIS_URL": proxy.url, "REDIS_TIMEOUT_SECONDS": str(TIMEOUT_SECONDS),
               "KEY_PREFIX": prefix}  # fmt: skip
        running: RunningFunction = start_function(entry_point, env=env)
        with httpx.Client(base_url=running.url, timeout=10) as http:
            assert http.put("/slow", json={"a": 1}).status_code == 201
            # Replies on the open connection now arrive after 3x the timeout: a server waiting
            # 4x as long would answer, and so would one retrying on a new connection.
            proxy.delay_open_connections(TIMEOUT_SECONDS * 3)
            response = http.get("/")
            assert response.status_code == 503, response.text
            # The hit left for Redis and no reply came: it may have been counted (it was).
            assert error_of(response) == "outcome_unknown"
            assert response.headers["retry-after"] == "1"
            time.sleep(TIMEOUT_SECONDS * 4)  # every delayed reply has arrived
            # The timed-out INCR ran in Redis exactly once: it was not sent again.
            assert redis_client.get(f"{prefix}count") == b"1"
            proxy.delay_all(TIMEOUT_SECONDS * 3)  # new connections are slow too
            assert http.get("/slow").status_code == 503
    assert redis_client.get(f"{prefix}count") == b"1"


@pytest.mark.parametrize("entry_point", ENTRY_POINTS)
def test_a_hit_whose_connection_drops_after_redis_has_it_is_counted_once(
    start_function: Any, redis_server: RedisServer, redis_client: redis.Redis, prefix: str,
    entry_point: str,
) -> None:  # fmt: skip
    with DelayingProxy(redis_server.port) as proxy:
        env = {"REDIS_URL": proxy.url, "KEY_PREFIX": prefix}
        running: RunningFunction = start_function(entry_point, env=env)
        with httpx.Client(base_url=running.url, timeout=10) as http:
            assert http.get("/").text == "Count is 1."
            proxy.drop_after_next_commands(1)  # Redis counts the hit; its reply is lost
            response = http.get("/")
            assert response.status_code == 503, response.text
            assert error_of(response) == "outcome_unknown"
            assert redis_client.get(f"{prefix}count") == b"2", "the INCR was sent again"
            assert http.get("/").text == "Count is 3."


@pytest.mark.parametrize("entry_point", ENTRY_POINTS)
def test_redis_restarted_while_idle_is_not_a_503(
    start_function: Any, tmp_path: Path, entry_point: str
) -> None:
    with RedisServer(tmp_path / "redis", persist=True) as own:
        running: RunningFunction = start_function(entry_point, env={"REDIS_URL": own.url})
        with httpx.Client(base_url=running.url, timeout=10) as http:
            assert http.put("/kept", json={"v": 1}).status_code == 201
            assert http.get("/").text == "Count is 1."
            own.stop()  # the pooled connections die while no request runs
            own.start()
            assert http.get("/").text == "Count is 2."
            assert http.get("/kept").json()["v"] == 1


@pytest.mark.parametrize("entry_point", ENTRY_POINTS)
def test_resource_lands_at_its_documented_key(
    start_function: Any, redis_client: redis.Redis, prefix: str, entry_point: str
) -> None:
    running: RunningFunction = start_function(entry_point, env={"KEY_PREFIX": prefix})
    with httpx.Client(base_url=running.url, timeout=10) as http:
        put = http.put("/a/b/", params={"ttl": "100"}, json={"z": [1, None], "é": "ü"})
        assert put.status_code == 201
        assert http.get("/").status_code == 200
    last_updated = put.json()["last_updated"]
    assert sorted(redis_client.keys(f"{prefix}*")) == [f"{prefix}count".encode(),
                                                        f"{prefix}r:/a/b".encode()]  # fmt: skip
    stored = redis_client.get(f"{prefix}r:/a/b") or b""
    # The expiry in Unix milliseconds, a space, then one compact JSON string: the document as
    # sent, then last_updated. Redis expires the key at the same moment.
    expires_at_ms, _, document = stored.partition(b" ")
    assert document == b'{"z":[1,null],"\\u00e9":"\\u00fc","last_updated":%d}' % last_updated
    assert expires_at_ms.isdigit()
    redis_expires_at_ms = time.time() * 1000 + redis_client.pttl(f"{prefix}r:/a/b")
    assert abs(int(expires_at_ms) - redis_expires_at_ms) < 1000
    assert 95_000 <= int(expires_at_ms) - time.time() * 1000 <= 100_000
    assert redis_client.get(f"{prefix}count") == b"1"


@pytest.mark.parametrize("entry_point", ENTRY_POINTS)
def test_a_fault_answers_without_its_details(
    start_function: Any, redis_client: redis.Redis, prefix: str, entry_point: str
) -> None:
    redis_client.rpush(f"{prefix}r:/not-a-document", "x")  # a key of the wrong type
    running: RunningFunction = start_function(entry_point, env={"KEY_PREFIX": prefix})
    with httpx.Client(base_url=running.url, timeout=10) as http:
        response = http.get("/not-a-document")
    assert error_of(response) == "internal"
    for detail in ("WRONGTYPE", "Traceback", "ResponseError", "function/"):
        assert detail not in response.text
    assert "WRONGTYPE" in running.log()


def test_a_chunked_body_is_not_read_to_its_end(start_function: Any) -> None:
    """Past MAX_BODY_BYTES the answer is 413 while the client is still sending: the server does
    not wait for the end of a chunked body. (Flask mode hands the body over to gunicorn, which
    reads it whole before it answers; ``handle`` is the deployed entry point.)"""
    running: RunningFunction = start_function("handle", env={"MAX_BODY_BYTES": "1000"})
    port = int(running.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            b"PUT /chunked HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        chunk = b'{"a":"' + b"x" * 494
        for _ in range(4):  # 2000 bytes, and the last chunk never comes
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            chunk = b"x" * 500
        answer = sock.recv(65536)  # a server reading to the end would never answer: timeout
    status_line = answer.split(b"\r\n", 1)[0]
    assert status_line == b"HTTP/1.1 413 Request Entity Too Large", answer
    with httpx.Client(base_url=running.url, timeout=10) as http:
        assert http.get("/chunked").status_code == 404


@pytest.mark.parametrize("entry_point", ENTRY_POINTS)
def test_unix_socket_redis_url(start_function: Any, tmp_path: Path, entry_point: str) -> None:
    socket_path = tmp_path / "redis.sock"
    with RedisServer(tmp_path / "redis", config=["--unixsocket", str(socket_path)]) as own:
        running: RunningFunction = start_function(
            entry_point, env={"REDIS_URL": f"unix://{socket_path}"}
        )
        with httpx.Client(base_url=running.url, timeout=10) as http:
            assert http.put("/over-unix", json={"v": 1}).status_code == 201
            assert http.get("/").text == "Count is 1."
        with redis.Redis.from_url(own.url) as direct:
            assert stored_document(direct.get("kv:r:/over-unix"))[1]["v"] == 1
