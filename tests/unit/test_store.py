"""Where a ``RedisCall`` meets a real Redis: both clients, timeouts, retries, the script cache.

In-process and fast (one ``redis-server`` for the module, a loopback proxy that delays replies),
so the mutation run uses them. Timeouts here are behaviour, not speed: a reply slower than
``redis_timeout_seconds`` must become a 503 and one faster must not.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import socket
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any
from unittest.mock import ANY

import pytest
import pytest_asyncio
import redis
import redis.asyncio
from redis.backoff import ExponentialBackoff
from redis.exceptions import (
    ClusterDownError,
    ConnectionError,
    NoScriptError,
    ResponseError,
    SlotNotCoveredError,
)

from function import redis_errors, service, storage, store
from function.logs import ThrottledWarning
from function.messages import RedisCall, Request, Response
from function.service import dispatch
from function.settings import Settings
from tests.conftest import stored_document
from tests.delaying_proxy import DelayingProxy
from tests.support.local_redis import RedisServer, free_port

# The setting under test; the proxies below delay by multiples of it. Large enough that a loaded
# machine answers an undelayed command well within it.
TIMEOUT = 0.5
JSON_HEADERS = {"content-type": "application/json"}


def settings_for(url: str, **overrides: Any) -> Settings:
    return Settings(**{"redis_url": url, "redis_timeout_seconds": TIMEOUT, **overrides})


def call(method: str, path: str, body: bytes = b"", query: bytes = b"") -> RedisCall:
    outcome = dispatch(Request(method, path.encode(), query, JSON_HEADERS, body), Settings())
    assert isinstance(outcome, RedisCall)
    return outcome


def assert_unavailable(response: Response) -> None:
    assert response.status == 503
    assert json.loads(response.body)["error"] == "redis_unavailable"
    assert response.headers == {"Retry-After": "1"}


def assert_unconfirmed(response: Response, message: str = service.UNCONFIRMED_HIT) -> None:
    """The answer to a change sent to Redis whose reply did not come: it may have run."""
    assert response.status == 503
    assert json.loads(response.body) == {"error": "outcome_unknown", "message": message}
    assert response.headers == {"Retry-After": "1"}


def assert_overloaded(response: Response) -> None:
    assert response.status == 503
    assert json.loads(response.body) == {
        "error": "overloaded",
        "message": "the service is busy; try again shortly",
    }
    assert response.headers == {"Retry-After": "1"}


@pytest.fixture
def sync_client(server: RedisServer, direct: redis.Redis) -> Iterator[redis.Redis]:
    client = store.sync_client(settings_for(server.url))
    yield client
    client.close()


@pytest_asyncio.fixture
async def async_client(
    server: RedisServer, direct: redis.Redis
) -> AsyncIterator[redis.asyncio.Redis]:
    client = store.async_client(settings_for(server.url))
    yield client
    await client.aclose()


# --- the round trip -----------------------------------------------------------------------------


def test_sync_round_trip(sync_client: redis.Redis, direct: redis.Redis) -> None:
    created = store.run_sync(sync_client, call("PUT", "/a", b'{"x": 1}', b"ttl=100"))
    assert created.status == 201
    assert stored_document(direct.get("kv:r:/a"))[1]["x"] == 1
    assert 99 <= direct.ttl("kv:r:/a") <= 100
    read = store.run_sync(sync_client, call("GET", "/a"))
    assert (read.status, json.loads(read.body)["x"]) == (200, 1)
    assert store.run_sync(sync_client, call("PUT", "/a", b"{}")).status == 200
    assert store.run_sync(sync_client, call("DELETE", "/a")).status == 204
    assert store.run_sync(sync_client, call("GET", "/a")).status == 404
    assert store.run_sync(sync_client, call("GET", "/")).body == b"Count is 1."
    assert direct.get("kv:count") == b"1"


def test_keep_and_preconditions_write_the_expiry_into_the_value(
    sync_client: redis.Redis, direct: redis.Redis
) -> None:
    assert store.run_sync(sync_client, call("PUT", "/k", b'{"v": 1}', b"ttl=100")).status == 201
    expires_at_ms, _ = stored_document(direct.get("kv:r:/k"))
    kept = store.run_sync(sync_client, call("PUT", "/k", b'{"v": 2}', b"ttl=keep"))
    assert (kept.status, json.loads(kept.body)["v"]) == (200, 2)
    assert 99 <= json.loads(kept.body)["ttl"] <= 100
    assert stored_document(direct.get("kv:r:/k")) == (expires_at_ms, {"v": 2, "last_updated": ANY})
    assert abs(time.time() * 1000 + direct.pttl("kv:r:/k") - expires_at_ms) < 1000
    tag = kept.headers["ETag"]
    assert tag == f'"{hashlib.sha1(direct.get("kv:r:/k") or b"").hexdigest()}"'
    conditional = Request("PUT", b"/k", b"ttl=50", {**JSON_HEADERS, "if-match": tag}, b"{}")
    outcome = dispatch(conditional, Settings())
    assert isinstance(outcome, RedisCall)
    assert store.run_sync(sync_client, outcome).status == 200
    assert 49 <= direct.ttl("kv:r:/k") <= 50
    assert store.run_sync(sync_client, outcome).status == 412  # the tag has changed
    new = store.run_sync(sync_client, call("PUT", "/new", b"{}", b"ttl=keep"))
    assert (new.status, json.loads(new.body)["ttl"]) == (201, 31_536_000)  # the default


def test_values_without_their_expiry_are_read_and_kept(
    sync_client: redis.Redis, direct: redis.Redis
) -> None:
    """A value as written before the expiry was kept in it: bare JSON, the key's own TTL."""
    direct.set("kv:r:/old", b'{"v":1,"last_updated":5}', ex=300)
    read = store.run_sync(sync_client, call("GET", "/old"))
    assert read.status == 200
    assert json.loads(read.body) == {"v": 1, "last_updated": 5, "ttl": ANY}
    assert 299 <= json.loads(read.body)["ttl"] <= 300
    kept = store.run_sync(sync_client, call("PUT", "/old", b'{"v": 2}', b"ttl=keep"))
    assert kept.status == 200 and 299 <= json.loads(kept.body)["ttl"] <= 300
    expires_at_ms, document = stored_document(direct.get("kv:r:/old"))
    assert document["v"] == 2
    assert abs(time.time() * 1000 + direct.pttl("kv:r:/old") - expires_at_ms) < 1000
    assert 298_000 <= expires_at_ms - time.time() * 1000 <= 300_000


