"""The cold-start benchmark's summary: medians, and p90 as a nearest rank, a value measured."""

from __future__ import annotations

from loadtest.coldstart import PHASES, summarise


def test_p90_of_seven_runs_is_the_slowest() -> None:
    # Nearest rank: ceil(0.9 x 7) = 7th of 7. Rounding 6.3 down would hide the slowest run.
    answers = [0.90, 0.97, 1.01, 1.01, 1.05, 1.07, 1.85]
    runs = [{phase: value for phase in PHASES} for value in answers]
    summary = summarise(runs)
    assert summary["first_answer"] == {"median": 1.01, "p90": 1.85}
    assert set(summary) == set(PHASES)


def test_p90_of_ten_runs_is_the_ninth() -> None:
    runs = [{phase: float(value) for phase in PHASES} for value in range(10, 0, -1)]
    assert summarise(runs)["pod_ready"] == {"median": 5.5, "p90": 9.0}
