"""func's entry point (``function.func``) as func-python drives it, on a real Redis: its
readiness answer and a request with a body, which goes through the same ASGI path as
functions-framework's."""

from __future__ import annotations

import logging

import httpx
import pytest

from function.func import Function
from function.settings import Settings
from tests.support.local_redis import RedisServer


def test_readiness_says_why_before_start() -> None:
    # func-python answers its readiness probe with this text and a 503.
    function = Function(Settings())
    assert function.ready() == (False, "no Redis client: before start() or after stop()")


@pytest.mark.asyncio
async def test_a_put_reaches_redis_and_reads_back(server: RedisServer) -> None:
    function = Function(Settings(redis_url=server.url, key_prefix="func-entry:"))
    function.start({})
    transport = httpx.ASGITransport(app=function.handle)
    async with httpx.AsyncClient(transport=transport, base_url="http://function") as http:
        created = await http.put("/f?ttl=60", json={"v": 3})
        assert (created.status_code, created.json()["ttl"]) == (201, 60)
        assert (await http.get("/f")).json()["v"] == 3
    function.stop()
    assert function._closing is not None
    await function._closing
    function.stop()  # a second stop has nothing left to close
    assert function.ready()[0] is False


@pytest.mark.asyncio
async def test_a_request_outside_start_and_stop_logs_why(caplog: pytest.LogCaptureFixture) -> None:
    transport = httpx.ASGITransport(app=Function(Settings()).handle)
    with caplog.at_level(logging.ERROR):
        async with httpx.AsyncClient(transport=transport, base_url="http://function") as http:
            response = await http.get("/")
    assert response.json()["error"] == "internal"
    (record,) = [record for record in caplog.records if record.exc_info]
    assert record.exc_info is not None
    assert str(record.exc_info[1]) == "a request arrived outside start() and stop()"
