"""The requirement files: every version written once, and the two server sets kept apart."""

from __future__ import annotations

import tomllib
from collections import defaultdict
from pathlib import Path

from function import serving
from tests.requirement_files import read

ROOT = Path(__file__).resolve().parents[2]
FILES = (
    "requirements-function.txt",
    "requirements.txt",
    "requirements-func.txt",
    "requirements-dev.txt",
    "constraints.txt",
)
FRAMEWORK = {"functions-framework", "flask", "gunicorn", "uvicorn", "cloudevents"}


def test_every_line_is_one_exact_pin_and_every_package_is_written_once() -> None:
    written: dict[str, set[str]] = defaultdict(set)
    for name in FILES:
        requirements, _ = read(ROOT / name, follow=False)  # nested files have their own turn
        for pin in requirements:
            written[pin.name].add(name)
    twice = {package: files for package, files in written.items() if len(files) > 1}
    # cloudevents is the one package the two runtimes need in different major versions.
    assert twice == {"cloudevents": {"requirements.txt", "requirements-func.txt"}}


def test_the_package_depends_on_its_own_closure_only() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["project"]["name"] == "function", "the name func's scaffolding installs"
    dynamic = pyproject["tool"]["setuptools"]["dynamic"]["dependencies"]["file"]
    assert dynamic == ["requirements-function.txt"]
    requirements, constraints = read(ROOT / "requirements-function.txt")
    assert not constraints, "setuptools reads the file's own lines only"
    assert not {pin.name for pin in requirements} & FRAMEWORK


def test_func_runtime_set_has_no_functions_framework() -> None:
    requirements, _ = read(ROOT / "requirements-func.txt")
    names = {pin.name for pin in requirements}
    assert "func-python" in names
    assert not names & (FRAMEWORK - {"cloudevents"})
    cloudevents = next(pin for pin in requirements if pin.name == "cloudevents")
    assert cloudevents.version.startswith("2."), "func-python 0.8.1 requires CloudEvents 2"


def test_both_server_sets_include_the_package_closure_at_one_version() -> None:
    function, _ = read(ROOT / "requirements-function.txt")
    for name in ("requirements.txt", "requirements-func.txt"):
        requirements, _ = read(ROOT / name)
        assert set(function) <= set(requirements), name


def _included_files(path: Path) -> set[str]:
    """The file and every file its ``-r``/``-c`` lines name, recursively."""
    names = {path.name}
    for line in path.read_text().splitlines():
        if line.startswith(("-r ", "-c ")):
            names |= _included_files(path.parent / line[3:].strip())
    return names


def test_the_image_build_receives_every_file_requirements_txt_names() -> None:
    needed = _included_files(ROOT / "requirements.txt")
    allowed = set((ROOT / ".dockerignore").read_text().split())
    assert {f"!{name}" for name in needed} <= allowed
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    install = next(i for i, line in enumerate(lines) if "-r requirements.txt" in line)
    copied = {word for line in lines[:install] if line.startswith("COPY") for word in line.split()}
    assert needed <= copied, "copied before the dependency layer is installed"


def test_serving_guards_the_pinned_releases() -> None:
    # function/serving.py refuses any other release (tests/unit/test_framework_version.py).
    requirements, _ = read(ROOT / "requirements.txt")
    pins = {pin.name: pin.version for pin in requirements}
    guarded = {name: pins.get(name) for name in serving.REPLACED_RELEASES}
    assert guarded == serving.REPLACED_RELEASES
