"""Knative func's Python runtime on this machine, installed and started as func's host builder does.

`func build --builder host` writes func's Python scaffolding next to the function: a `service`
project whose only dependencies are `func-python` (one exact version) and the function's own
project as the distribution `function` (`function @ <scaffolding>/f`, `f` linking to the project),
plus `service/main.py`, which imports `new` from the `function` package and calls
`func_python.http.serve(new)`. It installs that project with `pip install . --target lib` from a
fresh virtual environment, and the image runs `python .../service/main.py` with `PYTHONPATH=lib`
and `LISTEN_ADDRESS=[::]:8080`.

`prepare` does the same in a directory of ours, with the closure pinned by requirements-func.txt
(applied as constraints, so pip still resolves the same requirements func's scaffolding states).
`python -m scripts.func_runtime` (`make run-func`) serves it like `make run`: with an embedded
Redis unless REDIS_URL is set. Nothing here needs func itself.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from scripts.serve import ROOT
from tests.support.local_redis import RedisServer

REQUIREMENTS = ROOT / "requirements-func.txt"
# What building the `function` distribution reads; copied, so that the build writes nothing into
# the working tree.
PROJECT_FILES = ("pyproject.toml", "requirements-function.txt", "function")
# Every file whose change calls for a new install.
INPUTS = ("requirements-func.txt", "constraints.txt", *PROJECT_FILES)
DEFAULT_DIRECTORY = ROOT / ".func-runtime"

SCAFFOLDING_PYPROJECT = """\
[project]
name = "service"
version = "0.1.0"
requires-python = ">=3.10"
dependencies = ["{func_python}", "function @ {{root:uri}}/f"]

[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[tool.hatch.metadata]
allow-direct-references = true

[tool.hatch.build.targets.wheel]
packages = ["service"]
"""

SCAFFOLDING_MAIN = """\
import logging

from func_python.http import serve

from function import new

logging.basicConfig(level=logging.INFO)

if __name__ == "__main__":
    serve(new)
"""


def func_python_requirement() -> str:
    """The func-python pin, as func's scaffolding states it (`func-python==X.Y.Z`)."""
    for line in REQUIREMENTS.read_text().splitlines():
        if line.lower().startswith("func-python=="):
            return line.strip()
    raise RuntimeError(f"{REQUIREMENTS.name} pins no func-python")


@dataclass(frozen=True)
class FuncRuntime:
    directory: Path

    @property
    def python(self) -> Path:
        return self.directory / "venv" / "bin" / "python"

    @property
    def lib(self) -> Path:
        return self.directory / "build" / "lib"

    @property
    def main(self) -> Path:
        return self.directory / "build" / "service" / "main.py"

    def command(self) -> list[str]:
        return [str(self.python), str(self.main)]

    def environment(self, listen_address: str) -> dict[str, str]:
        """What the image sets, with the address to listen on (`host:port`, comma-separated)."""
        return {"PYTHONPATH": str(self.lib), "LISTEN_ADDRESS": listen_address}

    def installed(self) -> dict[str, str]:
        """Distribution name (canonical, PEP 503) to version, for everything pip put into lib/."""
        return {
            re.sub(r"[-_.]+", "-", dist.metadata["Name"]).lower(): dist.version
            for dist in importlib.metadata.distributions(path=[str(self.lib)])
        }


def _fingerprint() -> str:
    digest = hashlib.sha256(f"{sys.version}\n{SCAFFOLDING_PYPROJECT}{SCAFFOLDING_MAIN}".encode())
    for name in INPUTS:
        path = ROOT / name
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        for file in files:
            digest.update(f"{file.relative_to(ROOT)}\n".encode() + file.read_bytes())
    return digest.hexdigest()


def prepare(directory: Path = DEFAULT_DIRECTORY) -> FuncRuntime:
    """Installs func's runtime and this project into ``directory``; reuses an install of the
    same sources. Takes about 20 s on a fresh directory (pip builds both projects)."""
    runtime = FuncRuntime(directory)
    stamp = directory / "prepared"
    fingerprint = _fingerprint()
    if stamp.is_file() and stamp.read_text() == fingerprint:
        return runtime
    shutil.rmtree(directory, ignore_errors=True)
    project, build = directory / "project", directory / "build"
    for name in PROJECT_FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, project / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            project.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, project / name)
    (build / "service").mkdir(parents=True)
    (build / "pyproject.toml").write_text(
        SCAFFOLDING_PYPROJECT.format(func_python=func_python_requirement())
    )
    (build / "service" / "__init__.py").write_text("")
    runtime.main.write_text(SCAFFOLDING_MAIN)
    (build / "f").symlink_to(Path("..") / "project")
    # A virtual environment of the base interpreter, with nothing of this one's packages.
    subprocess.run([sys.executable, "-m", "venv", str(directory / "venv")], check=True)
    pip = [str(runtime.python), "-m", "pip", "--disable-pip-version-check", "--quiet"]
    subprocess.run(
        [*pip, "install", "--target", str(runtime.lib), "--constraint", str(REQUIREMENTS), "."],
        cwd=build,
        check=True,
    )
    stamp.write_text(fingerprint)
    return runtime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8080")))
    parser.add_argument(
        "--host", default=os.environ.get("HOST", "127.0.0.1"), help="0.0.0.0 serves other hosts"
    )
    args = parser.parse_args()

    runtime = prepare()
    env = {**os.environ, **runtime.environment(f"{args.host}:{args.port}")}
    redis_server = None
    if not env.get("REDIS_URL"):
        redis_server = RedisServer(ROOT / ".data" / "redis", persist=True).start()
        env["REDIS_URL"] = redis_server.url
        print(f"embedded Redis on {redis_server.url}, data in .data/redis/", flush=True)
    print(f"func-python serving function.new on http://{args.host}:{args.port}/", flush=True)
    server = subprocess.Popen(runtime.command(), env=env)
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, lambda *_: server.terminate())
    try:
        return server.wait()
    finally:
        if redis_server is not None:
            redis_server.stop()


if __name__ == "__main__":
    sys.exit(main())
