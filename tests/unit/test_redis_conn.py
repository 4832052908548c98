"""The shared connection (``function/redis_conn.py``) against a real Redis: replies meet their own
requests, late replies are dropped, a lost connection fails every waiting request at once, and the
bounds hold. Every test runs twice: on hiredis, and on the pure-Python codec that takes its place
where hiredis cannot be imported (``function/resp.py``)."""

from __future__ import annotations

import asyncio
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.exceptions import (
    ConnectionError,
    NoScriptError,
    ResponseError,
    TimeoutError,
)

from function import resp
from function.redis_conn import Endpoint, SharedConnection
from function.redis_errors import NotSent, QueueFull
from tests.conftest import make_certificate
from tests.support.local_redis import RedisServer, server_binary, supports_tls


@pytest.fixture(autouse=True, params=["hiredis", "redis-py"])
def codec(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> resp.Codec:
    chosen = resp.HIREDIS if request.param == "hiredis" else resp.PYTHON
    assert chosen is not None, "the tests' environment has hiredis"
    monkeypatch.setattr(resp, "CODEC", chosen)
    return chosen


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    with RedisServer(tmp_path / "redis") as running:
        yield running


def connect(server: RedisServer, timeout: float = 1.0, max_pending: int = 64) -> SharedConnection:
    return SharedConnection.from_url(server.url, timeout=timeout, max_pending=max_pending)


def test_concurrent_replies_meet_their_own_requests(server: RedisServer) -> None:
    async def scenario() -> list[bytes]:
        shared = connect(server, max_pending=1000)
        await asyncio.gather(*(shared.execute_command("SET", f"k{i}", f"v{i}") for i in range(500)))
        return await asyncio.gather(*(shared.execute_command("GET", f"k{i}") for i in range(500)))

    assert asyncio.run(scenario()) == [f"v{i}".encode() for i in range(500)]


class _CountedWrites:
    """A transport that counts the writes made through it."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport, self.writes = transport, 0

    def write(self, data: bytes) -> None:
        self.writes += 1
        self.transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


def test_commands_of_requests_woken_in_the_same_turn_leave_in_one_write(
    server: RedisServer,
) -> None:
    async def scenario() -> tuple[list[Any], int]:
        shared = connect(server)
        await shared.execute_command("PING")
        link = shared._link
        assert link is not None and link.transport is not None
        counted = _CountedWrites(link.transport)
        link.transport = counted  # type: ignore[assignment]
        first = link.send(("SET", "a", "1"))
        # Scheduled after the first command: as a request that this turn's replies woke.
        woken: list[asyncio.Future[Any]] = []
        asyncio.get_running_loop().call_soon(lambda: woken.append(link.send(("GET", "a"))))
        replies = [await first, await woken[0]]
        return replies, counted.writes

    assert asyncio.run(scenario()) == ([b"OK", b"1"], 1)


def test_a_late_reply_is_discarded_and_the_next_one_is_not_shifted(server: RedisServer) -> None:
    async def scenario() -> bytes:
        shared = connect(server, timeout=0.2)
        await shared.execute_command("SET", "key", "value")
        with pytest.raises(TimeoutError):
            await shared.execute_command("BLPOP", "empty-list", 0.5)  # answers nil after 0.5 s
        await asyncio.sleep(0.5)  # the nil arrives meanwhile and must be thrown away
        reply: bytes = await shared.execute_command("GET", "key")
        return reply

    assert asyncio.run(scenario()) == b"value"


def test_a_dropped_connection_fails_every_waiting_request_at_once(server: RedisServer) -> None:
    async def scenario() -> tuple[list[BaseException | object], float, bytes]:
        shared = connect(server, timeout=5.0)
        client_id = await shared.execute_command("CLIENT", "ID")
        waiting = [shared.execute_command("BLPOP", "empty-list", 4) for _ in range(3)]
        tasks = [asyncio.ensure_future(call) for call in waiting]
        await asyncio.sleep(0.1)
        started = time.monotonic()
        with redis.Redis.from_url(server.url) as admin:
            admin.execute_command("CLIENT", "KILL", "ID", client_id)
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        elapsed = time.monotonic() - started
        after: bytes = await shared.execute_command("PING")  # reconnects on demand
        return outcomes, elapsed, after

    outcomes, elapsed, after = asyncio.run(scenario())
    assert all(isinstance(outcome, ConnectionError) for outcome in outcomes), outcomes
    assert elapsed < 2.0  # not the 5 s timeout: failed when the connection went
    assert after == b"PONG"


def test_more_waiting_requests_than_allowed_are_refused_at_once(server: RedisServer) -> None:
    async def scenario() -> None:
        shared = connect(server, timeout=2.0, max_pending=2)
        blocked = [asyncio.ensure_future(shared.execute_command("BLPOP", "q", 0.3)) for _ in "ab"]
        await asyncio.sleep(0.05)
        with pytest.raises(QueueFull, match="Too many connections"):
            await shared.execute_command("PING")
        assert await asyncio.gather(*blocked) == [None, None]
        assert await shared.execute_command("PING") == b"PONG"

    asyncio.run(scenario())


def test_errors_keep_redis_py_classes_and_the_database_is_selected(server: RedisServer) -> None:
    async def scenario() -> None:
        shared = SharedConnection.from_url(
            server.url.replace("/0", "/3"), timeout=1.0, max_pending=8
        )
        await shared.execute_command("SET", "in-three", "yes")
        with pytest.raises(NoScriptError):
            await shared.execute_command("EVALSHA", "0" * 40, 0)
        assert await shared.execute_command("GET", "in-three") == b"yes"

    asyncio.run(scenario())
    with redis.Redis.from_url(server.url.replace("/0", "/3")) as db3:
        assert db3.get("in-three") == b"yes"


def test_redis_away_then_back_on_the_same_port(server: RedisServer) -> None:
    async def scenario() -> None:
        shared = connect(server, timeout=0.5)
        assert await shared.execute_command("PING") == b"PONG"
        server.stop()
        for _ in range(3):
            with pytest.raises((ConnectionError, TimeoutError)):
                await shared.execute_command("PING")
        server.start()
        assert await shared.execute_command("PING") == b"PONG"

    asyncio.run(scenario())


def test_a_closed_connection_names_why_to_every_request(server: RedisServer) -> None:
    async def scenario() -> None:
        shared = connect(server, timeout=5.0)
        client_id = await shared.execute_command("CLIENT", "ID")
        waiting = asyncio.ensure_future(shared.execute_command("BLPOP", "empty-list", 4))
        await asyncio.sleep(0.05)
        with redis.Redis.from_url(server.url) as admin:
            admin.execute_command("CLIENT", "KILL", "ID", client_id)
        with pytest.raises(
            ConnectionError, match=r"^connection to Redis lost: Redis closed the connection$"
        ):
            await waiting

        # A socket error is passed on in the same words.
        link = shared._link
        assert await shared.execute_command("PING") == b"PONG"
        assert shared._link is not link and shared._link is not None
        waiting = asyncio.ensure_future(shared.execute_command("BLPOP", "empty-list", 4))
        await asyncio.sleep(0.05)
        shared._link.connection_lost(OSError("reset by peer"))
        with pytest.raises(ConnectionError, match=r"^connection to Redis lost: reset by peer$"):
            await waiting

        # Closed by the client: waiting requests fail, the old link refuses, a new one opens.
        waiting = asyncio.ensure_future(shared.execute_command("BLPOP", "empty-list", 4))
        await asyncio.sleep(0.05)
        closed = shared._link
        await shared.aclose()
        with pytest.raises(
            ConnectionError, match=r"^connection to Redis lost: closed by the client$"
        ):
            await waiting
        with pytest.raises(
            ConnectionError, match=r"^connection to Redis lost: closed by the client$"
        ):
            await closed.send(("PING",))
        assert await shared.execute_command("PING") == b"PONG"
        await shared.aclose()
        await shared.aclose()  # twice is harmless

    asyncio.run(scenario())


def test_a_timed_out_request_says_so(server: RedisServer) -> None:
    async def scenario() -> None:
        shared = connect(server, timeout=0.1)
        with pytest.raises(TimeoutError, match=r"^Timeout reading from Redis$"):
            await shared.execute_command("BLPOP", "empty-list", 0.3)

    asyncio.run(scenario())


def test_each_waiting_request_times_out_at_its_own_deadline(server: RedisServer) -> None:
    async def scenario() -> list[float]:
        shared = connect(server, timeout=0.2)
        await shared.execute_command("PING")
        loop = asyncio.get_running_loop()
        start = loop.time()
        # BLPOP holds the connection for 2 s; the GET sent 0.1 s later waits behind it in Redis.
        first = asyncio.ensure_future(shared.execute_command("BLPOP", "empty-list", 2))
        await asyncio.sleep(0.1)
        second = asyncio.ensure_future(shared.execute_command("GET", "key"))
        ended = []
        for waiting in (first, second):
            with pytest.raises(TimeoutError, match=r"^Timeout reading from Redis$"):
                await waiting
            ended.append(loop.time() - start)
        return ended

    first_ended, second_ended = asyncio.run(scenario())
    # Each at its own deadline (0.2 s and 0.3 s), not when Redis finally answers at 2 s.
    assert 0.2 <= first_ended <= second_ended and 0.3 <= second_ended < 2


@pytest.mark.parametrize("spoke_first", [True, False], ids=["after-a-reply", "never-answered"])
def test_silence_for_twice_the_timeout_with_replies_overdue_drops_the_connection(
    server: RedisServer, spoke_first: bool
) -> None:
    # BLPOP holds the connection: Redis answers nothing behind it until it returns. Silence
    # counts from the last reply, or from the connect when none came yet.
    async def scenario() -> list[BaseException | object]:
        shared = connect(server, timeout=0.2)
        if spoke_first:
            assert await shared.execute_command("PING") == b"PONG"
        first = asyncio.ensure_future(shared.execute_command("BLPOP", "empty-list", 2))
        await asyncio.sleep(0.3)  # first overdue at 0.2 s, but silence (0.2 s) is not 2x yet
        second = asyncio.ensure_future(shared.execute_command("PING"))  # due at 0.5 s
        await asyncio.sleep(0.1)
        third = asyncio.ensure_future(shared.execute_command("PING"))  # due at 0.6 s
        return await asyncio.gather(first, second, third, return_exceptions=True)

    first, second, third = asyncio.run(scenario())
    assert isinstance(first, TimeoutError) and isinstance(second, TimeoutError)
    # At 0.5 s the silence reached 2x the timeout: dropped, and the third fails with it.
    assert isinstance(third, ConnectionError), third
    assert str(third) == ("connection to Redis lost: Redis stopped answering; connection dropped")


def test_an_overdue_reply_on_a_connection_that_spoke_recently_keeps_it(
    server: RedisServer,
) -> None:
    async def scenario() -> tuple[BaseException | object, ...]:
        shared = connect(server, timeout=0.3)
        first = asyncio.ensure_future(shared.execute_command("BLPOP", "empty-list", 0.4))
        await asyncio.sleep(0.2)
        second = asyncio.ensure_future(shared.execute_command("PING"))  # due at 0.5 s
        # At 0.3 s the first is overdue, but 0.3 s of silence is less than 2x the timeout:
        # the connection stays, and the second's reply comes right after BLPOP's at 0.4 s.
        return tuple(await asyncio.gather(first, second, return_exceptions=True))

    first, second = asyncio.run(scenario())
    assert isinstance(first, TimeoutError)
    assert second == b"PONG"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_reconnection_backs_off_from_25_ms_doubling_to_half_a_second(
    server: RedisServer,
) -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        shared = connect(server, timeout=1.0)
        shared.endpoint = Endpoint(port=free_port(), host="127.0.0.1")  # nobody listens there
        assert (shared._failures, shared._next_attempt) == (0, 0.0)
        earliest = loop.time()
        for failures, backoff in enumerate([0.025, 0.05, 0.1, 0.2], start=1):
            with pytest.raises(ConnectionError, match=r"^Error connecting to Redis: "):
                await shared.execute_command("PING")
            failed_at = loop.time()
            assert failed_at >= earliest  # it waited out the back-off before trying again
            assert shared._failures == failures
            assert shared._next_attempt - failed_at == pytest.approx(backoff, abs=0.01)
            earliest = shared._next_attempt
        shared._failures = 30  # long away: the back-off stays at its most
        shared._next_attempt = 0.0
        with pytest.raises(ConnectionError):
            await shared.execute_command("PING")
        assert shared._next_attempt - loop.time() == pytest.approx(0.5, abs=0.01)
        shared._next_attempt = 0.0
        shared.endpoint = Endpoint.from_url(server.url)
        assert await shared.execute_command("PING") == b"PONG"
        assert shared._failures == 0

    asyncio.run(scenario())


def test_a_connection_that_does_not_open_in_time_is_a_timeout() -> None:
    # A listener that accepts TCP but never speaks TLS: the handshake would wait a minute. Nothing
    # was sent, so the error says so (a write is known not to have run).
    with socket.socket() as mute:
        mute.bind(("127.0.0.1", 0))
        mute.listen()
        port = mute.getsockname()[1]

        async def scenario() -> None:
            shared = SharedConnection.from_url(
                f"rediss://127.0.0.1:{port}?ssl_cert_reqs=none", timeout=0.2, max_pending=4
            )
            with pytest.raises(NotSent, match=r"^Timeout connecting to Redis$"):
                await asyncio.wait_for(shared.execute_command("PING"), 5)

        asyncio.run(scenario())


def test_unsent_bytes_over_the_bound_are_refused(server: RedisServer, codec: resp.Codec) -> None:
    command = ("SET", "key", "v" * 1000)
    size = len(codec.pack(command))

    async def one_turn(shared: SharedConnection) -> list[BaseException | object]:
        return await asyncio.gather(
            *(shared.execute_command(*command) for _ in range(7)), return_exceptions=True
        )

    async def scenario() -> None:
        shared = SharedConnection(
            Endpoint.from_url(server.url), timeout=1.0, max_pending=100, max_buffer_bytes=3 * size
        )
        assert connect(server).max_buffer_bytes == 4 * 1024 * 1024
        for _ in range(2):  # on a fresh connection, and again once the first batch has left
            outcomes = await one_turn(shared)
            # Refused once what waits unsent is over the bound: the 4th still fits (3 x size).
            assert outcomes[:4] == [b"OK"] * 4, outcomes
            for refused in outcomes[4:]:
                assert isinstance(refused, QueueFull)
                assert str(refused) == "Too many connections: the write buffer to Redis is full"

    asyncio.run(scenario())


def test_overloaded_names_the_setting(server: RedisServer) -> None:
    async def scenario() -> None:
        shared = connect(server, timeout=1.0, max_pending=1)
        blocked = asyncio.ensure_future(shared.execute_command("BLPOP", "q", 0.1))
        await asyncio.sleep(0.02)
        with pytest.raises(QueueFull) as refused:
            await shared.execute_command("PING")
        assert str(refused.value) == (
            "Too many connections: 1 requests already wait on Redis (REDIS_MAX_CONNECTIONS)"
        )
        assert await blocked is None

    asyncio.run(scenario())


def test_error_replies_keep_their_codes(server: RedisServer) -> None:
    async def scenario() -> None:
        shared = connect(server)
        await shared.execute_command("CONFIG", "SET", "maxmemory", "1")
        await shared.execute_command("CONFIG", "SET", "maxmemory-policy", "noeviction")
        with pytest.raises(
            ResponseError, match=r"^OOM command not allowed when used memory"
        ) as full:
            await shared.execute_command("SET", "key", "value")
        assert full.value.status_code == "OOM"
        await shared.execute_command("CONFIG", "SET", "maxmemory", "0")
        with pytest.raises(NoScriptError, match=r"^No matching script"):
            await shared.execute_command("EVALSHA", "0" * 40, 0)
        await shared.execute_command("SET", "key", "value")
        with pytest.raises(ResponseError) as wrong:
            await shared.execute_command("LPUSH", "key", "x")
        assert type(wrong.value) is ResponseError
        assert str(wrong.value).startswith("WRONGTYPE Operation against a key")
        assert await shared.execute_command("GET", "key") == b"value"
        # redis-py raises a refused AUTH as a connection error; here the connection is fine,
        # so the reply stays a ResponseError in Redis's words.
        with pytest.raises(ResponseError) as refused:
            await shared.execute_command("AUTH", "nobody", "wrong")
        assert type(refused.value) is ResponseError
        assert str(refused.value) == "WRONGPASS invalid username-password pair or user is disabled."
        assert refused.value.status_code == "WRONGPASS"
        assert await shared.execute_command("GET", "key") == b"value"

    asyncio.run(scenario())


def test_a_unix_socket_url_connects_there(tmp_path: Path) -> None:
    socket_path = tmp_path / "redis.sock"
    with RedisServer(tmp_path / "redis", config=["--unixsocket", str(socket_path)]):

        async def scenario() -> None:
            shared = SharedConnection.from_url(
                f"unix://{socket_path}?db=2", timeout=1.0, max_pending=4
            )
            for _ in range(2):
                await shared.execute_command("INCR", "visits")
            await shared.aclose()

        asyncio.run(scenario())
        with redis.Redis(unix_socket_path=str(socket_path), db=2) as direct:
            assert direct.get("visits") == b"2"


def test_a_reply_nobody_asked_for_drops_the_connection(server: RedisServer) -> None:
    # After SUBSCRIBE, Redis pushes messages unasked: they cannot be matched to a request.
    async def scenario() -> None:
        shared = connect(server)
        assert await shared.execute_command("SUBSCRIBE", "news") == [b"subscribe", b"news", 1]
        link = shared._link
        assert link is not None
        with redis.Redis.from_url(server.url) as admin:
            admin.publish("news", "unasked")
        for _ in range(100):
            if link.closed:
                break
            await asyncio.sleep(0.01)
        with pytest.raises(
            ConnectionError,
            match=r"^connection to Redis lost: Redis sent an unreadable reply: pop from an empty",
        ):
            await link.send(("PING",))
        assert await shared.execute_command("PING") == b"PONG"  # on a new connection

    asyncio.run(scenario())


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[RedisServer]:
    candidates = [server_binary(), shutil.which("redis-server")]
    with_tls = [binary for binary in candidates if binary and supports_tls(binary)]
    if not with_tls:
        pytest.skip(f"no redis-server with TLS among {candidates}")
    certificate, key = make_certificate(tmp_path)
    with RedisServer(
        tmp_path / "redis", binary=with_tls[0], password="pw", tls_files=(certificate, key)
    ) as running:
        yield running


def test_rediss_with_a_password_and_a_refused_one(tls_server: RedisServer) -> None:
    async def scenario() -> None:
        shared = SharedConnection.from_url(tls_server.url, timeout=2.0, max_pending=4)
        assert await shared.execute_command("PING") == b"PONG"
        await shared.aclose()
        wrong = SharedConnection.from_url(
            tls_server.url.replace(":pw@", ":wrong@"), timeout=2.0, max_pending=4
        )
        with pytest.raises(ConnectionError, match=r"^Redis refused the connection: \w") as refused:
            await wrong.execute_command("PING")
        assert "WRONGPASS" in str(refused.value) or "invalid" in str(refused.value)
        assert wrong._link is None

    asyncio.run(scenario())
