"""The commands of the documents' `sh` blocks: the terminal sessions are run here, against a
real server and a real Redis, and must print what the documents show; every other command is
listed below with the test that runs it, or with what it needs that the test machine lacks."""

from __future__ import annotations

import re
import subprocess
import uuid
from pathlib import Path

import pytest

from scripts.serve import ROOT
from tests.conftest import RunningFunction, StartFunction
from tests.docs.markdown import DOCUMENTS, Command, commands, sessions

CLUSTER = "a Knative cluster (minikube); tests/deploy/test_cluster_scripts.py runs the scripts \
against stand-ins of minikube, kubectl and func"
# (pattern of the whole command, the test file that runs it, or None and what it needs)
ACCOUNTED: list[tuple[str, str | None, str]] = [
    (r"make run|make run-flask|PORT=\d+ make run|REDIS_URL=\S+ make run",
     "tests/contract/test_make_run.py", "make run's launcher, each stop, refusal and hint"),
    (r"make run-func", "tests/func_runtime/test_func_runtime.py", "func's runtime, installed"),
    (r"make test", ".ci/run", "CI runs it on every submission"),
    (r"make loadtest( LOADTEST_ARGS=.*)?"
     r"|\.venv/bin/python -m loadtest --url http://127\.0\.0\.1:8080 .*",
     "tests/loadtest/test_loadtest_runs.py", "the load test against a real function"),
    (r"\.venv/bin/python -m loadtest predict .*", "tests/predict/test_predict_cli.py",
     "the prediction's command line, files and pictures"),
    (r"make cluster-(up|down)|minikube .*|kubectl .*|func .*", None, CLUSTER),
    (r"make e2e", ".ci/run", "on the local cluster where it is built; on minikube, the workflow"),
    (r"(export )?[A-Z_]+=\$\((kubectl|openssl) .*\)( [A-Z_]+=\$\(openssl .*\))?", None, CLUSTER),
    (r"curl .*(sslip\.io|example\.com|192\.168\.\d+\.\d+).*", None, CLUSTER),
    (r"\.venv/bin/python -m loadtest --url \"(\$URL|http://\$\(minikube .*)\" .*", None, CLUSTER),
    (r"(sudo )?make localcluster-(up|down)", "tests/localcluster/live/test_lifecycle.py",
     "up, a second up, status and down, where the local cluster is built (.ci/run)"),
    (r"(DEPLOY_WITH=func(-build)? )?make localcluster-deploy", ".ci/run",
     "where the local cluster is built, before make e2e and tests/localcluster/live/test_func.py"),
    (r"curl -H \"Host: [a-z.-]+\.knative\.test\" http://10\.250\.0\.2/", None,
     "the local cluster running (tests/localcluster/live/test_smoke.py curls the same way)"),
    (r"([A-Z_]+=\$\(openssl rand -hex \d+\) )*docker compose up --build", None,
     "Docker with Compose; tests/deploy/test_compose.py runs the same file with podman-compose"),
]  # fmt: skip


def account_for(command: Command) -> list[int]:
    return [i for i, (pattern, _, _) in enumerate(ACCOUNTED) if re.fullmatch(pattern, command.text)]


ALL_COMMANDS = [command for document in DOCUMENTS for command in commands(document)]


def test_every_command_is_run_here_or_accounted_for() -> None:
    assert len(ALL_COMMANDS) > 40
    unaccounted = [
        f"{command.document.name}: {command.text}"
        for command in ALL_COMMANDS
        if not command.session and not account_for(command)
    ]
    assert unaccounted == []


def test_every_listed_command_is_still_in_the_documents_and_its_test_exists() -> None:
    used = {i for command in ALL_COMMANDS if not command.session for i in account_for(command)}
    assert used == set(range(len(ACCOUNTED)))
    for _, test, _ in ACCOUNTED:
        assert test is None or (ROOT / test).exists(), test


def test_the_accounting_refuses_an_unknown_command() -> None:
    assert account_for(Command(ROOT / "README.md", "make deploy-everything", False)) == []


SESSIONS = [(document, steps) for document in DOCUMENTS for steps in sessions(document)]


def expected_pattern(line: str) -> str:
    """An output line as a pattern: times and tags vary from run to run, all else must match."""
    pattern = re.escape(line)
    pattern = re.sub(r'(\\?"(last_updated|ttl)\\?":)\d+', r"\1\\d+", pattern)
    return re.sub(r"[0-9a-f]{40}", "[0-9a-f]{40}", pattern)


def run_session(steps: list, url: str) -> None:  # type: ignore[type-arg]
    """Runs each command in bash, as typed, against ``url``, comparing what it printed."""
    tags: dict[str, str] = {}  # a tag the document shows -> the tag this run got
    for step in steps:
        command = re.sub(r"(http://)?localhost:8080", url, step.command)
        for shown, got in tags.items():
            command = command.replace(shown, got)
        result = subprocess.run(
            ["bash", "-c", command], capture_output=True, text=True, timeout=30, check=False
        )
        printed = [line.rstrip("\r") for line in result.stdout.splitlines()]
        assert len(printed) == len(step.output), (step.command, printed)
        for shown, line in zip(step.output, printed, strict=True):
            assert re.fullmatch(expected_pattern(shown), line), (step.command, shown, line)
            for shown_tag, got_tag in zip(
                re.findall(r"[0-9a-f]{40}", shown), re.findall(r"[0-9a-f]{40}", line), strict=True
            ):
                tags[shown_tag] = got_tag


@pytest.mark.parametrize(
    ("document", "steps"),
    SESSIONS,
    ids=[f"{d.relative_to(ROOT)}-{i}" for i, (d, _) in enumerate(SESSIONS)],
)
def test_a_session_prints_what_the_document_shows(
    document: Path,
    steps: list,
    start_function: StartFunction,  # type: ignore[type-arg]
) -> None:
    # A key prefix of its own: the counter starts at zero, as in the document.
    running: RunningFunction = start_function(
        "handle", env={"KEY_PREFIX": f"kv:docs-{uuid.uuid4().hex}:"}
    )
    run_session(steps, running.url)


def test_the_session_check_fails_on_a_wrong_answer(start_function: StartFunction) -> None:
    from tests.docs.markdown import Step

    running = start_function("handle", env={"KEY_PREFIX": f"kv:docs-{uuid.uuid4().hex}:"})
    with pytest.raises(AssertionError):
        run_session([Step("curl http://localhost:8080/", ["Count is 2."])], running.url)
