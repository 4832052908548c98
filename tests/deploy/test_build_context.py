"""The build context `minikube image build` sends (computed by its rules, see build_context.py)
holds the Dockerfile and every file the Dockerfile copies, and nothing of the local state."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.deploy.build_context import copy_sources, minikube_context, missing_from_context
from tests.deploy.manifests import ROOT


def test_minikube_context_holds_the_dockerfile_and_every_copied_file() -> None:
    assert missing_from_context(ROOT) == []


def test_minikube_context_leaves_local_state_out() -> None:
    context = minikube_context(ROOT)
    for local in (".venv", ".git", "tests", ".data", ".cache", "loadtest-out", "README.md"):
        assert not [path for path in context if path.split("/")[0] == local], local
    assert not [path for path in context if "__pycache__" in path or path.endswith(".pyc")]


def test_the_dockerfile_copies_the_function() -> None:
    assert "function" in copy_sources((ROOT / "Dockerfile").read_text())


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    runtime_requirements = ("requirements.txt", "requirements-function.txt", "constraints.txt")
    for name in ("Dockerfile", ".dockerignore", *runtime_requirements, "pyproject.toml"):
        shutil.copy2(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "function", tmp_path / "function")
    return tmp_path


def test_the_check_fails_when_dockerignore_does_not_let_the_dockerfile_through(
    project_copy: Path,
) -> None:
    ignore = project_copy / ".dockerignore"
    ignore.write_text(ignore.read_text().replace("!Dockerfile\n", ""))
    assert missing_from_context(project_copy) == ["Dockerfile"]
    # minikube adds it back only when -f names it.
    assert missing_from_context(project_copy, "Dockerfile") == []


def test_the_check_fails_when_a_copied_file_is_ignored(project_copy: Path) -> None:
    ignore = project_copy / ".dockerignore"
    ignore.write_text(ignore.read_text() + "function/store.py\n")
    assert missing_from_context(project_copy) == ["function/store.py"]