@pytest.mark.asyncio
async def test_async_round_trip(async_client: redis.asyncio.Redis, direct: redis.Redis) -> None:
    created = await store.run_async(async_client, call("PUT", "/a", b'{"x": 1}', b"ttl=100"))
    assert created.status == 201
    assert stored_document(direct.get("kv:r:/a"))[1]["x"] == 1
    read = await store.run_async(async_client, call("GET", "/a"))
    assert (read.status, json.loads(read.body)["x"]) == (200, 1)
    assert (await store.run_async(async_client, call("DELETE", "/a"))).status == 204
    assert (await store.run_async(async_client, call("GET", "/"))).body == b"Count is 1."


# --- a restarted Redis: empty script cache, dropped connections ----------------------------------


def test_sync_script_cache_emptied(sync_client: redis.Redis, direct: redis.Redis) -> None:
    store.run_sync(sync_client, call("PUT", "/a", b'{"x": 1}'))
    direct.script_flush()
    assert store.run_sync(sync_client, call("GET", "/a")).status == 200


@pytest.mark.asyncio
async def test_async_script_cache_emptied(
    async_client: redis.asyncio.Redis, direct: redis.Redis
) -> None:
    await store.run_async(async_client, call("PUT", "/a", b'{"x": 1}'))
    direct.script_flush()
    read = await store.run_async(async_client, call("GET", "/a"))
    assert (read.status, json.loads(read.body)["x"]) == (200, 1)


@pytest.mark.asyncio
async def test_async_values_without_their_expiry_are_read_and_kept(
    async_client: redis.asyncio.Redis, direct: redis.Redis
) -> None:
    direct.set("kv:r:/old", b'{"v":1,"last_updated":5}', ex=300)
    read = await store.run_async(async_client, call("GET", "/old"))
    assert read.status == 200
    assert json.loads(read.body) == {"v": 1, "last_updated": 5, "ttl": ANY}
    kept = await store.run_async(async_client, call("PUT", "/old", b'{"v": 2}', b"ttl=keep"))
    assert kept.status == 200 and 299 <= json.loads(kept.body)["ttl"] <= 300
    assert stored_document(direct.get("kv:r:/old"))[1]["v"] == 2


