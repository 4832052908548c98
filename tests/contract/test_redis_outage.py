"""Redis stopped or frozen: fast 503s with Retry-After, healthy probes, recovery without restart."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import RunningFunction
from tests.support.local_redis import RedisServer

from .conftest import error_of

# A hung request fails the test through this client timeout; the server's own bound is ~1 s.
CLIENT_TIMEOUT = httpx.Timeout(5.0)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    with RedisServer(tmp_path / "redis") as server:
        yield server


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert error_of(response) == "redis_unavailable"
    assert response.headers["retry-after"] == "1"


def assert_working(http: httpx.Client) -> None:
    assert http.put("/outage/doc", json={"alive": True}).status_code in (200, 201)
    assert http.get("/outage/doc").json()["alive"] is True
    assert http.get("/").status_code == 200


@pytest.mark.parametrize("entry_point", ["handle", "handle_flask"])
def test_redis_stopped_then_restarted(
    start_function: Any, own_redis: RedisServer, entry_point: str
) -> None:
    running: RunningFunction = start_function(entry_point, env={"REDIS_URL": own_redis.url})
    with httpx.Client(base_url=running.url, timeout=CLIENT_TIMEOUT) as http:
        assert_working(http)

        own_redis.stop()
        for _ in range(3):
            assert_unavailable(http.get("/outage/doc"))
            assert_unavailable(http.put("/outage/doc", json={"alive": False}))
            assert_unavailable(http.get("/"))
        # Probes answer from the process: an outage must not take every pod out of service.
        assert http.get("/health/readiness").status_code == 200
        assert http.get("/health/liveness").status_code == 200

        own_redis.start()  # same port, empty data: persistence is off in this test
        assert http.get("/outage/doc").status_code == 404
        assert_working(http)


@pytest.mark.parametrize("entry_point", ["handle", "handle_flask"])
def test_redis_frozen_then_thawed(
    start_function: Any, own_redis: RedisServer, entry_point: str
) -> None:
    running: RunningFunction = start_function(entry_point, env={"REDIS_URL": own_redis.url})
    assert own_redis.process is not None
    pid = own_redis.process.pid
    with httpx.Client(base_url=running.url, timeout=CLIENT_TIMEOUT) as http:
        assert_working(http)
        os.kill(pid, signal.SIGSTOP)  # accepts connections, answers nothing
        try:
            # The write leaves on the open connection and no reply comes: it may have been
            # applied, and the answer says so rather than "unavailable".
            unconfirmed = http.put("/outage/doc", json={"alive": "maybe"})
            assert unconfirmed.status_code == 503, unconfirmed.text
            assert error_of(unconfirmed) == "outcome_unknown"
            assert unconfirmed.headers["retry-after"] == "1"
            assert "may have been stored" in unconfirmed.json()["message"]
            assert_unavailable(http.get("/outage/doc"))  # a read changed nothing
            assert http.get("/health/readiness").status_code == 200
        finally:
            os.kill(pid, signal.SIGCONT)
        # Redis resumed and ran the write: it was applied, as the answer allowed.
        assert http.get("/outage/doc").json()["alive"] == "maybe"
        assert_working(http)


def test_password_in_the_redis_url(start_function: Any, tmp_path: Path) -> None:
    with RedisServer(tmp_path / "locked", password="s3cret/with:chars") as locked:
        assert "s3cret%2Fwith%3Achars@" in locked.url  # percent-encoded, as URLs want
        running: RunningFunction = start_function("handle", env={"REDIS_URL": locked.url})
        with httpx.Client(base_url=running.url, timeout=CLIENT_TIMEOUT) as http:
            assert_working(http)

        wrong = locked.url.replace("s3cret%2Fwith%3Achars", "wrong")
        running = start_function("handle", env={"REDIS_URL": wrong})
        with httpx.Client(base_url=running.url, timeout=CLIENT_TIMEOUT) as http:
            assert_unavailable(http.get("/"))  # answered, logged, not a crash
        assert "password" in running.log()
