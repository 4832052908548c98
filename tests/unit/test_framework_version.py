"""function/serving.py replaces or subclasses internals of one release each of functions-framework,
gunicorn, uvicorn and uvicorn-worker: another release of any stops the server at start, with one
line that says which and why."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

import pytest

from function import serving

ROOT = Path(__file__).resolve().parents[2]


def installed() -> dict[str, str]:
    return {name: importlib.metadata.version(name) for name in serving.REPLACED_RELEASES}


def refusal(name: str, version: str) -> str:
    return (
        f"function/serving.py replaces internals of {name} {serving.REPLACED_RELEASES[name]}, "
        f"and {version} is installed: check them against that release, then update "
        "REPLACED_RELEASES"
    )


def test_the_installed_releases_are_accepted() -> None:
    serving.check_releases(installed())


@pytest.mark.parametrize("name", sorted(serving.REPLACED_RELEASES))
@pytest.mark.parametrize("bump", ["0.0.1", "1.0"])
def test_another_release_of_any_is_refused_by_name(name: str, bump: str) -> None:
    version = serving.REPLACED_RELEASES[name] + bump  # "3.10.2" -> "3.10.20.0.1": another one
    with pytest.raises(serving.FrameworkMismatch) as refused:
        serving.check_releases({**installed(), name: version})
    assert str(refused.value) == refusal(name, version)


def test_every_release_that_differs_is_named() -> None:
    versions = {name: "0" for name in serving.REPLACED_RELEASES}
    with pytest.raises(serving.FrameworkMismatch) as refused:
        serving.check_releases(versions)
    assert str(refused.value) == "; ".join(refusal(name, "0") for name in serving.REPLACED_RELEASES)


def test_the_server_does_not_start_on_another_release(tmp_path: Path) -> None:
    # A distribution found first on the path is the one importlib.metadata reports.
    metadata = tmp_path / "functions_framework-3.11.0.dist-info"
    metadata.mkdir()
    (metadata / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: functions-framework\nVersion: 3.11.0\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    started = subprocess.run(
        [sys.executable, "-c", "import function.main"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert started.returncode == 1
    assert started.stderr.splitlines()[-1] == (
        f"functions-framework mismatch: {refusal('functions-framework', '3.11.0')}"
    )
