"""A real Redis for the fast tests: one server per test module, emptied before each test; and
the two adapters set up on it with the settings a module's ``adapter_settings`` fixture gives."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
import redis

from function import asgi, wsgi
from function import settings as config
from function.settings import Settings
from tests.support.local_redis import RedisServer
from tests.unit.serving_harness import asgi_address, flask_address, framework

__all__ = ["asgi_address", "flask_address", "framework"]  # fixtures of the in-process servers


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with RedisServer(tmp_path_factory.mktemp("redis")) as running:
        yield running


@pytest.fixture
def direct(server: RedisServer) -> Iterator[redis.Redis]:
    with redis.Redis.from_url(server.url) as connection:
        connection.flushall()
        yield connection


@pytest_asyncio.fixture
async def on_asgi(
    adapter_settings: Settings, direct: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[None]:
    monkeypatch.setattr(config, "loaded", lambda: adapter_settings)
    asgi._redis.cache_clear()  # a client bound to this test's event loop
    yield
    await asgi._redis().aclose()
    asgi._redis.cache_clear()


@pytest.fixture
def on_wsgi(
    adapter_settings: Settings, direct: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    monkeypatch.setattr(config, "loaded", lambda: adapter_settings)
    wsgi._redis.cache_clear()
    yield
    wsgi._redis().close()
    wsgi._redis.cache_clear()
