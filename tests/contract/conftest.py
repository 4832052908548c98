from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
import redis

from scripts.local_redis import RedisServer
from tests.conftest import RunningFunction


@pytest.fixture
def client(function: RunningFunction) -> Iterator[httpx.Client]:
    """An HTTP client on the function under test; a hung server fails the test, not the suite."""
    with httpx.Client(base_url=function.url, timeout=10) as http:
        yield http


@pytest.fixture
def path() -> str:
    """A resource path no other test uses."""
    return f"/tests/{uuid.uuid4().hex}"


@pytest.fixture(scope="session")
def redis_client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    with redis.Redis.from_url(redis_server.url) as connection:
        yield connection


def error_of(response: httpx.Response) -> str:
    """The error code of a JSON error body; fails the test when the body is not one."""
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error", "message"}
    assert isinstance(body["message"], str) and body["message"]
    return str(body["error"])
