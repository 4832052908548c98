"""``rediss://``: the function reaches a TLS-only Redis and verifies its certificate."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from scripts.local_redis import RedisServer, server_binary, supports_tls
from tests.conftest import RunningFunction, skip_for_mode


@pytest.fixture
def tls_redis(tmp_path: Path) -> Any:
    binary = server_binary()
    if not supports_tls(binary):
        # A mode: CI runs this suite again on Debian's redis-server, which has TLS.
        skip_for_mode(f"{binary} was built without TLS (Debian's redis-server has it)")
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed, so no test certificate can be made")
    certificate, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(certificate)],
        check=True, capture_output=True,
    )  # fmt: skip
    with RedisServer(tmp_path / "redis", password="pw", tls_files=(certificate, key)) as server:
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
