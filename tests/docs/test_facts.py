"""Facts the documents state about the project's own files, checked against those files."""

from __future__ import annotations

import importlib.metadata
import re

from scripts.serve import ROOT
from tests.docs.markdown import DOCUMENTS


def compiled_packages() -> set[str]:
    """Distributions of the function's own closure (requirements-function.txt) that install
    compiled extensions here: the ones func's host builder copies for the wrong machine."""
    found = set()
    for line in (ROOT / "requirements-function.txt").read_text().splitlines():
        name = line.split("==")[0].strip()
        if not name or name.startswith("#"):
            continue
        try:
            files = importlib.metadata.distribution(name).files or []
        except importlib.metadata.PackageNotFoundError:
            continue  # a pin for older Pythons only
        if any(str(path).endswith((".so", ".pyd")) for path in files):
            found.add(name)
    return found


def test_the_func_docs_name_every_compiled_package_of_the_closure() -> None:
    compiled = compiled_packages()
    assert "hiredis" in compiled
    text = (ROOT / "docs" / "func.md").read_text()
    host_builder = text.split("- **Host builder.**", 1)[1].split("\n- **", 1)[0]
    for name in compiled:
        assert f"`{name}`" in host_builder, name
    assert "pure Python" not in host_builder


def test_every_base_image_the_docs_name_is_the_one_the_dockerfile_pins() -> None:
    pinned = re.search(r"^ARG BASE_IMAGE=(\S+)$", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    assert pinned is not None
    named = {
        image
        for document in DOCUMENTS
        for image in re.findall(r"python:3\.\d+\.\d+-slim-\w+", document.read_text())
    }
    assert named <= {pinned[1]}, f"the Dockerfile pins {pinned[1]}"
