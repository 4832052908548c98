"""With CI set, a skip fails the run unless it is one of the suite's modes (skip_for_mode)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from scripts.serve import ROOT

PROBE = """
import pytest
from tests.conftest import skip_for_mode

def test_missing_tool():
    pytest.skip("no such tool")

@pytest.fixture
def server():
    pytest.skip("no server")

def test_missing_server(server):
    pass

def test_mode():
    skip_for_mode("FUNCTION_URL names the server")

@pytest.mark.xfail(reason="known")
def test_known_failure():
    assert False
"""


def run_probe(tmp_path: Path, ci: str | None) -> str:
    probe = tmp_path / "test_probe.py"
    probe.write_text(PROBE)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.conftest", "-p", "no:cloudcoil", "-q", "-p",
         "no:cacheprovider", "--rootdir", str(tmp_path), str(probe)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    return result.stdout.splitlines()[-1]


@pytest.mark.parametrize("ci", [None, "", "  "])
def test_without_ci_skips_stay_skips(tmp_path: Path, ci: str | None) -> None:
    assert run_probe(tmp_path, ci).startswith("3 skipped, 1 xfailed in ")


@pytest.mark.parametrize("ci", ["true", "1"])
def test_with_ci_a_missing_part_fails(tmp_path: Path, ci: str) -> None:
    assert run_probe(tmp_path, ci).startswith("1 failed, 1 skipped, 1 xfailed, 1 error in ")