UNKNOWN_SCRIPT = RedisCall(("EVALSHA", "0" * 40, 0), lambda reply: Response(200))


def test_sync_unknown_script_without_fallback_is_a_fault(sync_client: redis.Redis) -> None:
    with pytest.raises(NoScriptError):
        store.run_sync(sync_client, UNKNOWN_SCRIPT)


@pytest.mark.asyncio
async def test_async_unknown_script_without_fallback_is_a_fault(
    async_client: redis.asyncio.Redis,
) -> None:
    with pytest.raises(NoScriptError):
        await store.run_async(async_client, UNKNOWN_SCRIPT)


def test_sync_dropped_connection_is_retried_once(
    sync_client: redis.Redis, direct: redis.Redis
) -> None:
    assert store.run_sync(sync_client, call("GET", "/")).status == 200
    assert direct.client_kill_filter(_type="normal", skipme=True) >= 1
    assert store.run_sync(sync_client, call("GET", "/")).body == b"Count is 2."


def test_other_redis_errors_are_faults(sync_client: redis.Redis, direct: redis.Redis) -> None:
    direct.rpush("kv:r:/list", "x")
    with pytest.raises(ResponseError, match="WRONGTYPE"):
        store.run_sync(sync_client, call("GET", "/list"))


# --- Redis absent or slow -----------------------------------------------------------------------


