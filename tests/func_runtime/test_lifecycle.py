"""``function.new``'s instance in this process, driven as func-python drives it, on a real Redis."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
import redis

from function import new
from function.func import Function
from function.service import internal_error
from function.settings import ConfigError
from tests.support.local_redis import RedisServer


@pytest.mark.asyncio
async def test_start_makes_the_redis_client_and_stop_closes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with RedisServer(tmp_path) as server, redis.Redis.from_url(server.url) as admin:
        monkeypatch.setenv("REDIS_URL", server.url)
        function = new()
        assert isinstance(function, Function)
        assert function.ready()[0] is False
        function.start({"REDIS_URL": server.url})
        assert function.ready() == (True, "ready") and function.alive() == (True, "alive")
        transport = httpx.ASGITransport(app=function.handle)
        async with httpx.AsyncClient(transport=transport, base_url="http://function") as http:
            assert (await http.get("/")).text == "Count is 1."
        assert len(admin.client_list()) == 2  # this test's and the function's connection

        function.stop()
        assert function.ready()[0] is False
        for _ in range(500):  # the close runs as a task on this loop
            if len(admin.client_list()) == 1:
                break
            await asyncio.sleep(0.01)
        assert len(admin.client_list()) == 1, "stop() left the function's connection open"


@pytest.mark.asyncio
async def test_a_request_outside_start_and_stop_is_an_internal_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    transport = httpx.ASGITransport(app=new().handle)
    async with httpx.AsyncClient(transport=transport, base_url="http://function") as http:
        response = await http.get("/")
    # Answered as every entry point answers an internal fault.
    assert response.status_code == internal_error().status
    assert response.json()["error"] == "internal"


def test_new_refuses_a_bad_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_JSON_DEPTH", "0")
    with pytest.raises(ConfigError, match="MAX_JSON_DEPTH"):
        new()
