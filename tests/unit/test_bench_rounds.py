"""The benchmark's rounds combined as docs/benchmark.md says: medians of the figures, sums of the
counts, the worst disturbance, every start sample and the largest memory."""

from __future__ import annotations

from bench.report import Cell, ServerFootprint, combine_footprints, combine_rounds


def cell(rps: float, p50: float | None, p99: float | None, foreign: float, errors: int) -> Cell:
    return Cell("handle", "get", rps, p50, p99, errors, 100 + errors, {200: 100, 503: errors},
                {"refused": errors}, foreign)  # fmt: skip


def test_rounds_give_medians_sums_and_the_worst_disturbance() -> None:
    combined = combine_rounds(
        [cell(900.0, 2.0, 9.0, 0.01, 1), cell(1000.0, None, 7.0, 0.2, 0), cell(980.0, 4.0, 8.0,
         0.05, 2)]
    )  # fmt: skip
    assert combined.requests_per_second == 980.0  # the median, not the mean (960)
    assert combined.p50_ms == 3.0  # the median of the rounds that measured it
    assert combined.p99_ms == 8.0
    assert combined.errors == 3
    assert combined.responses == 303
    assert combined.status_counts == {200: 300, 503: 3}
    assert combined.transport_errors == {"refused": 3}
    assert combined.foreign_cores == 0.2
    assert combined.disturbed
    assert combined.rounds == 3
    assert (combined.server, combined.scenario) == ("handle", "get")


def test_one_round_is_itself_and_no_latency_stays_unknown() -> None:
    only = cell(900.0, None, None, 0.15, 0)
    assert combine_rounds([only]) is only
    assert not only.disturbed  # at the threshold: not above it
    assert combine_rounds([only, only]).p99_ms is None


def test_footprints_keep_every_start_and_the_largest_memory() -> None:
    first = ServerFootprint("handle", "d", [0.5, 0.4], 90, 60, 2)
    second = ServerFootprint("handle", "d", [0.45], 95, 55, 3)
    combined = combine_footprints([first, second])
    assert combined.start_samples_s == [0.5, 0.4, 0.45]
    assert combined.start_median_s == 0.45
    assert (combined.resident_bytes, combined.proportional_bytes, combined.processes) == (95, 60, 3)
