"""The shared connection (``function/redis_conn.py``) against a real Redis: replies meet their own
requests, late replies are dropped, a lost connection fails every waiting request at once, and the
bounds hold."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.exceptions import ConnectionError, NoScriptError, TimeoutError

from function.redis_conn import Overloaded, SharedConnection
from scripts.local_redis import RedisServer


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
        with pytest.raises(Overloaded, match="Too many connections"):
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
