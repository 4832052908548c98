"""The GitHub Actions workflows, checked offline with nothing to download: against GitHub's
published workflow schema (check-jsonschema's vendored copy), every `run:` step through
ShellCheck as bash (the runner's default shell), and every `${{ }}` expression naming a context
that GitHub defines."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.manifests import ROOT

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)
# The contexts of GitHub's expression syntax ("Contexts" in GitHub's workflow documentation).
CONTEXTS = {"github", "env", "vars", "job", "jobs", "steps", "runner", "secrets", "strategy",
            "matrix", "needs", "inputs", "always", "failure", "success", "cancelled",
            "hashFiles", "format", "contains", "startsWith", "endsWith", "join", "toJSON",
            "fromJSON", "true", "false", "null"}  # fmt: skip


def test_the_e2e_workflow_exists() -> None:
    assert ROOT / ".github" / "workflows" / "e2e.yml" in WORKFLOWS


@pytest.fixture
def broken_workflow(tmp_path: Path) -> Path:
    """The e2e workflow with one key misspelt: a job without `runs-on`."""
    broken = tmp_path / "broken.yml"
    workflow = (ROOT / ".github" / "workflows" / "e2e.yml").read_text()
    assert "runs-on: ubuntu-24.04" in workflow
    broken.write_text(workflow.replace("runs-on: ubuntu-24.04", "runs_on: ubuntu-24.04"))
    return broken


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


def run_steps(workflow: Path) -> list[tuple[str, str]]:
    """(name, script) of every `run:` step."""
    document: dict[str, Any] = yaml.safe_load(workflow.read_text())
    return [
        (step.get("name", step["run"].splitlines()[0]), step["run"])
        for job in document["jobs"].values()
        for step in job.get("steps", [])
        if "run" in step
    ]


def shellcheck(script: str) -> subprocess.CompletedProcess[str]:
    found = shutil.which("shellcheck")
    if found is None:
        pytest.skip("shellcheck is not installed (scripts/install-system-deps.sh installs it)")
    # An expression is replaced by text before the shell sees it: stand in a quoted word.
    plain = EXPRESSION.sub("expression", script)
    return subprocess.run(
        [found, "--shell", "bash", "--norc", "-"],
        input=plain,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_every_run_step_passes_shellcheck(workflow: Path) -> None:
    steps = run_steps(workflow)
    assert steps
    for name, script in steps:
        result = shellcheck(script)
        assert result.returncode == 0, f"step {name!r}:\n{result.stdout}{result.stderr}"


def test_shellcheck_catches_a_broken_step() -> None:
    assert shellcheck('ip=$(minikube ip)\necho $ip > "$GITHUB_ENV"\n').returncode != 0


def unknown_contexts(text: str) -> set[str]:
    names = set()
    for expression in EXPRESSION.findall(text):
        without_strings = re.sub(r"'[^']*'", "", expression)
        names |= set(re.findall(r"(?<![.\w])([A-Za-z_][\w-]*)", without_strings))
    return names - CONTEXTS


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_every_expression_names_a_known_context(workflow: Path) -> None:
    text = workflow.read_text()
    assert EXPRESSION.search(text), "no expression found: the check would see nothing"
    assert unknown_contexts(text) == set()


def test_the_expression_check_catches_a_misspelt_context() -> None:
    assert unknown_contexts("group: e2e-${{ gihtub.ref }}") == {"gihtub"}


def load_test_step() -> str:
    steps = run_steps(ROOT / ".github" / "workflows" / "e2e.yml")
    scripts = [script for _, script in steps if "make loadtest" in script]
    assert len(scripts) == 1
    return scripts[0]


def test_the_load_test_step_sends_the_write_token() -> None:
    script = load_test_step()
    assert re.search(r"LOADTEST_TOKEN=\$\(kubectl .*secret kv-store-tokens", script, re.DOTALL)
    assert "export LOADTEST_TOKEN" in script
    assert "{.data.write-token}" in script and "base64 -d" in script


def test_the_load_test_step_has_a_threshold_the_load_test_accepts() -> None:
    from loadtest.cli import build_parser

    script = load_test_step().replace("\\\n", " ")
    found = re.search(r'LOADTEST_ARGS="([^"]*)"', script)
    assert found is not None
    arguments = build_parser().parse_args(["--url", "http://x", *found[1].split()])
    assert arguments.max_error_rate is not None and arguments.max_error_rate <= 0.01


# The first major of each action whose action.yml declares `runs.using: node24` (the actions'
# release notes); GitHub is retiring Node 20 on its runners.
NODE24_MAJORS = {"actions/checkout": 5, "actions/setup-python": 6, "actions/upload-artifact": 6}


def node20_actions(text: str) -> list[str]:
    old = []
    for action, major in re.findall(r"uses: ([\w.-]+/[\w.-]+)@v(\d+)", text):
        assert action in NODE24_MAJORS, f"{action}: which major runs on Node 24?"
        if int(major) < NODE24_MAJORS[action]:
            old.append(f"{action}@v{major}")
    return old


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_every_action_runs_on_node_24(workflow: Path) -> None:
    text = workflow.read_text()
    assert "uses: " in text
    assert node20_actions(text) == []


def test_the_node_check_catches_an_old_major() -> None:
    assert node20_actions("- uses: actions/checkout@v4\n") == ["actions/checkout@v4"]
