"""A real Redis for the fast tests: one server per test module, emptied before each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from scripts.local_redis import RedisServer


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with RedisServer(tmp_path_factory.mktemp("redis")) as running:
        yield running


@pytest.fixture
def direct(server: RedisServer) -> Iterator[redis.Redis]:
    with redis.Redis.from_url(server.url) as connection:
        connection.flushall()
        yield connection
