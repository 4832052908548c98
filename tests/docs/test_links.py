"""Every link between the documents, every anchor they point at, and every file of the project
they name exists; every generated path they name is ignored by git; the README stays short."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from scripts.serve import ROOT
from tests.docs.markdown import DOCUMENTS, anchors, code_spans, links, prose

# The project's own top-level entries: a named path starting with one of these must exist.
PROJECT = {p.name for p in ROOT.iterdir() if p.name != ".git"} - {".venv", ".data"}
# What make, the tools and the tests write; a named path starting with one of these is output,
# and must be ignored by git instead of existing.
GENERATED = {".venv", ".data", "loadtest-out", "e2e-out", "predict-out", "spike-out",
             "bench/results", ".func-runtime", ".cache", "mutants", ".func",
             ".kustomize-*"}  # fmt: skip
PATH_LIKE = re.compile(r"^\.?[\w.-]+(/[\w.*-]+)*/?$")


def ids(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.mark.parametrize("document", DOCUMENTS, ids=ids)
def test_every_relative_link_and_anchor_resolves(document: Path) -> None:
    broken = []
    for target in links(document):
        if re.match(r"^[a-z]+:", target):
            continue  # http(s), mailto: outside the project
        file_part, _, anchor = target.partition("#")
        linked = (document.parent / file_part).resolve() if file_part else document
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target}: no heading with that anchor")
    assert broken == []


def named_paths(document: Path) -> set[str]:
    """Code spans that name a path of this project (or of what it generates)."""
    named = set()
    for span in code_spans(document):
        for word in span.split():
            word = word.strip("',;:()")
            if not PATH_LIKE.match(word) or word.startswith(("-", "/")):
                continue
            first = word.split("/", 1)[0]
            ours = first in PROJECT or any(_generated(word, g) for g in GENERATED)
            if ("/" in word or word in PROJECT) and ours:
                named.add(word)
    return named


def _generated(word: str, generated: str) -> bool:
    return Path(word.rstrip("/")).match(generated) or any(
        Path(*Path(word).parts[: i + 1]).match(generated) for i in range(len(Path(word).parts))
    )


@pytest.mark.parametrize("document", DOCUMENTS, ids=ids)
def test_every_named_project_path_exists_or_is_ignored_output(document: Path) -> None:
    named = named_paths(document)
    missing, tracked = [], []
    for word in sorted(named):
        if any(_generated(word, g) for g in GENERATED):
            path = word.replace("*", "x").rstrip("/")
            if not any(ignored_by_git(probe) for probe in (path, f"{path}/file")):
                tracked.append(word)
        elif not (ROOT / word.replace("*", "")).exists() and not list(ROOT.glob(word)):
            missing.append(word)
    assert missing == [], "named in the text but not in the project"
    assert tracked == [], "generated, but not ignored by git"


def ignored_by_git(path: str) -> bool:
    checked = subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT, check=False)
    return checked.returncode == 0


def test_the_path_check_sees_paths() -> None:
    named = set().union(*(named_paths(document) for document in DOCUMENTS))
    assert {"function/redis_conn.py", "k8s/knative-service.yaml", ".data/redis/"} <= named


def test_the_readme_fits_on_a_screen_in_the_order_given() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 150
    headings = re.findall(r"^## (.+)$", prose(readme), re.MULTILINE)
    assert headings == ["Two commands", "The tutorial's session", "Scale to zero on minikube",
                        "A real cluster without a registry", "Documentation"]  # fmt: skip


def test_every_document_is_in_the_readmes_table() -> None:
    readme = (ROOT / "README.md").read_text()
    table = readme.split("## Documentation", 1)[1]
    for document in DOCUMENTS:
        if document.name != "README.md":
            assert f"]({ids(document)})" in table, ids(document)


def test_every_timing_says_where_it_was_measured() -> None:
    contributing = (ROOT / "CONTRIBUTING.md").read_text()
    section = contributing.split("## How long things take", 1)[1].split("\n## ", 1)[0]
    assert "2-core" in section
    rows = [row for row in section.splitlines() if row.startswith("| ") and "---" not in row]
    assert len(rows) > 5
    for row in rows[1:]:
        step, time, measured = (cell.strip() for cell in row.strip("|").split("|"))
        assert step and re.search(r"\d|one|two", time) and measured, row
