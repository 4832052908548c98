"""The image built from the Dockerfile with podman serves the HTTP contract as Knative runs it:
read-only root file system, uid 10001, every capability dropped, against a real Redis; and it
stops cleanly on SIGTERM within the grace period.

The base image is the one difference from a registry build: where python:3.11-slim-bookworm
cannot be pulled, scripts/build-base-image.sh makes a Debian bookworm base with Debian's Python
3.11 (in /usr, not /usr/local). Needs root and podman (scripts/install-system-deps.sh installs
podman, buildah, runc and debootstrap); elsewhere these tests skip and say why.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.deploy.containers import FUNCTION_IMAGE, build, podman
from tests.deploy.manifests import ROOT, Dockerfile, Manifest, container
from tests.support.local_redis import RedisServer, free_port

STARTUP_TIMEOUT_SECONDS = 60
# The queue-proxy's drain is 30 s; the server itself must be gone well within the grace period.
STOP_TIMEOUT_SECONDS = 30


@pytest.fixture(scope="session")
def image() -> str:
    return build(FUNCTION_IMAGE, ROOT)


def test_image_user_is_the_numeric_user_the_manifest_names(
    image: str, knative_service: Manifest
) -> None:
    user = podman("image", "inspect", "--format", "{{.Config.User}}", image).stdout.strip()
    uid, _, gid = user.partition(":")
    context = container(knative_service)["securityContext"]
    assert (int(uid), int(gid)) == (context["runAsUser"], context["runAsGroup"])


def test_image_holds_the_runtime_only(image: str) -> None:
    listed = podman("run", "--rm", image, "ls", "-A", "/app")
    assert listed.returncode == 0, listed.stderr
    assert sorted(listed.stdout.split()) == [
        "constraints.txt", "function", "pyproject.toml", "requirements-function.txt",
        "requirements.txt",
    ]  # fmt: skip
    # Development packages stay out: only requirements.txt (and what it includes) is installed.
    probe = podman("run", "--rm", image, "python", "-c", "import pytest")
    assert probe.returncode != 0


@pytest.fixture
def running(image: str, redis_server: RedisServer) -> Iterator[tuple[str, str]]:
    """The container as Knative runs it; yields (name, URL)."""
    name = f"kv-store-test-{uuid.uuid4().hex[:8]}"
    port = free_port()
    started = podman(
        "run", "-d", "--name", name, "--network", "host", "--log-driver", "k8s-file",
        "--read-only", "--read-only-tmpfs=false",  # no writable /tmp, as readOnlyRootFilesystem
        "--user", "10001:10001", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
        "-e", f"PORT={port}", "-e", f"REDIS_URL={redis_server.url}", image,
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while True:
            try:
                if httpx.get(f"{url}/health/readiness", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            state = podman("inspect", "--format", "{{.State.Running}}", name).stdout.strip()
            if state != "true" or time.monotonic() > deadline:
                pytest.fail(f"the container did not become ready:\n{podman('logs', name).stdout}")
            time.sleep(0.2)
        yield name, url
    finally:
        podman("rm", "-f", "-t", "0", name)


def test_container_serves_the_contract_and_stops_cleanly_on_sigterm(
    running: tuple[str, str],
) -> None:
    name, url = running
    # The black-box contract suite, against the container's port.
    suite = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/contract", "-q", "-p", "no:cacheprovider"],
        cwd=ROOT,
        env={**os.environ, "FUNCTION_URL": url},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert suite.returncode == 0, suite.stdout[-5000:]
    assert " passed" in suite.stdout.splitlines()[-1]
    # What Kubernetes does when a pod stops: SIGTERM to PID 1, then the grace period.
    assert podman("kill", "--signal", "TERM", name).returncode == 0
    waited = podman("wait", name, timeout=STOP_TIMEOUT_SECONDS)
    assert waited.stdout.strip() == "0", waited.stdout + waited.stderr
    logs = podman("logs", name)
    assert "Read-only file system" not in logs.stdout + logs.stderr


def test_base_image_is_python_3_11_slim_at_an_exact_tag(dockerfile: Dockerfile) -> None:
    """The default base for registry builds (minikube, compose): an exact patch release."""
    name, _, tag = dockerfile.base_image.partition(":")
    assert name == "python"
    version, _, variant = tag.partition("-")
    major, minor, patch = version.split(".")
    assert (major, minor) == ("3", "11") and patch.isdigit()
    assert variant == "slim-bookworm"
