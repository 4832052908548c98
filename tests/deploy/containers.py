"""podman for the image and compose tests: the function's image and a Redis image, both built
on a base made from Debian's packages (scripts/build-base-image.sh), so that no registry is
needed. Tests skip, saying why, where podman or root is missing."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.deploy.manifests import ROOT

FUNCTION_IMAGE = "dev.local/kv-store:test"
REDIS_IMAGE = "localhost/redis-debian:bookworm"
BASE_IMAGE = "localhost/debian-python:bookworm"
PODMAN_ENV = {**os.environ, "CONTAINERS_CONF": str(ROOT / "scripts" / "podman" / "containers.conf")}
# runc and cgroupfs: crun refuses hybrid cgroup hierarchies, and no systemd runs in CI sandboxes.
PODMAN = ["podman", "--runtime", "runc", "--cgroup-manager", "cgroupfs"]


def podman(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PODMAN, *args], env=PODMAN_ENV, capture_output=True, text=True, timeout=timeout
    )


def require_podman() -> None:
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed (scripts/install-system-deps.sh installs it)")
    if os.geteuid() != 0:
        pytest.skip("building the base image and running podman here needs root")


def base_image() -> str:
    """The Debian-made base, made once and cached (or a skip that says why it cannot be)."""
    require_podman()
    made = subprocess.run(
        [str(ROOT / "scripts" / "build-base-image.sh")],
        env=PODMAN_ENV,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if made.returncode != 0:
        pytest.skip(f"no base image could be made: {made.stderr.strip()[-500:]}")
    return BASE_IMAGE


def build(tag: str, context: Path, containerfile: Path | None = None) -> str:
    """scripts/build-image.sh, as `make image` runs it; a failed build fails the test."""
    base_image()  # a skip that says why, where no base can be made
    file_args = [str(containerfile)] if containerfile else []
    built = subprocess.run(
        [str(ROOT / "scripts" / "build-image.sh"), tag, str(context), *file_args],
        env=PODMAN_ENV,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    return tag
