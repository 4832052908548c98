"""`make run` (python -m scripts.serve), run from a copy of the project: an embedded Redis whose
data outlives the run, REDIS_URL honoured instead, and a clean stop on SIGTERM and Ctrl-C."""

from __future__ import annotations

import re
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import redis

from scripts.serve import ROOT
from tests.conftest import wait_until_ready
from tests.support.local_redis import RedisServer, free_port


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of what `make run` needs, so its .data/ is this test's own."""
    copy = tmp_path / "project"
    for folder in ("function", "scripts", "tests/support"):  # tests/support: the embedded Redis
        shutil.copytree(ROOT / folder, copy / folder, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "tests" / "__init__.py", copy / "tests")
    return copy


def serve(project: Path, port: int, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], Path]:
    log = project / f"serve-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "scripts.serve"],
            cwd=project,
            env={"PATH": "/usr/bin:/bin", "XDG_RUNTIME_DIR": str(project), "PORT": str(port),
                 **env},
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    wait_until_ready(f"http://127.0.0.1:{port}", process, log)
    return process, log


def stop(process: subprocess.Popen[bytes], how: signal.Signals) -> int:
    process.send_signal(how)
    return process.wait(timeout=30)


def refuses(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def test_embedded_redis_keeps_its_data_and_stops_with_the_server(project: Path) -> None:
    port = free_port()
    process, log = serve(project, port, {})
    data_dir = re.escape(str(project / ".data" / "redis"))
    embedded = re.search(rf"embedded Redis on redis://127\.0\.0\.1:(\d+)/0, data in {data_dir}\n",
                         log.read_text())  # fmt: skip
    assert embedded, log.read_text()
    redis_port = int(embedded.group(1))
    assert f"serving handle on http://127.0.0.1:{port}/ (Ctrl-C stops)" in log.read_text()
    assert httpx.put(f"http://127.0.0.1:{port}/kept", json={"v": 1}).status_code == 201
    assert stop(process, signal.SIGTERM) == 0
    assert refuses(port) and refuses(redis_port)  # the server and its Redis are gone
    assert (project / ".data" / "redis").is_dir()

    process, log = serve(project, port, {})
    try:
        assert httpx.get(f"http://127.0.0.1:{port}/kept").json()["v"] == 1
    finally:
        assert stop(process, signal.SIGINT) == 0  # Ctrl-C
    assert refuses(port)


def test_redis_url_is_used_instead(project: Path, tmp_path: Path) -> None:
    with RedisServer(tmp_path / "redis") as own:
        port = free_port()
        process, log = serve(project, port, {"REDIS_URL": own.url})
        try:
            assert httpx.put(f"http://127.0.0.1:{port}/there", json={"v": 2}).status_code == 201
        finally:
            stop(process, signal.SIGTERM)
        assert "embedded Redis" not in log.read_text()
        assert not (project / ".data").exists()
        with redis.Redis.from_url(own.url) as direct:
            assert direct.exists("kv:r:/there") == 1
