"""Redis's own refusals, answered alike by every entry point: a Redis loading its data after a
restart, a replica without its master or refusing writes, too many clients. Each is a 503 with
``Retry-After`` that changes nothing; the function's connections carry its name."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests.conftest import RunningFunction
from tests.support.local_redis import RedisServer, free_port

from .conftest import error_of

ENTRY_POINTS = ["handle", "handle_flask"]
CLIENT_TIMEOUT = httpx.Timeout(10.0)
# Enough keys, each loaded this many microseconds late, for a load of about ten seconds. Redis
# answers (LOADING) between every thousand commands of its append-only file: every 0.1 s.
KEYS, LOAD_DELAY_MICROSECONDS = 100_000, 100


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert error_of(response) == "redis_unavailable"
    assert response.headers["retry-after"] == "1"


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    with RedisServer(tmp_path / "redis", persist=True) as server:
        yield server


@pytest.mark.parametrize("entry_point", ENTRY_POINTS)
def test_a_redis_loading_its_data_is_a_503_then_serves(
    start_function: Any, own_redis: RedisServer, entry_point: str
) -> None:
    """Redis restarted under a running function answers LOADING until its data is back."""
    running: RunningFunction = start_function(
        entry_point, env={"REDIS_URL": own_redis.function_url}
    )
    with (
        httpx.Client(base_url=running.url, timeout=CLIENT_TIMEOUT) as http,
        redis.Redis.from_url(own_redis.url) as admin,
    ):
        assert http.put("/loading", json={"a": 1}).status_code == 201
        with admin.pipeline(transaction=False) as pipe:
            for number in range(KEYS):
                pipe.set(f"filler:{number}", "x")
            pipe.execute()
        own_redis.stop()  # the append-only file holds it all
        own_redis.config = ["--key-load-delay", str(LOAD_DELAY_MICROSECONDS)]
        own_redis.start(loaded=False)
        answers = [http.get("/loading"), http.put("/loading", json={"a": 2}), http.get("/")]
        with pytest.raises(redis.exceptions.BusyLoadingError):
            admin.ping()  # still loading, so every answer above met LOADING
        for answer in answers:
            assert_unavailable(answer)
        while True:  # the load ends; then the same requests are served
            try:
                admin.ping()
                break
            except redis.exceptions.BusyLoadingError:
                time.sleep(0.1)
        assert http.get("/loading").json()["a"] == 1, "a refused PUT changed nothing"
        assert http.put("/loading", json={"a": 2}).status_code == 200
    assert "Traceback" not in running.log()


@pytest.mark.parametrize("entry_point", ENTRY_POINTS)
@pytest.mark.parametrize("serve_stale", ["no", "yes"])
def test_a_replica_without_its_master_is_a_503(
    start_function: Any, tmp_path: Path, entry_point: str, serve_stale: str
) -> None:
    """A replica whose master is away: with stale reads off every command is refused MASTERDOWN;
    with them on, reads are served and writes refused READONLY."""
    absent_master = ["--replicaof", "127.0.0.1", str(free_port())]
    config = [*absent_master, "--replica-serve-stale-data", serve_stale]
    with RedisServer(tmp_path / "replica", config=config) as replica:
        running: RunningFunction = start_function(
            entry_point, env={"REDIS_URL": replica.function_url}
        )
        with httpx.Client(base_url=running.url, timeout=CLIENT_TIMEOUT) as http:
            assert_unavailable(http.put("/replica", json={"a": 1}))
            assert_unavailable(http.delete("/replica"))
            assert_unavailable(http.put("/replica?ttl=keep", json={"a": 1}))  # a script
            if serve_stale == "no":
                assert_unavailable(http.get("/replica"))
            else:
                assert http.get("/replica").status_code == 404
        assert "Traceback" not in running.log()


@pytest.mark.parametrize("entry_point", ENTRY_POINTS)
def test_too_many_clients_is_a_503(start_function: Any, tmp_path: Path, entry_point: str) -> None:
    with RedisServer(tmp_path / "full", config=["--maxclients", "2"]) as full:
        running: RunningFunction = start_function(entry_point, env={"REDIS_URL": full.function_url})
        held = [redis.Redis.from_url(full.url) for _ in range(2)]
        try:
            for connection in held:
                connection.ping()
            with httpx.Client(base_url=running.url, timeout=CLIENT_TIMEOUT) as http:
                assert_unavailable(http.put("/crowded", json={"a": 1}))
                assert_unavailable(http.get("/crowded"))
                for connection in held:
                    connection.close()
                assert http.put("/crowded", json={"a": 1}).status_code == 201
        finally:
            for connection in held:
                connection.close()
        assert "Traceback" not in running.log()


def test_the_function_names_its_connections(
    function: RunningFunction, redis_client: redis.Redis
) -> None:
    if function.process is None:
        pytest.skip("the function at FUNCTION_URL was not started here")
    with httpx.Client(base_url=function.url, timeout=CLIENT_TIMEOUT) as http:
        assert http.get("/names/x").status_code == 404
    users = {client["user"] for client in redis_client.client_list() if client["name"]}
    named = {client["name"] for client in redis_client.client_list() if client["user"]}
    assert "kv-function" in users and "kv-store" in named
    for client in redis_client.client_list():
        if client["user"] == "kv-function":
            assert client["name"] == "kv-store", client
