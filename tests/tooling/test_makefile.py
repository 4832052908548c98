"""The Makefile explains itself: a bare `make` prints the targets and installs nothing, every
target has a description, recipes say what they do instead of echoing commands, and `make clean`
removes what make and the tools wrote (every one of those paths ignored by git) while the stored
data goes only with `make clean-data`."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from scripts.serve import ROOT

MAKEFILE = ROOT / "Makefile"
TARGET = re.compile(r"^([a-z][a-z0-9-]*):(?!=)", re.MULTILINE)
# Outputs the tools write by default or as the docs run them (--out predict-out, spike-out).
OUTPUTS = ("bench/results", "loadtest-out", "e2e-out", "predict-out", "spike-out",
           ".func-runtime", ".cache", "mutants", ".kustomize-a1b2c3", ".venv", ".pytest_cache",
           ".mypy_cache", ".ruff_cache", ".hypothesis", "function.egg-info", ".func")  # fmt: skip


def make(*args: str, cwd: Path = ROOT, path: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {"PATH": path} if path else None
    return subprocess.run(
        ["make", "--no-print-directory", *args], cwd=cwd, capture_output=True, text=True,
        timeout=60, env=env,
    )  # fmt: skip


def variable(name: str) -> list[str]:
    shown = make("--eval", f"show-variable: ; @echo $({name})", "show-variable")
    assert shown.returncode == 0, shown.stderr
    return shown.stdout.split()


def test_a_bare_make_prints_the_targets_and_installs_nothing(tmp_path: Path) -> None:
    result = make(f"VENV={tmp_path / 'venv'}")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: make TARGET")
    assert not (tmp_path / "venv").exists()
    assert result.stdout == make("help").stdout


def test_help_lists_every_target_with_its_description() -> None:
    targets = TARGET.findall(MAKEFILE.read_text())
    assert {"help", "run", "test", "clean", "clean-data"} <= set(targets)
    listed = dict(line.strip().split(None, 1) for line in make("help").stdout.splitlines()[1:])
    assert sorted(listed) == sorted(targets)
    assert all(len(description) > 10 for description in listed.values())


def recipe_lines() -> list[str]:
    """The first line of every recipe command (not its continuations, not variables')."""
    lines, in_recipe, continued = [], False, False
    for line in MAKEFILE.read_text().splitlines():
        if line.startswith("\t") and in_recipe and not continued:
            lines.append(line)
        elif not line.startswith("\t") and not continued:
            in_recipe = bool(re.match(r"^[^\s#][^=]*:(?!=)", line))
        continued = line.endswith("\\")
    return lines


def test_recipes_say_what_they_do_rather_than_echo_commands() -> None:
    lines = recipe_lines()
    assert len(lines) > 20
    assert any("$(PIP) install" in line for line in lines)
    echoed = [line for line in lines if not line.startswith("\t@")]
    assert echoed == [], "recipe lines make would echo"


def test_everything_clean_removes_is_ignored_by_git() -> None:
    generated = variable("GENERATED")
    for output in OUTPUTS:
        assert any(Path(output).match(pattern) for pattern in generated), output
    for name in [*generated, *OUTPUTS, ".data/redis"]:
        probe = name.replace("*", "x") + "/some-file"
        ignored = subprocess.run(["git", "check-ignore", "-q", probe], cwd=ROOT, check=False)
        assert ignored.returncode == 0, f"{name} is not ignored by git"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the Makefile with every output present, `make run`'s data and two sources."""
    copy = tmp_path / "project"
    copy.mkdir()
    shutil.copy(MAKEFILE, copy)
    for output in [*OUTPUTS, "function/__pycache__", "tests/unit/__pycache__", ".data/redis"]:
        (copy / output).mkdir(parents=True)
        (copy / output / "file").write_text("made")
    for source in ("function/main.py", "tests/unit/test_x.py"):
        (copy / source).write_text("source")
    return copy


def test_clean_removes_outputs_and_images_and_keeps_data_and_sources(
    project: Path, tmp_path: Path
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "podman-calls"
    podman = bin_dir / "podman"
    podman.write_text(f'#!/bin/sh\necho "$*" >> "{calls}"\n')
    podman.chmod(0o755)
    result = make("clean", cwd=project, path=f"{bin_dir}:/usr/bin:/bin")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("make clean: removing ")
    left = sorted(str(p.relative_to(project)) for p in project.rglob("*"))
    assert left == [".data", ".data/redis", ".data/redis/file", "Makefile", "bench", "function",
                    "function/main.py", "tests", "tests/unit", "tests/unit/test_x.py"]  # fmt: skip
    assert calls.read_text().split() == ["image", "rm", "--ignore", *variable("IMAGES")]

    result = make("clean-data", cwd=project)
    assert result.returncode == 0, result.stderr
    assert not (project / ".data").exists()
