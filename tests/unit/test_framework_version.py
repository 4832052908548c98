"""function/serving.py replaces functions-framework internals of one release: another release
stops the server at start, with one line that says why."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

import pytest

from function import serving

ROOT = Path(__file__).resolve().parents[2]


def test_the_installed_release_is_accepted() -> None:
    serving.check_framework(importlib.metadata.version("functions-framework"))


@pytest.mark.parametrize("installed", ["3.10.3", "3.11.0", "4.0.0", "3.10"])
def test_another_release_is_refused_by_name(installed: str) -> None:
    with pytest.raises(serving.FrameworkMismatch) as refused:
        serving.check_framework(installed)
    assert str(refused.value) == (
        "function/serving.py replaces internals of functions-framework "
        f"{serving.FRAMEWORK_VERSION}, and {installed} is installed: check them against that "
        "release, then update FRAMEWORK_VERSION"
    )


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
        "functions-framework mismatch: function/serving.py replaces internals of "
        f"functions-framework {serving.FRAMEWORK_VERSION}, and 3.11.0 is installed: check them "
        "against that release, then update FRAMEWORK_VERSION"
    )
