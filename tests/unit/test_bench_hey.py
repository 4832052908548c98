"""The benchmark reads hey's summary correctly (captured real output; no timing asserted)."""

from pathlib import Path

import pytest

from bench.hey import HeyOutputError, parse_summary

TESTDATA = Path(__file__).resolve().parents[2] / "bench" / "testdata"


def test_all_2xx_run() -> None:
    result = parse_summary((TESTDATA / "hey-200.txt").read_text())
    assert result.status_counts == {200: 21756}
    assert result.transport_errors == {}
    assert result.errors == 0
    assert result.duration_seconds == pytest.approx(2.0032)
    assert result.requests_per_second == pytest.approx(21756 / 2.0032)
    assert (result.p50_seconds, result.p99_seconds) == (0.0013, 0.0041)


def test_non_2xx_responses_count_as_errors_not_throughput() -> None:
    result = parse_summary((TESTDATA / "hey-404.txt").read_text())
    assert result.status_counts == {404: 200}
    assert result.errors == 200
    assert result.requests_per_second == 0


def test_requests_without_response_are_errors() -> None:
    result = parse_summary((TESTDATA / "hey-refused.txt").read_text())
    assert result.status_counts == {}
    assert sum(result.transport_errors.values()) == 30464
    assert "connection refused" in next(iter(result.transport_errors))
    assert result.errors == 30464
    assert result.p99_seconds is None


def test_unreadable_output_is_an_error() -> None:
    with pytest.raises(HeyOutputError):
        parse_summary("hey: something else entirely\n")