@pytest.fixture
def outage_log(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> pytest.LogCaptureFixture:
    """The outage warnings of this test alone: a fresh throttle that holds nothing back."""
    monkeypatch.setattr(service, "_warn_unavailable", ThrottledWarning(service.log, 0.0))
    caplog.set_level(logging.WARNING, logger="function.service")
    return caplog


def test_redis_down_is_unavailable_and_logged(outage_log: pytest.LogCaptureFixture) -> None:
    port = free_port()
    with store.sync_client(settings_for(f"redis://127.0.0.1:{port}/0")) as client:
        assert_unavailable(store.run_sync(client, call("GET", "/")))
    (record,) = outage_log.records
    assert record.getMessage().startswith("Redis did not answer: Error 111 connecting to")
    assert str(port) in record.getMessage()


@pytest.mark.asyncio
async def test_async_redis_down_is_unavailable_and_logged(
    outage_log: pytest.LogCaptureFixture,
) -> None:
    port = free_port()
    client = store.async_client(settings_for(f"redis://127.0.0.1:{port}/0"))
    assert_unavailable(await store.run_async(client, call("GET", "/")))
    await client.aclose()
    (record,) = outage_log.records
    assert record.getMessage().startswith("Redis did not answer: Error ")
    assert str(port) in record.getMessage()


def test_sync_reply_slower_than_the_timeout_is_unconfirmed_and_not_retried(
    server: RedisServer, direct: redis.Redis
) -> None:
    with (
        DelayingProxy(server.port) as proxy,
        store.sync_client(settings_for(proxy.url)) as client,
    ):
        assert store.run_sync(client, call("GET", "/")).body == b"Count is 1."
        # Under 4x the setting: a longer timeout would answer. Only the open connection is slow,
        # so a client that retried on a new one would answer too.
        proxy.delay_open_connections(TIMEOUT * 3)
        assert_unconfirmed(store.run_sync(client, call("GET", "/")))
        time.sleep(TIMEOUT * 4)
    # The timed-out INCR ran once: a retry would have counted the hit twice; and it did run, so
    # the answer did not say it had not.
    assert direct.get("kv:count") == b"2"


@pytest.mark.asyncio
async def test_async_reply_slower_than_the_timeout_is_unconfirmed_and_not_retried(
    server: RedisServer, direct: redis.Redis
) -> None:
    with DelayingProxy(server.port) as proxy:
        client = store.async_client(settings_for(proxy.url))
        assert (await store.run_async(client, call("GET", "/"))).body == b"Count is 1."
        proxy.delay_open_connections(TIMEOUT * 3)
        assert_unconfirmed(await store.run_async(client, call("GET", "/")))
        await client.aclose()
        time.sleep(TIMEOUT * 4)
    assert direct.get("kv:count") == b"2"


@pytest.mark.parametrize(
    ("request_", "message"),
    [(("PUT", "/late", b'{"a": 1}'), service.UNCONFIRMED_PUT),
     (("PUT", "/late", b'{"a": 1}', b"ttl=keep"), service.UNCONFIRMED_PUT),
     (("DELETE", "/late"), service.UNCONFIRMED_DELETE)],
)  # fmt: skip
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_change_whose_reply_is_late_is_unconfirmed_and_read_is_unavailable(
    server: RedisServer, direct: redis.Redis, request_: tuple[Any, ...], message: str, mode: str
) -> None:
    """A change that left for Redis and got no reply in time may have been applied: the answer
    says so. A read that timed out changed nothing: Redis is unavailable."""
    direct.set("kv:r:/late", b"%d {}" % (time.time_ns() // 1_000_000 + 60_000))
    direct.script_load(storage.WRITE.source)  # else the late reply is NOSCRIPT: nothing ran

    def late(request: RedisCall) -> Response:
        """The answer to ``request`` on a fresh client whose connection is then made slow."""
        warm = call("GET", "/late")  # opens the connection that alone is made slow
        if mode == "sync":
            with store.sync_client(settings_for(proxy.url)) as client:
                assert store.run_sync(client, warm).status == 200
                proxy.delay_open_connections(TIMEOUT * 3)
                return store.run_sync(client, request)

        async def on_async() -> Response:
            client = store.async_client(settings_for(proxy.url))
            assert (await store.run_async(client, warm)).status == 200
            proxy.delay_open_connections(TIMEOUT * 3)
            answer = await store.run_async(client, request)
            await client.aclose()
            return answer

        return asyncio.run(on_async())

    with DelayingProxy(server.port) as proxy:
        answers = [late(call("GET", "/late")), late(call(*request_))]
        time.sleep(TIMEOUT * 4)
    read, changed = answers
    assert_unconfirmed(changed, message)
    assert_unavailable(read)
    stored = direct.get("kv:r:/late")
    if request_[0] == "PUT":
        assert stored_document(stored)[1]["a"] == 1, "the unconfirmed write was applied"
    else:
        assert stored is None, "the unconfirmed delete was applied"


def test_sync_every_reply_slow_is_unavailable(server: RedisServer, direct: redis.Redis) -> None:
    with (
        DelayingProxy(server.port, TIMEOUT * 3) as proxy,
        store.sync_client(settings_for(proxy.url)) as client,
    ):
        assert_unavailable(store.run_sync(client, call("GET", "/")))


@pytest.mark.parametrize("after_redis_has_it", [False, True])
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_command_whose_connection_drops_is_not_sent_again(
    server: RedisServer,
    direct: redis.Redis,
    mode: str,
    after_redis_has_it: bool,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The client cannot tell a command lost on its way from one Redis ran before the connection
    dropped: either way the hit is answered as unconfirmed, and counted at most once."""

    def drop(proxy: DelayingProxy) -> None:
        if after_redis_has_it:
            proxy.drop_after_next_commands(1)
        else:
            proxy.drop_next_commands(1)

    monkeypatch.setattr(service, "_warn_unavailable", ThrottledWarning(service.log, 10.0))
    with DelayingProxy(server.port) as proxy:
        settings = settings_for(proxy.url, redis_timeout_seconds=10.0)  # only the drop fails
        hits = [call("GET", "/") for _ in range(3)]
        if mode == "sync":
            with store.sync_client(settings) as client:
                first = store.run_sync(client, hits[0])
                drop(proxy)
                dropped = store.run_sync(client, hits[1])
                after = store.run_sync(client, hits[2])
        else:

            async def on_async() -> list[Response]:
                client = store.async_client(settings)
                answers = [await store.run_async(client, hits[0])]
                drop(proxy)
                answers += [await store.run_async(client, hit) for hit in hits[1:]]
                await client.aclose()
                return answers

            first, dropped, after = asyncio.run(on_async())
    assert first.body == b"Count is 1."
    assert_unconfirmed(dropped)
    # The log says why: the connection's own words, not those of some other error.
    said = [r.getMessage() for r in caplog.records if "did not confirm" in r.getMessage()]
    assert len(said) == 1 and said[0].startswith("Redis did not confirm a change: "), said
    assert "onnection" in said[0], said
    counted = 2 if after_redis_has_it else 1  # the dropped hit ran once or not at all
    assert after.body == b"Count is %d." % (counted + 1)
    assert direct.get("kv:count") == b"%d" % (counted + 1)


# handle's shared connection (store.async_client) has its own tests: test_redis_conn.py.
@pytest.mark.parametrize("make", [store.sync_client])
def test_pool_options_follow_the_settings(make: Any) -> None:
    settings = Settings(
        redis_url="redis://127.0.0.1:1/3", redis_timeout_seconds=0.3, redis_max_connections=5
    )
    pool = make(settings).connection_pool
    assert pool.max_connections == 5
    assert pool.connection_kwargs["socket_timeout"] == 0.3
    assert pool.connection_kwargs["socket_connect_timeout"] == 0.3
    assert pool.connection_kwargs["health_check_interval"] == 0
    assert pool.connection_kwargs["db"] == 3


def test_sync_pool_exhausted_is_overloaded(server: RedisServer, direct: redis.Redis) -> None:
    with store.sync_client(settings_for(server.url, redis_max_connections=1)) as client:
        held = client.connection_pool.get_connection()
        assert_overloaded(store.run_sync(client, call("GET", "/")))
        client.connection_pool.release(held)
        assert store.run_sync(client, call("GET", "/")).status == 200


def test_unix_socket_url(tmp_path_factory: pytest.TempPathFactory) -> None:
    """``unix://`` is a documented REDIS_URL: the setting accepts it, the client reaches Redis."""
    data_dir = tmp_path_factory.mktemp("unix")
    socket_path = data_dir / "redis.sock"
    with RedisServer(data_dir, config=["--unixsocket", str(socket_path)]):
        settings = Settings.from_env({"REDIS_URL": f"unix://{socket_path}"})
        with store.sync_client(settings) as client:
            assert store.run_sync(client, call("GET", "/")).body == b"Count is 1."


@pytest.fixture
def fresh_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Throttled warnings that have not yet spoken, whatever earlier tests logged."""
    for name in ("_warn_overloaded", "_warn_storage_full"):
        monkeypatch.setattr(service, name, ThrottledWarning(service.log, 10.0))


@pytest.fixture
def full_redis(direct: redis.Redis) -> Iterator[None]:
    """Redis at its memory limit with noeviction: every write is refused with OOM."""
    previous = direct.config_get("maxmemory")["maxmemory"]
    direct.config_set("maxmemory-policy", "noeviction")
    direct.config_set("maxmemory", "1")
    yield
    direct.config_set("maxmemory", previous)


def assert_storage_full(response: Response, caplog: pytest.LogCaptureFixture) -> None:
    assert response.status == 507
    assert json.loads(response.body) == {
        "error": "storage_full",
        "message": "there is no room to store this; nothing was changed",
    }
    assert [r.getMessage().startswith("Redis is out of memory") for r in caplog.records] == [True]
    # Redis's own words, from a plain command or from inside a script
    assert "command not allowed when used memory" in caplog.records[0].getMessage()


def test_sync_write_refused_for_memory_is_storage_full(
    sync_client: redis.Redis,
    direct: redis.Redis,
    full_redis: None,
    fresh_warnings: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        response = store.run_sync(sync_client, call("PUT", "/full", b"{}"))
    assert_storage_full(response, caplog)
    assert direct.exists("kv:r:/full") == 0


@pytest.mark.asyncio
async def test_async_write_refused_for_memory_is_storage_full(
    async_client: redis.asyncio.Redis,
    direct: redis.Redis,
    full_redis: None,
    fresh_warnings: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        response = await store.run_async(async_client, call("PUT", "/full", b"{}"))
    assert_storage_full(response, caplog)
    assert direct.exists("kv:r:/full") == 0


def test_out_of_memory_is_told_by_class_or_by_redis_6_script_error() -> None:
    from redis.exceptions import OutOfMemoryError

    full = redis_errors.Failure.FULL
    error = OutOfMemoryError("command not allowed when used memory > x", status_code="OOM")
    assert redis_errors.classify(error) is full
    wrapped = "Error running script (call to f_1): @user_script:9: -OOM command not allowed"
    assert redis_errors.classify(ResponseError(wrapped)) is full
    assert redis_errors.classify(ResponseError("WRONGTYPE Operation against a key")) is None
    assert redis_errors.classify(ResponseError("-oom command not allowed")) is None


def test_overload_is_logged_with_the_error(
    server: RedisServer, direct: redis.Redis, fresh_warnings: None, caplog: pytest.LogCaptureFixture
) -> None:
    with store.sync_client(settings_for(server.url, redis_max_connections=1)) as client:
        held = client.connection_pool.get_connection()
        with caplog.at_level(logging.WARNING):
            assert_overloaded(store.run_sync(client, call("GET", "/")))
        client.connection_pool.release(held)
    (record,) = caplog.records
    assert record.getMessage().startswith("every Redis connection of this process is busy: ")
    assert "None" not in record.getMessage() and "connections" in record.getMessage().lower()


@pytest.mark.asyncio
async def test_async_overload_is_answered_503_and_logged_with_the_error(
    server: RedisServer, direct: redis.Redis, fresh_warnings: None, caplog: pytest.LogCaptureFixture
) -> None:
    client = store.async_client(settings_for(server.url, redis_max_connections=1))
    blocked = asyncio.ensure_future(client.execute_command("BLPOP", "waiting", 0.2))
    await asyncio.sleep(0.02)
    with caplog.at_level(logging.WARNING):
        assert_overloaded(await store.run_async(client, call("GET", "/")))
    assert await blocked is None
    await client.aclose()
    (record,) = caplog.records
    assert record.getMessage().startswith("every Redis connection of this process is busy: ")
    assert "Too many connections" in record.getMessage()


# --- Redis Cluster (REDIS_CLUSTER=1): one real node that owns every slot -------------------------


def cluster_port() -> int:
    """A free port whose cluster bus port (10000 higher, so at most 65535) is free too."""
    while True:
        port = free_port()
        if port <= 55535:
            with socket.socket() as bus:
                try:
                    bus.bind(("127.0.0.1", port + 10000))
                except OSError:
                    continue
            return port


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    data_dir = tmp_path_factory.mktemp("cluster")
    nodes = ["--cluster-enabled", "yes", "--cluster-config-file", str(data_dir / "nodes.conf")]
    with RedisServer(data_dir, port=cluster_port(), config=nodes) as node:
        with redis.Redis.from_url(node.url) as admin:
            admin.execute_command("CLUSTER", "ADDSLOTS", *range(16384))
            deadline = time.monotonic() + 10
            while b"cluster_state:ok" not in admin.execute_command("CLUSTER", "INFO"):
                assert time.monotonic() < deadline, "the one-node cluster did not come up"
                time.sleep(0.01)
        yield node


def cluster_settings(node: RedisServer) -> Settings:
    return settings_for(node.url, redis_cluster=True, redis_max_connections=5)


def assert_cluster_retry(retry: Any) -> None:
    # Two retries after 0.1 s, 0.2 s: only for errors that say the command did not run.
    assert retry._retries == store.CLUSTER_RETRIES == 2
    assert isinstance(retry._backoff, ExponentialBackoff)
    assert (retry._backoff._cap, retry._backoff._base) == (0.5, 0.1)


def test_sync_cluster_client(cluster: RedisServer) -> None:
    client = store.sync_client(cluster_settings(cluster))
    assert isinstance(client, redis.RedisCluster)
    assert (ClusterDownError, SlotNotCoveredError) == client.ERRORS_ALLOW_RETRY
    assert_cluster_retry(client.retry)
    pool = client.get_default_node().redis_connection.connection_pool
    assert pool.max_connections == 5
    assert pool.connection_kwargs["socket_timeout"] == TIMEOUT
    assert pool.connection_kwargs["socket_connect_timeout"] == TIMEOUT
    assert store.run_sync(client, call("PUT", "/c", b'{"a": 1}')).status == 201
    assert json.loads(store.run_sync(client, call("GET", "/c")).body)["a"] == 1
    client.close()


def test_async_cluster_client(cluster: RedisServer) -> None:
    client = store.async_client(cluster_settings(cluster))
    assert isinstance(client, redis.asyncio.RedisCluster)
    assert (ClusterDownError, SlotNotCoveredError) == client.ERRORS_ALLOW_RETRY
    assert_cluster_retry(client.retry)
    assert client.connection_kwargs["socket_timeout"] == TIMEOUT
    assert client.connection_kwargs["socket_connect_timeout"] == TIMEOUT
    assert client.nodes_manager.connection_kwargs["max_connections"] == 5

    async def round_trip() -> tuple[int, bytes]:
        put = await store.run_async(client, call("PUT", "/ac", b'{"a": 2}'))
        return put.status, (await store.run_async(client, call("GET", "/ac"))).body

    status, body = asyncio.run(round_trip())
    assert status == 201 and json.loads(body)["a"] == 2

    # Its connections belong to the loop that is gone now: redis-py fails with a RuntimeError,
    # which the client answers as a lost node connection: 503, and the next request reconnects.
    async def on_another_loop() -> tuple[Response, Response]:
        return (
            await store.run_async(client, call("GET", "/ac")),
            await store.run_async(client, call("GET", "/ac")),
        )

    lost, reconnected = asyncio.run(on_another_loop())
    assert_unavailable(lost)
    assert reconnected.status == 200

    async def raw_on_another_loop() -> None:
        with pytest.raises(ConnectionError, match=r"^Redis Cluster node connection lost: \w"):
            await client.execute_command("GET", "kv:r:/ac")

    asyncio.run(raw_on_another_loop())


@pytest.mark.parametrize(
    ("raised", "lost"),
    [
        (RuntimeError("unable to perform operation; the handler is closed"), True),
        (AttributeError("'NoneType' object has no attribute 'writelines'"), True),
        (AttributeError("'Connection' object has no attribute 'spam'"), False),
    ],
)
def test_async_cluster_answers_a_connection_torn_down_under_it_as_lost(
    monkeypatch: pytest.MonkeyPatch, raised: Exception, lost: bool
) -> None:
    """What redis-py raises when a node's connection goes while a command or its handshake is
    written (a race, raised here at redis-py's own method): a lost connection, so 503; any
    other AttributeError is a fault and stays one."""

    async def torn_down(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise raised

    monkeypatch.setattr(redis.asyncio.RedisCluster, "execute_command", torn_down)
    client = store.async_client(
        settings_for(f"redis://127.0.0.1:{free_port()}/0", redis_cluster=True)
    )

    async def command() -> BaseException:
        with pytest.raises((ConnectionError, AttributeError)) as failed:
            await client.execute_command("GET", "kv:r:/torn")
        return failed.value

    error = asyncio.run(command())
    if lost:
        assert type(error) is ConnectionError and error.__cause__ is raised
        assert str(error) == f"Redis Cluster node connection lost: {raised}"
    else:
        assert error is raised


def _names(node: RedisServer) -> set[str]:
    """The names of every connection to ``node`` but the one asking."""
    with redis.Redis.from_url(node.url) as admin:
        me = admin.client_id()
        return {client["name"] for client in admin.client_list() if int(client["id"]) != me}


@pytest.mark.parametrize("clustered", [False, True])
def test_every_client_names_its_connections(
    server: RedisServer, cluster: RedisServer, clustered: bool
) -> None:
    """CLIENT LIST shows the function's connections by name, however it reaches Redis."""
    node = cluster if clustered else server
    settings = settings_for(node.url, redis_cluster=clustered)
    with store.sync_client(settings) as client:
        assert store.run_sync(client, call("GET", "/named")).status == 404
        assert _names(node) == {store.CLIENT_NAME}

    async def on_async() -> set[str]:
        client = store.async_client(settings)
        assert (await store.run_async(client, call("GET", "/named"))).status == 404
        names = _names(node)
        await client.aclose()
        return names

    assert asyncio.run(on_async()) == {store.CLIENT_NAME}
