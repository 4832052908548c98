"""func's host build for another CPU: the packages pip installs for a foreign platform, with the
function, as the only thing on the path (issue 22). func's host builder runs pip on the host and
ships that one layer to every platform it builds; here the layer is built for the other CPU, so
the hiredis it holds cannot load, and the function must still answer, once warning that it runs
on the pure-Python parser."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from scripts.func_runtime import REQUIREMENTS, SCAFFOLDING_MAIN
from scripts.serve import ROOT
from tests.conftest import launch
from tests.support.local_redis import RedisServer, free_port

# The other CPU of the two that func builds for and PyPI has wheels for.
FOREIGN = "x86_64" if platform.machine() == "aarch64" else "aarch64"
WARNING = "hiredis cannot be imported"
# -S: none of this interpreter's site-packages (they hold a native hiredis), as in the image.
PYTHON = [sys.executable, "-S"]


@pytest.fixture(scope="module")
def foreign_lib(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """func's `lib` layer as pip builds it on a host of the other CPU: the pinned closure of
    func-python and the function (wheels only, as `--platform` requires), then the function."""
    lib = tmp_path_factory.mktemp("foreign") / "lib"
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet", "install"),
            *("--platform", f"manylinux2014_{FOREIGN}", "--only-binary=:all:"),
            *("--target", str(lib), "--requirement", str(REQUIREMENTS)),
        ],
        check=True,
        timeout=300,
    )
    shutil.copytree(ROOT / "function", lib / "function", ignore=shutil.ignore_patterns("*.pyc"))
    (lib.parent / "main.py").write_text(SCAFFOLDING_MAIN)
    return lib


def test_the_layer_holds_a_hiredis_this_machine_cannot_load(foreign_lib: Path) -> None:
    assert list((foreign_lib / "hiredis").glob(f"*{FOREIGN}*.so"))
    result = subprocess.run(
        [*PYTHON, "-c", "import hiredis"],
        env={"PYTHONPATH": str(foreign_lib)},
        capture_output=True,
        text=True,
        check=False,
    )
    # Its file name is for the other CPU's interpreter, so Python does not even try to load it.
    assert "No module named 'hiredis.hiredis'" in result.stderr, result.stderr


def test_the_function_answers_from_the_foreign_layer_and_warns_once(
    foreign_lib: Path, tmp_path: Path
) -> None:
    with RedisServer(tmp_path / "redis") as redis_server:
        port = free_port()
        env = {
            "PATH": os.environ["PATH"],
            "PYTHONPATH": str(foreign_lib),
            "LISTEN_ADDRESS": f"127.0.0.1:{port}",
            "REDIS_URL": redis_server.url,
        }
        log_path = tmp_path / "func.log"
        command = [*PYTHON, str(foreign_lib.parent / "main.py")]
        process, url = launch(command, env, log_path, port, inherit_environment=False)
        try:
            with httpx.Client(base_url=url, timeout=10) as http:
                # The tutorial's session (README).
                put = http.put("/testurl", json={"hello": 999})
                assert put.status_code == 201, put.text  # created
                assert put.json()["hello"] == 999 and put.json()["ttl"] == 31536000
                got = http.get("/testurl")
                assert got.status_code == 200, got.text
                assert got.json()["hello"] == 999
                assert http.get("/").text == "Count is 1."
                assert http.get("/missing").status_code == 404
        finally:
            process.terminate()
            process.wait(timeout=15)
        log = log_path.read_text(errors="replace")
        warnings = [line for line in log.splitlines() if WARNING in line]
        assert len(warnings) == 1, log
        assert "WARNING" in warnings[0] and "hiredis.hiredis" in warnings[0], warnings[0]
