"""The fault suite's figures: each test records what it measured; the run prints them as a table
(docs/reliability.md's table comes from this output)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

FIGURES: list[tuple[str, str]] = []

Record = Callable[[str], None]


@pytest.fixture
def record_figures(request: pytest.FixtureRequest) -> Record:
    def record(text: str) -> None:
        FIGURES.append((request.node.name, text))

    return record


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FIGURES:
        terminalreporter.section("fault figures")
        for name, text in FIGURES:
            terminalreporter.write_line(f"{name}: {text}")
