"""docker-compose.yml runs for real through podman-compose: the function answers on the published
port, both health checks pass, and stored resources survive `down` and `up` (the Redis volume).

The images are the function's image built by the image test's rules and a Redis image made from
Debian's packages (tests/deploy/images/Containerfile), passed through FUNCTION_IMAGE and
REDIS_IMAGE; the committed defaults (the official redis image) need a registry. Needs root and
podman; elsewhere the test skips, saying why.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.deploy.containers import (
    FUNCTION_IMAGE,
    PODMAN_ENV,
    REDIS_IMAGE,
    build,
    podman,
    require_podman,
)
from tests.deploy.manifests import ROOT, Manifest, container
from tests.support.local_redis import free_port

READY_TIMEOUT_SECONDS = 60
PODMAN_COMPOSE = str(Path(sys.executable).parent / "podman-compose")

Compose = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def compose(tmp_path: Path) -> Iterator[tuple[Compose, str, int]]:
    """Runs podman-compose on docker-compose.yml as its own project; yields (run, project, port)
    and removes the project's containers and volume afterwards."""
    require_podman()
    function_image = build(FUNCTION_IMAGE, ROOT)
    redis_image = build(REDIS_IMAGE, ROOT / "tests" / "deploy" / "images")
    project = f"kvcompose{uuid.uuid4().hex[:8]}"
    port = free_port()
    env = {
        **PODMAN_ENV,
        "FUNCTION_IMAGE": function_image,
        "REDIS_IMAGE": redis_image,
        "FUNCTION_PORT": str(port),
        "REDIS_PASSWORD": uuid.uuid4().hex,
        "REDIS_FUNCTION_PASSWORD": uuid.uuid4().hex,
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [PODMAN_COMPOSE, "-f", str(ROOT / "docker-compose.yml"), "-p", project, *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    try:
        yield run, project, port
    finally:
        run("down", "-v")


def wait_until_ready(url: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health/readiness", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"nothing ready on {url} within {READY_TIMEOUT_SECONDS} s")


def test_compose_serves_the_function_and_keeps_data_across_down_and_up(
    compose: tuple[Compose, str, int],
) -> None:
    run, project, port = compose
    url = f"http://127.0.0.1:{port}"
    started = run("up", "-d", "--no-build")
    assert started.returncode == 0, started.stdout + started.stderr
    wait_until_ready(url)
    # The health checks' own commands (podman runs them on a timer only under systemd).
    for service in ("redis", "function"):
        checked = podman("healthcheck", "run", f"{project}_{service}_1")
        assert checked.returncode == 0, f"{service}: {checked.stdout}{checked.stderr}"
    path = f"/compose-check/{uuid.uuid4().hex}"
    with httpx.Client(base_url=url, timeout=10) as http:
        assert http.put(path, json={"kept": True}).status_code == 201
    stopped = run("down")
    assert stopped.returncode == 0, stopped.stderr
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{url}/health/readiness", timeout=1)
    restarted = run("up", "-d", "--no-build")
    assert restarted.returncode == 0, restarted.stderr
    wait_until_ready(url)
    with httpx.Client(base_url=url, timeout=10) as http:
        kept = http.get(path)
        assert kept.status_code == 200, kept.text
        assert kept.json()["kept"] is True


def test_compose_defaults_to_the_clusters_redis_image(redis_statefulset: Manifest) -> None:
    compose_file = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    image = compose_file["services"]["redis"]["image"]
    assert image == f"${{REDIS_IMAGE:-{container(redis_statefulset)['image']}}}"
