"""The Dockerfile builds a small non-root image whose start command serves the contract.

No container engine is needed: the start command and environment are read from the Dockerfile
and run from the repository root (the image's WORKDIR holds the same function/ folder), with
the project's virtualenv in the place of the image's site-packages.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path

import httpx
import pytest

from scripts.local_redis import RedisServer, free_port
from tests.conftest import launch
from tests.deploy.manifests import ROOT, Dockerfile, Manifest, container

# The virtualenv running the tests holds functions-framework, as /usr/local/bin does in the image.
VENV_BIN = Path(sys.executable).parent
STOP_TIMEOUT_SECONDS = 30
# Mounts / read-only in a private mount namespace, with a private tmpfs on /dev/shm: the
# file system a container gets with readOnlyRootFilesystem.
READ_ONLY_ROOT = (
    "mount --bind / / && mount -o remount,bind,ro / && "
    'mount -t tmpfs -o size=16m tmpfs /dev/shm && exec "$@"'
)


def test_base_image_is_python_3_11_slim_at_an_exact_tag(dockerfile: Dockerfile) -> None:
    name, _, tag = dockerfile.base_image.partition(":")
    assert name == "python"
    assert "@" not in tag
    version, _, variant = tag.partition("-")
    major, minor, patch = version.split(".")
    assert (major, minor) == ("3", "11") and patch.isdigit()
    assert variant == "slim-bookworm"


def test_runs_as_the_numeric_user_the_manifest_names(
    dockerfile: Dockerfile, knative_service: Manifest
) -> None:
    uid, _, gid = dockerfile.user.partition(":")
    assert uid.isdigit() and gid.isdigit() and int(uid) > 0 and int(gid) > 0
    context = container(knative_service)["securityContext"]
    assert (context["runAsUser"], context["runAsGroup"]) == (int(uid), int(gid))


def test_installs_runtime_dependencies_only_without_caches(dockerfile: Dockerfile) -> None:
    installs = [run for run in dockerfile.runs if "pip install" in run]
    assert installs, "no pip install in the Dockerfile"
    assert all("--no-cache-dir" in run for run in installs)
    assert any("-r requirements.txt" in run for run in installs)
    assert any("--no-deps ." in run for run in installs)
    assert not any("requirements-dev" in run for run in installs)


def test_environment_suits_a_read_only_root(dockerfile: Dockerfile) -> None:
    env = dockerfile.env
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    # gunicorn writes a heartbeat file in TMPDIR and a control socket in XDG_RUNTIME_DIR.
    assert env["TMPDIR"] == env["XDG_RUNTIME_DIR"] == "/dev/shm"
    assert env["PORT"] == "8080"


def test_start_command_is_exec_form_functions_framework_asgi(dockerfile: Dockerfile) -> None:
    assert dockerfile.exec_form == {"CMD": True}, "exec form: the server gets SIGTERM itself"
    command = dockerfile.start_command
    assert command[0] == "functions-framework" and "--asgi" in command
    assert command[command.index("--target") + 1] == "handle"
    assert (ROOT / command[command.index("--source") + 1]).is_file()
    assert "--port" not in command, "the port comes from $PORT"


def test_dockerignore_keeps_local_state_out_of_the_image() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*", "an allowlist: only what is named below is sent to the build"
    assert set(patterns) >= {"!requirements.txt", "!pyproject.toml", "!function/"}


def container_environment(dockerfile: Dockerfile, redis_url: str, port: int) -> dict[str, str]:
    """The image's ENV plus what the platform sets, and nothing from this machine."""
    return {
        **dockerfile.env,
        "PATH": str(VENV_BIN),
        "PORT": str(port),
        "REDIS_URL": redis_url,
    }


def start(
    command: list[str], env: Mapping[str, str], log_path: Path, port: int
) -> subprocess.Popen[bytes]:
    """The image's command with the image's environment alone: nothing from this machine."""
    process, _ = launch(command, env, log_path, port, inherit_environment=False)
    return process


@pytest.fixture
def stopper() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


def serves_the_article_requests(url: str) -> None:
    path = f"/deploy-check/{uuid.uuid4().hex}"
    with httpx.Client(base_url=url, timeout=10) as http:
        created = http.put(path, json={"hello": 999})
        assert created.status_code == 201, created.text
        fetched = http.get(path)
        assert fetched.status_code == 200
        assert fetched.json()["hello"] == 999
        counted = http.get("/")
        assert counted.status_code == 200
        assert counted.text.startswith("Count is ")


def test_start_command_serves_the_contract_and_stops_on_sigterm(
    dockerfile: Dockerfile,
    redis_server: RedisServer,
    tmp_path: Path,
    stopper: list[subprocess.Popen[bytes]],
) -> None:
    port = free_port()
    env = container_environment(dockerfile, redis_server.url, port)
    # This machine's /dev/shm is shared: the server's scratch files go to a folder of its own.
    scratch = tmp_path / "shm"
    scratch.mkdir()
    env.update(TMPDIR=str(scratch), XDG_RUNTIME_DIR=str(scratch))
    process = start(dockerfile.start_command, env, tmp_path / "server.log", port)
    stopper.append(process)
    serves_the_article_requests(f"http://127.0.0.1:{port}")
    # What Kubernetes does when a pod stops: SIGTERM to PID 1, then a grace period.
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=STOP_TIMEOUT_SECONDS) == 0


def read_only_root_wrapper() -> list[str]:
    """The command prefix that runs a program on a read-only root, or a skip that says why not."""
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("unshare (util-linux) is not installed")
    wrapper = [unshare, "--mount", "--propagation", "private", "sh", "-c", READ_ONLY_ROOT, "sh"]
    probe = subprocess.run([*wrapper, "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        reason = probe.stderr.decode(errors="replace").strip()
        pytest.skip(f"cannot make a private read-only mount here (needs root): {reason}")
    return wrapper


def test_start_command_runs_on_a_read_only_root_filesystem(
    dockerfile: Dockerfile,
    redis_server: RedisServer,
    tmp_path: Path,
    stopper: list[subprocess.Popen[bytes]],
) -> None:
    wrapper = read_only_root_wrapper()
    port = free_port()
    env = container_environment(dockerfile, redis_server.url, port)
    log_path = tmp_path / "server.log"
    process = start(
        [*wrapper, *dockerfile.start_command],
        {**env, "PATH": f"{VENV_BIN}{os.pathsep}/usr/bin{os.pathsep}/bin"},
        log_path,
        port,
    )
    stopper.append(process)
    serves_the_article_requests(f"http://127.0.0.1:{port}")
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=STOP_TIMEOUT_SECONDS) == 0
    log = log_path.read_text(errors="replace")
    assert "Read-only file system" not in log
    assert "Errno" not in log
